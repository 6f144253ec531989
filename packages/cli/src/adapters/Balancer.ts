/**
 * A TCP load balancer: one address in front of several backends (proxies), each new connection to
 * the next backend in turn, skipping backends that refuse. Connections are spliced byte for byte, so
 * HTTP/2 (gRPC) and its GOAWAY pass through untouched: a draining proxy's clients reconnect through
 * the balancer and land on a live one.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as net from "node:net"

/**
 * A backend: where a proxy listens.
 *
 * @since 0.1.0
 */
export interface Backend {
  readonly host: string
  readonly port: number
}

/**
 * A running balancer.
 *
 * @since 0.1.0
 */
export interface Balancer {
  readonly host: string
  readonly port: number
  readonly close: () => Promise<void>
}

/**
 * Starts a balancer at `host:port` (port 0: any free port) over the backends `backends()` names at
 * each connection (so the set can change while it runs).
 *
 * @since 0.1.0
 */
export const start = async (options: { readonly host: string; readonly port: number; readonly backends: () => ReadonlyArray<Backend> }): Promise<Balancer> => {
  let next = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    client.pause()
    sockets.add(client)
    client.on("close", () => sockets.delete(client))
    client.on("error", () => client.destroy())
    const backends = options.backends()
    const attempt = (tries: number) => {
      if (tries >= backends.length) return client.destroy()
      const target = backends[next++ % backends.length]!
      const backend = net.connect(target.port, target.host)
      backend.once("error", () => attempt(tries + 1))
      backend.once("connect", () => {
        backend.removeAllListeners("error")
        sockets.add(backend)
        backend.on("close", () => sockets.delete(backend))
        backend.on("error", () => client.destroy())
        client.on("close", () => backend.destroy())
        backend.on("close", () => client.destroy())
        client.pipe(backend)
        backend.pipe(client)
        client.resume()
      })
    }
    attempt(0)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port, options.host, () => resolve())
  })
  return {
    host: options.host,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/**
 * A balancer for as long as the scope lives.
 *
 * @since 0.1.0
 */
export const scoped = (options: Parameters<typeof start>[0]) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => start(options), catch: (error) => new Error(`cannot listen on ${options.host}:${options.port}: ${String(error)}`) }),
    (balancer) => Effect.promise(() => balancer.close())
  )
