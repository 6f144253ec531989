/**
 * Shared-memory links as `Pipe`s: the bytes go through the addon's rings, and a Unix domain socket
 * between the two processes carries the hand-over of the memory, the doorbells, and the news of a
 * peer's death.
 *
 * **Details**
 *
 * - Setup: the connecting side creates a sealed memfd for two rings and passes it over the socket
 *   (`SCM_RIGHTS`); the accepting side checks the seals and the size, maps it and answers one byte.
 *   The server socket accepts paused, so Node never reads (and drops) the hand-over itself.
 * - Doorbells: a side that finds its ring empty marks itself sleeping and waits for a byte on the
 *   socket; a writer rings only when the reader sleeps (most writes ring nothing). The same for a
 *   writer waiting for room. The bytes' values mean nothing: any byte says "look at the rings".
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

type Pipe = Connection.Pipe
type PipeReceiver = Connection.PipeReceiver
const PipeClosed = Connection.PipeClosed

/**
 * What this process's links have done so far: doorbells rung and heard, bytes written and read.
 *
 * @since 0.1.0
 */
export const stats = { rung: 0, heard: 0, writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0 }

const accepted = new Uint8Array([0x41])
// the most bytes one read hands the receiver
const readLimit = 256 * 1024

// the socket's file descriptor (a Unix domain socket's handle has one)
const fdOf = (socket: net.Socket): number | undefined => (socket as unknown as { readonly _handle?: { readonly fd?: number } })._handle?.fd

// moves a position in `chunks` (a chunk and a byte in it) past `taken` bytes, and past empty chunks
const advance = (chunks: ReadonlyArray<Uint8Array>, at: { index: number; skip: number }, taken: number) => {
  while (at.index < chunks.length) {
    const left = chunks[at.index]!.length - at.skip
    if (taken < left) {
      at.skip += taken
      return
    }
    taken -= left
    at.index++
    at.skip = 0
  }
}

/**
 * A connected link as a pipe.
 *
 * @since 0.1.0
 */
export const linkPipe = (addon: Addon.Addon, link: Addon.Link, socket: net.Socket, fd: number): Pipe => {
  let receiver: PipeReceiver | undefined
  let paused = false
  let draining = false
  let peerGone: Connection.PipeClosed | undefined
  let failure: Connection.PipeClosed | undefined
  let reported = false
  let unmapped = false
  // writers waiting for room (or for the link to fail)
  const waiting = new Set<() => void>()

  // the doorbell goes straight to the socket's descriptor (`fd`): a byte needs no write request or
  // callback of Node's streams, only one system call
  const ring = () => {
    stats.rung++
    if (!socket.destroyed && socket.writable) addon.ring(fd)
  }
  const wakeWriters = () => {
    for (const wake of [...waiting]) wake()
  }
  const report = (reason: Connection.PipeClosed) => {
    if (reported) return
    reported = true
    receiver?.closed(reason)
  }
  const poison = (reason: string) => {
    failure ??= new PipeClosed({ orderly: false, reason })
    report(failure)
    socket.destroy()
    wakeWriters()
  }

  // hands over what the peer published, until the ring is empty (then sleeps), the receiver pauses,
  // or the peer's end is reached
  const state = new Int32Array(2)
  const drain = () => {
    if (receiver === undefined || paused || draining || reported || unmapped) return
    draining = true
    try {
      while (true) {
        let data: Uint8Array | null
        try {
          data = link.take(readLimit, state)
        } catch (error) {
          poison(error instanceof Error ? error.message : String(error))
          return
        }
        if (state[0] === 1) ring()
        if (data !== null) {
          stats.reads++
          stats.bytesRead += data.length
          if (!receiver.data(data)) {
            paused = true
            return
          }
          continue
        }
        if (state[1] === 2) {
          report(new PipeClosed({ orderly: true, reason: "end of stream" }))
          return
        }
        if (peerGone !== undefined) {
          report(peerGone)
          return
        }
        // asleep until a doorbell, unless data came while arming
        if (state[1] !== 1) return
      }
    } finally {
      draining = false
    }
  }

  const onDoorbell = (chunk: Uint8Array) => {
    stats.heard += chunk.length
    drain()
    wakeWriters()
  }
  socket.on("data", onDoorbell)
  socket.on("error", (error) => {
    peerGone ??= new PipeClosed({ orderly: false, reason: error.message })
  })
  socket.on("close", () => {
    peerGone ??= new PipeClosed({ orderly: false, reason: "the peer went away" })
    failure ??= peerGone
    drain()
    wakeWriters()
  })

  const roomOrFailure = Effect.callback<void>((resume) => {
    const wake = () => {
      waiting.delete(wake)
      resume(Effect.void)
    }
    waiting.add(wake)
    return Effect.sync(() => {
      waiting.delete(wake)
    })
  })

  // the common case in one synchronous step: everything fits
  const write = (chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, Connection.PipeClosed> => {
    if (failure !== undefined) return Effect.fail(failure)
    if (unmapped) return Effect.fail(new PipeClosed({ orderly: false, reason: "the link is closed" }))
    let total = 0
    for (const chunk of chunks) total += chunk.length
    const sent = link.send(chunks, 0)
    stats.writes++
    stats.bytesWritten += Math.abs(sent)
    if (sent < 0) ring()
    const taken = Math.abs(sent)
    return taken === total ? Effect.void : writeRest(chunks, taken)
  }

  // the rest of a write that did not fit: waits for room as often as needed
  const writeRest = (chunks: ReadonlyArray<Uint8Array>, done: number): Effect.Effect<void, Connection.PipeClosed> =>
    Effect.gen(function*() {
      const at = { index: 0, skip: 0 }
      advance(chunks, at, done)
      while (at.index < chunks.length) {
        // full: wait for the reader to make room, unless it did meanwhile
        if (!link.armWritable(chunks[at.index]!.length - at.skip)) yield* roomOrFailure
        if (failure !== undefined) return yield* failure
        if (unmapped) return yield* new PipeClosed({ orderly: false, reason: "the link is closed" })
        const sent = link.send(at.index === 0 ? chunks : chunks.slice(at.index), at.skip)
        if (sent < 0) ring()
        advance(chunks, at, Math.abs(sent))
      }
    })

  return {
    write,
    deliver: (attached) => {
      receiver = attached
      drain()
    },
    resume: () => {
      paused = false
      drain()
    },
    end: Effect.sync(() => {
      if (unmapped) return
      link.endWrite()
      if (link.wakeReader()) ring()
    }),
    destroy: Effect.sync(() => {
      failure ??= new PipeClosed({ orderly: false, reason: "the link was closed" })
      socket.destroy()
      wakeWriters()
      if (!unmapped) {
        unmapped = true
        link.unmap()
      }
    })
  }
}

/**
 * Connects to a listener at `path` and hands it a fresh memfd of two rings of `capacity` bytes;
 * fails with the reason.
 *
 * @since 0.1.0
 */
export const connect = (addon: Addon.Addon, path: string, capacity: number): Effect.Effect<Pipe, string> =>
  Effect.callback<Pipe, string>((resume) => {
    const socket = net.connect({ path })
    let link: { readonly rings: Addon.Link; readonly fd: number } | undefined
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
      link?.rings.unmap()
      finish(Effect.fail(reason))
    }
    const onConnect = () => {
      const fd = fdOf(socket)
      if (fd === undefined) return fail("the socket has no file descriptor")
      let memfd = -1
      try {
        memfd = addon.createMemfd(capacity)
        addon.sendFd(fd, memfd, capacity)
        link = { rings: new addon.Link(memfd, 0, capacity), fd }
      } catch (error) {
        return fail(error instanceof Error ? error.message : String(error))
      } finally {
        if (memfd >= 0) addon.closeFd(memfd)
      }
    }
    // the listener's one byte: it mapped the memory
    const onAnswer = (chunk: Uint8Array) => {
      if (link === undefined || chunk[0] !== accepted[0]) return fail("the listener refused the shared memory")
      socket.pause()
      const pipe = linkPipe(addon, link.rings, socket, link.fd)
      socket.resume()
      finish(Effect.succeed(pipe))
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
      link?.rings.unmap()
    })
  })

// a real-time wait (the socket is real: a test clock must not hold the hand-over up)
const wait = (millis: number) =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Takes the hand-over of an accepted (paused) socket: the memfd, checked and mapped; answers one
 * byte. The hand-over is sent right after the connection is made, so it is nearly always there at
 * once; otherwise the socket is looked at again, less and less often, for up to `timeoutMillis`.
 *
 * @since 0.1.0
 */
export const acceptLink = (addon: Addon.Addon, socket: net.Socket, timeoutMillis: number): Effect.Effect<Pipe, string> =>
  Effect.gen(function*() {
    const fd = fdOf(socket)
    if (fd === undefined) return yield* Effect.fail("the socket has no file descriptor")
    let waited = 0
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      if (socket.destroyed) return yield* Effect.fail("the peer closed before handing over its memory")
      const handover = yield* Effect.try({ try: () => addon.recvFd(fd), catch: (error) => error instanceof Error ? error.message : String(error) })
      if (handover === null) {
        if (waited >= timeoutMillis) return yield* Effect.fail("no shared memory was handed over in time")
        yield* wait(pause)
        waited += pause
        continue
      }
      const link = yield* Effect.try({
        try: () => new addon.Link(handover.fd, 1, handover.capacity),
        catch: (error) => error instanceof Error ? error.message : String(error)
      }).pipe(Effect.ensuring(Effect.sync(() => addon.closeFd(handover.fd))))
      const pipe = linkPipe(addon, link, socket, fd)
      socket.write(accepted)
      socket.resume()
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
