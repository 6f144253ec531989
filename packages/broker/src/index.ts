/**
 * `@strait/broker`: topics, produce, consumption, filters and offsets over the storage engine.
 *
 * @since 0.1.0
 */
export * as Broker from "./Broker.ts"
export * as CatalogMirror from "./CatalogMirror.ts"
export * as ConsumerOffsets from "./ConsumerOffsets.ts"
export * as Consumption from "./Consumption.ts"
export * as Filter from "./Filter.ts"
export * as Groups from "./Groups.ts"
export * as HeldMessages from "./HeldMessages.ts"
export * as Member from "./Member.ts"
export * as Topics from "./Topics.ts"
export * as Timers from "./Timers.ts"
export * as Transactions from "./Transactions.ts"
export * as Protocol from "./Protocol.ts"
export * as Server from "./Server.ts"
export * as Client from "./Client.ts"
