/**
 * A link between two processes as a `Pipe`, for every link made of two rings (the addon's
 * shared-memory `Link` and its RDMA `VerbsLink`): writes go into the outgoing ring in one call when
 * they fit, reads take what the peer published, and each side sleeps until the other wakes it. The
 * links wake their peers themselves (an eventfd doorbell, an RDMA completion) and call the pipe
 * back when they are woken (`onWake`); a side channel socket (Unix or TCP) reports the
 * peer's death.
 *
 * @since 0.1.0
 */
import { Connection } from "@strait/transport"
import { Effect } from "effect"
import type * as net from "node:net"
import type * as Addon from "./Addon.ts"

type Pipe = Connection.Pipe
type PipeReceiver = Connection.PipeReceiver
const PipeClosed = Connection.PipeClosed

/**
 * What this process's links have done so far: wake-ups sent and heard, bytes written and read.
 *
 * @since 0.1.0
 */
export const stats = { heard: 0, writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0 }

// a slab with less than this left is replaced before a read
const slabReserve = 8 * 1024

// what a reader hands over in one turn of the event loop before it lets the rest of the process run
const turnBytes = 1024 * 1024

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
 * A connected link as a pipe; `socket` is the link's side channel, whose end is the peer's death.
 *
 * @since 0.1.0
 */
export const ringPipe = (addon: Addon.Addon, link: Addon.RingLink, socket: net.Socket): Pipe => {
  let receiver: PipeReceiver | undefined
  let paused = false
  let draining = false
  let peerGone: Connection.PipeClosed | undefined
  let failure: Connection.PipeClosed | undefined
  let reported = false
  let unmapped = false
  // this side ended its writes, and the peer its
  let ended = false
  let peerEnded = false
  // writers waiting for room (or for the link to fail)
  const waiting = new Set<() => void>()

  const wakeWriters = () => {
    for (const wake of [...waiting]) wake()
  }
  // the link's memory and its doorbell watch go once nothing more can be read or written: its
  // watch would otherwise keep the event loop alive
  const release = () => {
    if (unmapped) return
    unmapped = true
    link.unmap()
  }
  // both directions ended in order: the side channel closes, as a TCP socket does
  const closeIfDone = () => {
    if (ended && peerEnded) socket.destroy()
  }
  const report = (reason: Connection.PipeClosed) => {
    if (reported) return
    reported = true
    receiver?.closed(reason)
    if (socket.destroyed) release()
  }
  const poison = (reason: string) => {
    failure ??= new PipeClosed({ orderly: false, reason })
    report(failure)
    socket.destroy()
    wakeWriters()
  }

  // reads go into the addon's recycled slabs, each handed on as views (a frame may keep its view,
  // which keeps its slab): no allocation per read; a record larger than a slab gets its own buffer.
  // A receiver that keeps no view (`copies`) gets every read in the same slab: a slab comes back to
  // the pool only once the garbage collector has found it unreachable, and until then the reads go
  // into new memory (in this VM a raw reader took 1.0–1.3 µs a 1 KiB message into new slabs,
  // 0.13–0.2 µs into one).
  let slab = addon.slab()
  let used = 0
  let reuse = false
  const fresh = (wanted: number) => {
    slab = wanted <= addon.slabBytes ? addon.slab() : Buffer.allocUnsafeSlow(wanted)
    used = 0
  }

  // hands over what the peer published, until the ring is empty (then sleeps), the receiver pauses,
  // the peer's end is reached, or `turnBytes` were handed over in this turn of the event loop: then
  // the rest is read in the next turn. A writer that keeps the ring full would otherwise keep the
  // reader in this loop for as long as it writes, and the rest of the process (other connections,
  // timers, the callbacks that return collected slabs to the addon's pool) would wait.
  const state = new Int32Array(1)
  let resumeScheduled = false
  const resumeNextTurn = () => {
    resumeScheduled = false
    drain()
  }
  const drain = () => {
    if (receiver === undefined || paused || draining || reported || unmapped) return
    draining = true
    let handed = 0
    try {
      while (true) {
        if (handed >= turnBytes) {
          if (!resumeScheduled) {
            resumeScheduled = true
            setImmediate(resumeNextTurn)
          }
          return
        }
        // a receiver that copies has done with the last read: the next goes over it
        if (reuse) used = 0
        else if (slab.length - used < slabReserve) fresh(0)
        let copied: number
        try {
          copied = link.takeInto(slab, used, slab.length - used, state)
        } catch (error) {
          poison(error instanceof Error ? error.message : String(error))
          return
        }
        if (copied < 0) {
          // the next record needs more room than this slab has left
          fresh(-copied)
          continue
        }
        if (copied > 0) {
          const data = slab.subarray(used, used + copied)
          used += copied
          handed += copied
          stats.reads++
          stats.bytesRead += copied
          if (!receiver.data(data)) {
            paused = true
            return
          }
          continue
        }
        if (state[0] === 2) {
          peerEnded = true
          report(new PipeClosed({ orderly: true, reason: "end of stream" }))
          closeIfDone()
          return
        }
        if (peerGone !== undefined) {
          report(peerGone)
          return
        }
        // asleep until a wake-up, unless data came while arming
        if (state[0] !== 1) return
      }
    } finally {
      draining = false
    }
  }

  link.onWake(() => {
    stats.heard++
    drain()
    wakeWriters()
  })
  // the side channel carries nothing once the link is set up: it is read for its end, and a byte on
  // it is a peer breaking the protocol, which loses the link as a dead peer does
  socket.on("data", () => socket.destroy())
  socket.resume()
  socket.on("error", (error) => {
    peerGone ??= new PipeClosed({ orderly: false, reason: error.message })
  })
  socket.on("close", () => {
    peerGone ??= new PipeClosed({ orderly: false, reason: "the peer went away" })
    failure ??= peerGone
    drain()
    wakeWriters()
    if (reported) release()
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
    stats.bytesWritten += sent
    return sent === total ? Effect.void : writeRest(chunks, sent)
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
        advance(chunks, at, sent)
      }
    })

  return {
    write,
    deliver: (attached) => {
      receiver = attached
      reuse = attached.copies === true
      drain()
    },
    resume: () => {
      paused = false
      drain()
    },
    end: Effect.sync(() => {
      if (unmapped || ended) return
      ended = true
      link.endWrite()
      closeIfDone()
    }),
    destroy: Effect.sync(() => {
      failure ??= new PipeClosed({ orderly: false, reason: "the link was closed" })
      socket.destroy()
      wakeWriters()
      release()
    })
  }
}

