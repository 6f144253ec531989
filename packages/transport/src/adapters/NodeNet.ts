/**
 * `node:net` sockets and servers as `Pipe`s: the TCP Layer's only contact with Node's networking.
 *
 * Raw `net` rather than `@effect/platform-node`'s Socket, because the pipe needs `cork`/`uncork` (every
 * frame written in one tick leaves in one vectored write), `pause`/`resume` (a slow reader stops reading the socket, so
 * the kernel's window pushes back on the writer) and the `drain` event, none of which the
 * platform Socket exposes; and because the data path must cost one callback per chunk, not one
 * Effect per chunk.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { Effect } from "effect"
import * as net from "node:net"
import { type Pipe, PipeClosed, type PipeReceiver } from "../Connection.ts"

/**
 * Wraps a connected socket. Arriving chunks go to the receiver from the socket's `data` callback;
 * when the receiver asks for a pause the socket stops reading, so the kernel's window pushes back on
 * the writer.
 *
 * @since 0.1.0
 */
export const socketPipe = (socket: net.Socket): Pipe => {
  socket.setNoDelay(true)
  // every writer waiting for the socket to drain listens for `drain` and `close`: many may wait at once
  socket.setMaxListeners(0)
  let failure: PipeClosed | undefined
  let ended = false

  socket.on("end", () => {
    ended = true
  })
  socket.on("error", (error) => {
    failure ??= new PipeClosed({ orderly: false, reason: error.message })
  })

  const deliver = (receiver: PipeReceiver) => {
    socket.on("data", (chunk: Uint8Array) => {
      if (!receiver.data(chunk)) socket.pause()
    })
    socket.on("close", () => {
      receiver.closed(
        failure ?? (ended
          ? new PipeClosed({ orderly: true, reason: "end of stream" })
          : new PipeClosed({ orderly: false, reason: "the socket closed" }))
      )
    })
  }

  const drained: Effect.Effect<void, PipeClosed> = Effect.callback<void, PipeClosed>((resume) => {
    const onDrain = () => finish(Effect.void)
    const onClose = () => finish(Effect.fail(failure ?? new PipeClosed({ orderly: false, reason: "the socket closed" })))
    const finish = (effect: Effect.Effect<void, PipeClosed>) => {
      socket.off("drain", onDrain)
      socket.off("close", onClose)
      resume(effect)
    }
    socket.on("drain", onDrain)
    socket.on("close", onClose)
    return Effect.sync(() => {
      socket.off("drain", onDrain)
      socket.off("close", onClose)
    })
  })

  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  const write = (chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, PipeClosed> =>
    Effect.suspend(() => {
      if (failure !== undefined) return Effect.fail(failure)
      if (socket.destroyed || !socket.writable) {
        return Effect.fail(new PipeClosed({ orderly: false, reason: "the socket is not writable" }))
      }
      // every write of this tick (replies finishing together, say) leaves in one vectored write
      if (!corked) {
        corked = true
        socket.cork()
        process.nextTick(uncork)
      }
      for (const chunk of chunks) socket.write(chunk)
      return socket.writableNeedDrain ? drained : Effect.void
    })

  return {
    write,
    deliver,
    resume: () => {
      socket.resume()
    },
    end: Effect.sync(() => {
      socket.end()
    }),
    destroy: Effect.sync(() => {
      if (!socket.destroyed) socket.resetAndDestroy()
    })
  }
}

/**
 * Opens a TCP connection; fails with the socket's error message.
 *
 * @since 0.1.0
 */
export const connect = (host: string, port: number): Effect.Effect<net.Socket, string> =>
  Effect.callback<net.Socket, string>((resume) => {
    const socket = net.connect({ host, port, noDelay: true })
    const onConnect = () => {
      socket.off("error", onError)
      resume(Effect.succeed(socket))
    }
    const onError = (error: Error) => {
      socket.off("connect", onConnect)
      resume(Effect.fail(error.message))
    }
    socket.once("connect", onConnect)
    socket.once("error", onError)
    return Effect.sync(() => {
      socket.off("connect", onConnect)
      socket.off("error", onError)
      socket.destroy()
    })
  })

/**
 * Starts listening; `onSocket` runs for every accepted socket. Fails with the error code
 * (`EADDRINUSE`, …) or message.
 *
 * @since 0.1.0
 */
export const listen = (
  host: string,
  port: number,
  onSocket: (socket: net.Socket) => void
): Effect.Effect<net.Server, string> =>
  Effect.callback<net.Server, string>((resume) => {
    const server = net.createServer({ noDelay: true }, onSocket)
    server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.fail(error.code ?? error.message)))
    server.listen(port, host, () => resume(Effect.succeed(server)))
  })

/**
 * Stops accepting. Does not wait for open sockets: their connections close them, and a peer that
 * never answers a close must not hold up a shutdown.
 *
 * @since 0.1.0
 */
export const close = (server: net.Server): Effect.Effect<void> =>
  Effect.sync(() => {
    server.close()
  })

/**
 * The port a listening server got (for `tcp://host:0`).
 *
 * @since 0.1.0
 */
export const boundPort = (server: net.Server): number => {
  const address = server.address()
  return typeof address === "object" && address !== null ? address.port : 0
}

/**
 * A listener's start for `Connection.listenSockets`: listens on `host:port` and gives the bound
 * address under `scheme` (the real port when 0 was asked for) and how to stop.
 *
 * @since 0.1.0
 */
export const serveAt = (scheme: Transport.Scheme, host: string, port: number) => (onSocket: (socket: net.Socket) => void) =>
  Effect.map(listen(host, port, onSocket), (server) => ({
    address: Transport.formatHostPort(scheme, host, boundPort(server)),
    close: close(server)
  }))
