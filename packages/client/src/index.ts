/**
 * `@strait/client`: the Effect-native Strait client.
 *
 * @since 0.1.0
 */
export * as Protocol from "./Protocol.ts"
export * as StraitClient from "./StraitClient.ts"
export * as Admin from "./Admin.ts"
export * as Consumer from "./Consumer.ts"
export * as Producer from "./Producer.ts"
export * as PullConsumer from "./PullConsumer.ts"
