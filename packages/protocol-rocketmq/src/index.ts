/**
 * `@strait/protocol-rocketmq`: the RocketMQ 5 gRPC protocol on Strait's proxy core.
 *
 * @since 0.1.0
 */
export * as Codes from "./Codes.ts"
export * as Messages from "./Messages.ts"
export * as Protos from "./Protos.ts"
export * as Server from "./Server.ts"
export * as Admin from "./Admin.ts"
export * as AdminClient from "./adapters/AdminClient.ts"
