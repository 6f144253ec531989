// The storage engine's behaviour without crashes, run on every Disk Layer (real files and the
// simulated disk). Crash behaviour is specified on the simulated disk in StoreCrash.test.ts.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { CommitLog, Disk, Store } from "../src/index.ts"

export interface DiskSubject {
  readonly name: string
  /** A fresh disk and an empty directory on it, for one test. */
  readonly layer: () => Layer.Layer<Disk.Disk>
  readonly directory: () => string
}

const small = { ...Store.StoreSettings.defaultValue(), segmentBytes: 4096, indexEntriesPerSegment: 16 }

export const body = (queue: string, n: number, size = 100) => {
  const bytes = new Uint8Array(size)
  const label = new TextEncoder().encode(`${queue}#${n}:`)
  bytes.set(label.subarray(0, size))
  for (let i = label.length; i < size; i++) bytes[i] = (n * 31 + i) & 0xff
  return bytes
}

export const storeContract = (subject: DiskSubject) =>
  describe(`Store on ${subject.name}`, () => {
    const withStore = <A, E>(
      body: (open: () => Effect.Effect<Store.Store, unknown, Scope.Scope | Disk.Disk>) => Effect.Effect<A, E, Scope.Scope | Disk.Disk>,
      settings = small
    ) => {
      const directory = subject.directory()
      const open = () => Store.open(directory).pipe(Effect.provideService(Store.StoreSettings, settings))
      return body(open).pipe(Effect.provide(subject.layer()))
    }
    const q = (topic: string, queueId = 0) => ({ topic, queueId })
    const texts = (records: ReadonlyArray<Store.StoredRecord>) => records.map((r) => [...r.body])

    it.effect("appended messages read back byte for byte, each queue with its own offsets", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          const a = yield* store.append(q("orders"), [0, 1, 2].map((n) => ({ body: body("a", n), tagHash: n })), "sync")
          const b = yield* store.append(q("orders", 1), [0, 1].map((n) => ({ body: body("b", n), tagHash: 7 })), "async")
          const c = yield* store.append(q("orders"), [{ body: body("a", 3), tagHash: 3 }], "async")
          assert.deepStrictEqual(a.map((x) => x.offset), [0, 1, 2])
          assert.deepStrictEqual(b.map((x) => x.offset), [0, 1])
          assert.deepStrictEqual(c.map((x) => x.offset), [3])
          const read = yield* store.read(q("orders"), 0, { maxCount: 100, maxBytes: 1 << 20 })
          assert.deepStrictEqual(texts(read), [0, 1, 2, 3].map((n) => [...body("a", n)]))
          assert.deepStrictEqual(read.map((r) => r.tagHash), [0, 1, 2, 3])
          const fromTwo = yield* store.read(q("orders"), 2, { maxCount: 1, maxBytes: 1 << 20 })
          assert.deepStrictEqual(fromTwo.map((r) => r.offset), [2])
          assert.deepStrictEqual(yield* store.bounds(q("orders", 1)), { start: 0, end: 2 })
        })))

    it.effect("a read stops at maxBytes but always returns at least one message", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          yield* store.append(q("t"), [0, 1, 2, 3].map((n) => ({ body: body("t", n, 1000), tagHash: 0 })), "sync")
          const one = yield* store.read(q("t"), 0, { maxCount: 10, maxBytes: 10 })
          assert.strictEqual(one.length, 1)
          const two = yield* store.read(q("t"), 0, { maxCount: 10, maxBytes: 2 * (1000 + CommitLog.HeaderBytes) })
          assert.strictEqual(two.length, 2)
        })))

    it.effect("messages span segment files and survive closing and reopening, offsets continuing", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const first = yield* Scope.make()
          const before = yield* open().pipe(Scope.provide(first))
          for (let n = 0; n < 100; n++) yield* before.append(q("t", n % 3), [{ body: body("t", n), tagHash: n }], n % 2 === 0 ? "sync" : "async")
          yield* Scope.close(first, Exit.void)
          const store = yield* open()
          assert.strictEqual(store.recovery.truncatedBytes, 0)
          assert.isUndefined(store.recovery.damage)
          assert.strictEqual(store.recovery.scanned, 0, "a clean close checkpoints everything: nothing to rebuild")
          for (let queueId = 0; queueId < 3; queueId++) {
            const expected = Array.from({ length: 100 }, (_, n) => n).filter((n) => n % 3 === queueId)
            const read = yield* store.read(q("t", queueId), 0, { maxCount: 1000, maxBytes: 1 << 20 })
            assert.deepStrictEqual(texts(read), expected.map((n) => [...body("t", n)]))
            assert.deepStrictEqual(read.map((r) => r.tagHash), expected)
          }
          const next = yield* store.append(q("t", 0), [{ body: body("t", 100), tagHash: 0 }], "sync")
          assert.strictEqual(next[0]!.offset, 34)
        })))

    it.effect("concurrent sync appends share fdatasyncs (group commit)", () =>
      Effect.gen(function*() {
        const counters: Disk.Counters = { datasyncs: 0, bytesWritten: 0 }
        const directory = subject.directory()
        const result = yield* Effect.gen(function*() {
          const store = yield* Store.open(directory).pipe(Effect.provideService(Store.StoreSettings, { ...small, segmentBytes: 1 << 20 }))
          const before = counters.datasyncs
          const appends = yield* Effect.forEach(Array.from({ length: 64 }, (_, n) => n), (n) =>
            Effect.forkChild(store.append(q("t"), [{ body: body("t", n), tagHash: 0 }], "sync")))
          const results = yield* Effect.forEach(appends, Fiber.join)
          return { before, after: counters.datasyncs, offsets: results.map((r) => r[0]!.offset).sort((a, b) => a - b) }
        }).pipe(Effect.provide(Disk.layerCounting(counters).pipe(Layer.provide(subject.layer()))))
        assert.deepStrictEqual(result.offsets, Array.from({ length: 64 }, (_, n) => n))
        assert.isBelow(result.after - result.before, 16, "64 concurrent sync appends took as many fdatasyncs")
      }))

    it.effect("offsetForTime finds the first message stored at or after a time", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          for (let n = 0; n < 5; n++) {
            yield* store.append(q("t"), [{ body: body("t", n), tagHash: 0 }], "async")
            yield* TestClock.adjust("1 second")
          }
          assert.strictEqual(yield* store.offsetForTime(q("t"), start + 2_000), 2)
          assert.strictEqual(yield* store.offsetForTime(q("t"), start + 2_500), 3)
          assert.strictEqual(yield* store.offsetForTime(q("t"), start + 60_000), 5)
        })))

    it.effect("retention by size deletes whole old segments; reads below the low-water mark fail; offsets go on", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          for (let n = 0; n < 200; n++) yield* store.append(q("logs"), [{ body: body("logs", n), tagHash: 0 }], "async")
          const deleted = yield* store.retain(() => ({ maxBytes: 8192 }))
          assert.isAbove(deleted, 0)
          const { start, end } = yield* store.bounds(q("logs"))
          assert.isAbove(start, 0)
          assert.strictEqual(end, 200)
          const below = yield* Effect.flip(store.read(q("logs"), 0, { maxCount: 1, maxBytes: 1 << 20 }))
          assert.strictEqual(below._tag, "OffsetBelowStart")
          const kept = yield* store.read(q("logs"), start, { maxCount: 1000, maxBytes: 1 << 20 })
          assert.deepStrictEqual(kept.map((r) => r.offset), Array.from({ length: 200 - start }, (_, i) => start + i))
          const next = yield* store.append(q("logs"), [{ body: body("logs", 200), tagHash: 0 }], "sync")
          assert.strictEqual(next[0]!.offset, 200)
        })))

    it.effect("retention keeps the segment of a kept record and everything written after it", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          for (let n = 0; n < 100; n++) yield* store.append(q("logs"), [{ body: body("logs", n), tagHash: 0 }], "async")
          yield* store.append(q("pinned"), [{ body: body("pinned", 0), tagHash: 0 }], "async")
          for (let n = 100; n < 200; n++) yield* store.append(q("logs"), [{ body: body("logs", n), tagHash: 0 }], "async")
          const everything = () => ({ maxBytes: 0 })
          const pinned = yield* store.read(q("pinned"), 0, { maxCount: 1, maxBytes: 1 << 20 })
          yield* store.retain(everything, [{ queue: q("pinned"), offset: 0 }, { queue: q("logs"), offset: 150 }, { queue: q("none"), offset: 0 }])
          const start = (yield* store.bounds(q("logs"))).start
          assert.isAbove(start, 0, "segments before the kept record went")
          assert.isAtMost(start, 100, "the kept record's segment stayed, and the ones after it")
          assert.deepStrictEqual(yield* store.read(q("pinned"), 0, { maxCount: 1, maxBytes: 1 << 20 }), pinned)
          // a kept offset not stored yet keeps nothing
          yield* store.retain(everything, [{ queue: q("pinned"), offset: 1 }])
          assert.isAbove((yield* store.bounds(q("logs"))).start, 150)
          assert.strictEqual((yield* store.bounds(q("pinned"))).start, 1)
        })))

    it.effect("retention after reopening deletes segments written before it, by size and by age", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const first = yield* Scope.make()
          const before = yield* open().pipe(Scope.provide(first))
          for (let n = 0; n < 200; n++) yield* before.append(q("logs"), [{ body: body("logs", n), tagHash: 0 }], "async")
          for (let n = 0; n < 100; n++) yield* before.append(q("old"), [{ body: body("old", n), tagHash: 0 }], "async")
          yield* Scope.close(first, Exit.void)
          const store = yield* open()
          const deleted = yield* store.retain((topic) => topic === "logs" ? { maxBytes: 8192 } : {})
          assert.isAbove(deleted, 0, "segments older than the kept bytes went")
          assert.isAbove((yield* store.bounds(q("logs"))).start, 0)
          assert.strictEqual((yield* store.bounds(q("old"))).start, 0, "a topic kept whole keeps every segment it has records in")
          yield* TestClock.adjust("2 hours")
          yield* store.append(q("new"), [{ body: body("new", 0), tagHash: 0 }], "async")
          yield* store.retain(() => ({ maxAgeMillis: 60 * 60 * 1000 }))
          // every record written before reopening expired: each segment of them went but the active one
          const old = yield* store.bounds(q("old"))
          assert.isAbove(old.start, 0)
          const left = yield* store.read(q("old"), old.start, { maxCount: 1000, maxBytes: 1 << 20 })
          assert.deepStrictEqual(left.map((r) => r.offset), Array.from({ length: 100 - old.start }, (_, i) => old.start + i))
          assert.strictEqual((yield* store.read(q("new"), 0, { maxCount: 10, maxBytes: 1 << 20 })).length, 1)
        })))

    it.effect("retention by age deletes segments whose every record has expired, and only those", () =>
      withStore((open) =>
        Effect.gen(function*() {
          const store = yield* open()
          for (let n = 0; n < 100; n++) yield* store.append(q("old"), [{ body: body("old", n), tagHash: 0 }], "async")
          yield* TestClock.adjust("2 hours")
          for (let n = 0; n < 100; n++) yield* store.append(q("new"), [{ body: body("new", n), tagHash: 0 }], "async")
          yield* store.retain(() => ({ maxAgeMillis: 60 * 60 * 1000 }))
          const old = yield* store.bounds(q("old"))
          assert.isAbove(old.start, 0, "expired segments of the old topic went")
          const fresh = yield* store.read(q("new"), 0, { maxCount: 1000, maxBytes: 1 << 20 })
          assert.strictEqual(fresh.length, 100, "nothing of the new topic went")
        })))
  })
