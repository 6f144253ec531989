/**
 * `@strait/protocol-native`: Strait's own client protocol, served by a proxy.
 *
 * @since 0.1.0
 */
export * as Server from "./Server.ts"
