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

const hostPort = (address: string) => Transport.parseHostPort(address, "tcp")

const make = Effect.gen(function*() {
  const settings = yield* TcpSettings
  return Transport.Transport.of({
    schemes: ["tcp"],
    listen: (address) =>
      Effect.gen(function*() {
        const target = hostPort(address)
        if (target instanceof Transport.InvalidAddress) return yield* target
        return yield* Connection.listenSockets<Socket>({
          address,
          acceptBacklog: settings.acceptBacklog,
          start: NodeNet.serveAt("tcp", target.host, target.port),
          pipeOf: (socket) => Effect.succeed(NodeNet.socketPipe(socket)),
          remoteOf: (socket) => `tcp://${socket.remoteAddress}:${socket.remotePort}`
        })
      }),
    connect: (address) =>
      Effect.gen(function*() {
        const target = hostPort(address)
        if (target instanceof Transport.InvalidAddress) return yield* target
        const socket = yield* NodeNet.connect(target.host, target.port).pipe(
          Effect.timeoutOrElse({
            duration: settings.connectTimeout,
            orElse: () => Effect.fail("timed out")
          }),
          Effect.mapError((reason) => new Transport.ConnectFailed({ address, reason }))
        )
        return yield* Connection.make(NodeNet.socketPipe(socket), address)
      })
  })
})

/**
 * The TCP Transport.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport> = Layer.effect(Transport.Transport, make)
