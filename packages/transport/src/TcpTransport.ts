/**
 * The TCP `Transport` Layer: `tcp://host:port` over `node:net`, with `TCP_NODELAY`, one corked
 * vectored write per batch, back-pressure from the socket's drain and from pausing slow readers, and
 * peer loss seen from close/error and from the connection engine's idle heartbeat.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { Context, Duration, Effect, Layer } from "effect"
import type { Socket } from "node:net"
import * as Connection from "./Connection.ts"
import * as NodeNet from "./adapters/NodeNet.ts"

/**
 * TCP tunables.
 *
 * @since 0.1.0
 */
export const TcpSettings = Context.Reference<{
  readonly connectTimeout: Duration.Input
  /** Accepted connections waiting for the server to take them. */
  readonly acceptBacklog: number
}>("@strait/transport/TcpTransport/TcpSettings", {
  defaultValue: () => ({ connectTimeout: Duration.seconds(5), acceptBacklog: 1024 })
})

const make = Effect.map(Effect.service(TcpSettings), (settings) =>
  Connection.socketTransport<{ readonly host: string; readonly port: number }, Socket>({
    scheme: "tcp",
    parse: (address) => Transport.parseHostPort(address, "tcp"),
    acceptBacklog: settings.acceptBacklog,
    connectTimeout: settings.connectTimeout,
    start: (target) => NodeNet.serveAt("tcp", target.host, target.port),
    pipeOf: (socket) => Effect.succeed(NodeNet.socketPipe(socket)),
    remoteOf: (socket) => `tcp://${socket.remoteAddress}:${socket.remotePort}`,
    open: (target) => Effect.map(NodeNet.connect(target.host, target.port), NodeNet.socketPipe)
  }))

/**
 * The TCP Transport.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport> = Layer.effect(Transport.Transport, make)
