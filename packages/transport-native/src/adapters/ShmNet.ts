/**
 * Shared-memory links as `Pipe`s: the bytes go through the addon's rings, and a Unix domain socket
 * between the two processes carries the hand-over of the memory and the doorbells, then the news of
 * a peer's death.
 *
 * **Details**
 *
 * - Setup: the connecting side creates a sealed memfd for two rings and two eventfds (each side's
 *   doorbell) and passes the three over the socket (`SCM_RIGHTS`); the accepting side checks the
 *   seals and the size, maps the memory and answers one byte. The server socket accepts paused, so
 *   Node never reads (and drops) the hand-over itself.
 * - Doorbells: a side that finds its ring empty marks itself sleeping and waits on its eventfd
 *   (watched by the addon with uv_poll); a writer rings the peer's only when the reader sleeps (most
 *   writes ring nothing), from inside the addon's send. The same for a writer waiting for room.
 * - A peer that dies closes its end of the socket at once (the kernel does it): what it published
 *   is still read, then the pipe reports the loss. A corrupt record poisons the link: it closes with
 *   the reason and the process goes on.
 *
 * @since 0.1.0
 */
import { Connection } from "@strait/transport"
import { Effect } from "effect"
import { chmodSync, existsSync, unlinkSync } from "node:fs"
import * as net from "node:net"
import type * as Addon from "./Addon.ts"
import * as RingPipe from "./RingPipe.ts"

type Pipe = Connection.Pipe

/**
 * What this process's links have done so far.
 *
 * @since 0.1.0
 */
export const stats = RingPipe.stats

const accepted = new Uint8Array([0x41])

// the socket's file descriptor (a Unix domain socket's handle has one)
const fdOf = (socket: net.Socket): number | undefined => (socket as unknown as { readonly _handle?: { readonly fd?: number } })._handle?.fd

/**
 * Connects to a listener at `path` and hands it a fresh memfd of two rings of `capacity` bytes;
 * fails with the reason.
 *
 * @since 0.1.0
 */
export const connect = (addon: Addon.Addon, path: string, capacity: number, spinMicros = 0): Effect.Effect<Pipe, string> =>
  Effect.callback<Pipe, string>((resume) => {
    const socket = net.connect({ path })
    let link: Addon.Link | undefined
    let done = false
    const finish = (outcome: Effect.Effect<Pipe, string>) => {
      if (done) return
      done = true
      socket.off("connect", onConnect)
      socket.off("data", onAnswer)
      socket.off("error", onError)
      socket.off("close", onClose)
      resume(outcome)
    }
    const fail = (reason: string) => {
      socket.destroy()
      link?.unmap()
      finish(Effect.fail(reason))
    }
    const onConnect = () => {
      const fd = fdOf(socket)
      if (fd === undefined) return fail("the socket has no file descriptor")
      // the memfd and the two doorbells (side 0's, side 1's): once sent, the peer has its copies;
      // the link owns this side's doorbells, the memfd is closed once mapped
      const fds: Array<number> = []
      try {
        fds.push(addon.createMemfd(capacity), addon.createBell(), addon.createBell())
        addon.sendFds(fd, fds, capacity)
        link = new addon.Link(fds[0]!, 0, capacity, spinMicros, fds[1]!, fds[2]!)
        fds.splice(1)
      } catch (error) {
        return fail(error instanceof Error ? error.message : String(error))
      } finally {
        for (const owned of fds) addon.closeFd(owned)
      }
    }
    // the listener's one byte: it mapped the memory
    const onAnswer = (chunk: Uint8Array) => {
      if (link === undefined || chunk[0] !== accepted[0]) return fail("the listener refused the shared memory")
      finish(Effect.succeed(RingPipe.ringPipe(addon, link, socket)))
    }
    const onError = (error: Error) => fail(error.message)
    const onClose = () => fail("the listener closed the connection")
    socket.once("connect", onConnect)
    socket.once("data", onAnswer)
    socket.once("error", onError)
    socket.once("close", onClose)
    return Effect.sync(() => {
      if (done) return
      done = true
      socket.destroy()
      link?.unmap()
    })
  })

// a real-time wait (the socket is real: a test clock must not hold the hand-over up)
const wait = (millis: number) =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Takes the hand-over of an accepted (paused) socket: the memfd, checked and mapped, and the two
 * doorbells; answers one byte. The hand-over is sent right after the connection is made, so it is nearly always there at
 * once; otherwise the socket is looked at again, less and less often, for up to `timeoutMillis`.
 *
 * @since 0.1.0
 */
export const acceptLink = (addon: Addon.Addon, socket: net.Socket, timeoutMillis: number, spinMicros = 0): Effect.Effect<Pipe, string> =>
  Effect.gen(function*() {
    const fd = fdOf(socket)
    if (fd === undefined) return yield* Effect.fail("the socket has no file descriptor")
    let waited = 0
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      if (socket.destroyed) return yield* Effect.fail("the peer closed before handing over its memory")
      const handover = yield* Effect.try({ try: () => addon.recvFds(fd), catch: (error) => error instanceof Error ? error.message : String(error) })
      if (handover === null) {
        if (waited >= timeoutMillis) return yield* Effect.fail("no shared memory was handed over in time")
        yield* wait(pause)
        waited += pause
        continue
      }
      // [memfd, side 0's doorbell, side 1's]: this is side 1; the link owns the doorbells
      const [memfd, peerBell, bell] = handover.fds
      const owned = [...handover.fds]
      const link = yield* Effect.try({
        try: () => {
          if (handover.fds.length !== 3) throw new Error("a shared-memory hand-over without its two doorbells")
          const made = new addon.Link(memfd!, 1, handover.capacity, spinMicros, bell!, peerBell!)
          owned.splice(1)
          return made
        },
        catch: (error) => error instanceof Error ? error.message : String(error)
      }).pipe(Effect.ensuring(Effect.sync(() => {
        for (const fd of owned) addon.closeFd(fd)
      })))
      const pipe = RingPipe.ringPipe(addon, link, socket)
      socket.write(accepted)
      return pipe
    }
  }).pipe(Effect.tapError(() => Effect.sync(() => socket.destroy())))

/**
 * Listens on a Unix domain socket at `path` (only this user may connect); a stale socket file that
 * nobody listens on is replaced. Fails with the error code (`EADDRINUSE`, …) or message.
 *
 * @since 0.1.0
 */
export const listen = (path: string, onSocket: (socket: net.Socket) => void): Effect.Effect<net.Server, string> =>
  Effect.flatMap(staleRemoved(path), () =>
    Effect.callback<net.Server, string>((resume) => {
      const server = net.createServer({ pauseOnConnect: true }, onSocket)
      server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.fail(error.code ?? error.message)))
      server.listen({ path, exclusive: true }, () => {
        try {
          chmodSync(path, 0o600)
        } catch {
          // the file went meanwhile: the listener goes on, and connecting fails plainly
        }
        resume(Effect.succeed(server))
      })
    }))

// a socket file left by a listener that died: connecting to it is refused
const staleRemoved = (path: string) =>
  Effect.callback<void>((resume) => {
    if (!existsSync(path)) return resume(Effect.void)
    const probe = net.connect({ path })
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.void)
    })
    probe.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") {
        try {
          unlinkSync(path)
        } catch {
          // gone already
        }
      }
      resume(Effect.void)
    })
  })

/**
 * Stops accepting and removes the socket file.
 *
 * @since 0.1.0
 */
export const close = (server: net.Server): Effect.Effect<void> =>
  Effect.sync(() => {
    server.close()
  })
