/**
 * `@strait/transport`: the Transport Layers (memory with fault injection, TCP) and the connection
 * engine they share.
 *
 * @since 0.1.0
 */
export * as Connection from "./Connection.ts"
export * as MemoryTransport from "./MemoryTransport.ts"
export * as SimNetwork from "./SimNetwork.ts"
export * as TcpTransport from "./TcpTransport.ts"
export * as Multiplex from "./Multiplex.ts"
