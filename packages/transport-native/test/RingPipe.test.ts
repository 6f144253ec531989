// The ring pipe's reads, on a real shared-memory link in this process: a reader lets the event loop
// run between megabytes however full its writer keeps the ring, and a receiver that copies gets its
// reads in one piece of memory while one that keeps its chunks gets fresh memory each time. Skipped,
// saying why, where the addon is not built here.
import { assert, describe, it } from "@effect/vitest"
import { Connection } from "@strait/transport"
import { Effect } from "effect"
import { tmpdir } from "node:os"
import * as Addon from "../src/adapters/Addon.ts"
import * as ShmNet from "../src/adapters/ShmNet.ts"

const loaded = Addon.addon()
const capacity = 8 * 1024 * 1024
// one turn of the event loop; progress-based, not a timed wait
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
let links = 0

// a connected pair in this process: the connecting side writes, the accepting side reads
const pair = (addon: Addon.Addon) =>
  Effect.gen(function*() {
    const path = `${tmpdir()}/strait-ringpipe-${process.pid}-${links++}.sock`
    let accepted: Promise<Connection.Pipe> | undefined
    const server = yield* ShmNet.listen(path, (socket) => {
      accepted = Effect.runPromise(ShmNet.acceptLink(addon, socket, 5000))
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
    const writer = yield* Effect.acquireRelease(ShmNet.connect(addon, path, capacity), (pipe) => pipe.destroy)
    while (accepted === undefined) yield* turn
    const reader = yield* Effect.acquireRelease(Effect.promise(() => accepted!), (pipe) => pipe.destroy)
    return { writer, reader }
  })

// `count` records of `size` bytes, each filled with its number
const records = (count: number, size: number) => Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(i + 1))

if (typeof loaded === "string") {
  describe("RingPipe", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  describe("RingPipe", () => {
    it.effect("a reader hands over what a full ring holds across turns of the event loop, all of it in order", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* pair(loaded)
        const sent = records(64, 64 * 1024) // 4 MiB, waiting in the ring before the reader looks
        for (const record of sent) yield* writer.write([record])
        const received: Array<number> = []
        let bytes = 0
        reader.deliver({
          data: (chunk) => {
            bytes += chunk.length
            for (let at = 0; at < chunk.length; at += 64 * 1024) received.push(chunk[at]!)
            return true
          },
          closed: () => undefined
        })
        // the first turn handed over part of it and left the rest for later turns
        const inFirstTurn = bytes
        assert.isAbove(inFirstTurn, 0)
        assert.isBelow(inFirstTurn, 4 * 1024 * 1024)
        while (bytes < 4 * 1024 * 1024) yield* turn
        assert.deepStrictEqual(received, sent.map((record) => record[0]!))
      }))

    it.effect("a receiver that copies gets every read in the same memory; one that keeps its chunks gets new memory", () =>
      Effect.gen(function*() {
        const chunksOf = (copies: boolean) =>
          Effect.gen(function*() {
            const { reader, writer } = yield* pair(loaded)
            const chunks: Array<{ readonly chunk: Uint8Array; readonly first: number }> = []
            reader.deliver({ data: (chunk) => (chunks.push({ chunk, first: chunk[0]! }), true), closed: () => undefined, copies })
            for (const record of records(3, 1024)) {
              yield* writer.write([record])
              const before = chunks.length
              while (chunks.length === before) yield* turn
            }
            return chunks
          })

        const copying = yield* chunksOf(true)
        assert.deepStrictEqual(copying.map((read) => read.first), [1, 2, 3])
        for (const { chunk } of copying) {
          assert.strictEqual(chunk.buffer, copying[0]!.chunk.buffer)
          assert.strictEqual(chunk.byteOffset, copying[0]!.chunk.byteOffset)
        }

        const keeping = yield* chunksOf(false)
        // every chunk still holds what it was handed over with: nothing was read over it
        assert.deepStrictEqual(keeping.map((read) => read.chunk[0]), [1, 2, 3])
        assert.deepStrictEqual(keeping.map((read) => read.chunk.every((byte) => byte === read.first)), [true, true, true])
      }))
  })
}
