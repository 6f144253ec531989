// The store against a model, on the simulated disk, through crashes: random appends (sync and
// async, several queues, concurrent), checkpoints, crashes that lose or tear unsynced writes, and
// restarts. After every restart: every record acknowledged under `sync` is there; each queue holds a
// prefix of what was written to it, byte for byte; and appending continues from the recovered end.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Random, Scope } from "effect"
import { TestClock } from "effect/testing"
import { SimDisk, Store } from "../src/index.ts"
import { body } from "./Store.contract.ts"

const settings = { ...Store.StoreSettings.defaultValue(), segmentBytes: 2048, indexEntriesPerSegment: 8 }
const queues = [{ topic: "a", queueId: 0 }, { topic: "a", queueId: 1 }, { topic: "b", queueId: 0 }]
const directory = "/data/broker"

interface Written {
  readonly bytes: Uint8Array
  readonly acked: boolean
}

/** One seeded life of a store: rounds of appends, checkpoints and crashes. Returns what it checked. */
const scenario = (seed: number) =>
  Effect.gen(function*() {
    const sim = yield* SimDisk.SimDisk
    // the model: per queue, the record at each offset, and whether a sync append acknowledged it
    const model = queues.map(() => [] as Array<Written>)
    let scope = yield* Scope.make()
    let store = yield* Store.open(directory).pipe(Scope.provide(scope))
    let crashes = 0
    let checkedRecords = 0

    const verify = (recovered: Store.Store) =>
      Effect.gen(function*() {
        for (let q = 0; q < queues.length; q++) {
          const { start, end } = yield* recovered.bounds(queues[q]!)
          const records = yield* recovered.read(queues[q]!, start, { maxCount: 100_000, maxBytes: 1 << 30 })
          assert.strictEqual(start, 0, `seed ${seed}: nothing was retained away`)
          assert.strictEqual(records.length, end, `seed ${seed}: every offset below the end reads back`)
          const lastAcked = model[q]!.findLastIndex((w) => w.acked)
          assert.isAtLeast(end, lastAcked + 1, `seed ${seed}: queue ${q} lost an acknowledged record`)
          assert.isAtMost(end, model[q]!.length, `seed ${seed}: queue ${q} has records nobody wrote`)
          records.forEach((record, offset) => {
            assert.strictEqual(record.offset, offset)
            assert.deepStrictEqual([...record.body], [...model[q]![offset]!.bytes], `seed ${seed}: queue ${q} offset ${offset} differs`)
          })
          checkedRecords += records.length
          model[q]!.length = end // what was lost is gone; its offsets are handed out again
        }
      })

    for (let round = 0; round < 12; round++) {
      const appends = yield* Random.nextIntBetween(1, 6)
      const fibers = []
      for (let i = 0; i < appends; i++) {
        const q = yield* Random.nextIntBetween(0, queues.length - 1)
        const policy = (yield* Random.nextBoolean) ? "sync" as const : "async" as const
        const count = yield* Random.nextIntBetween(1, 4)
        const bodies = yield* Effect.forEach(Array.from({ length: count }), () =>
          Effect.map(Random.nextIntBetween(1, 300), (size) => body(`${seed}/${round}/${i}`, size, size)))
        fibers.push(yield* Effect.forkChild(
          store.append(queues[q]!, bodies.map((b) => ({ body: b, tagHash: q })), policy).pipe(
            Effect.map((appended) => ({ q, policy, bodies, offsets: appended.map((a) => a.offset) }))
          )
        ))
      }
      for (const fiber of fibers) {
        const { bodies, offsets, policy, q } = yield* Fiber.join(fiber)
        offsets.forEach((offset, i) => {
          assert.strictEqual(offset, model[q]!.length, `seed ${seed}: offsets are dense and in order`)
          model[q]!.push({ bytes: bodies[i]!, acked: policy === "sync" })
        })
      }
      const action = yield* Random.nextIntBetween(0, 9)
      if (action === 0) yield* store.checkpoint
      if (action === 1) yield* TestClock.adjust("300 millis") // the async flusher runs
      if (action >= 7) {
        yield* sim.crash
        crashes++
        yield* Scope.close(scope, Exit.void) // the dead process's finalizers hit stale handles
        scope = yield* Scope.make()
        store = yield* Store.open(directory).pipe(Scope.provide(scope))
        yield* verify(store)
      }
    }
    yield* sim.crash
    yield* Scope.close(scope, Exit.void)
    const last = yield* Scope.make()
    yield* verify(yield* Store.open(directory).pipe(Scope.provide(last)))
    yield* Scope.close(last, Exit.void)
    return { crashes: crashes + 1, checkedRecords }
  }).pipe(
    Effect.provideService(Store.StoreSettings, settings),
    Effect.provide(Layer.fresh(SimDisk.layer())),
    Random.withSeed(seed)
  )

describe("Store through crashes (simulated disk, model-based)", () => {
  it.effect("acknowledged records survive every crash, and each queue recovers to a prefix of what was written", () =>
    Effect.gen(function*() {
      let crashes = 0
      let records = 0
      for (let seed = 1; seed <= 40; seed++) {
        const result = yield* scenario(seed)
        crashes += result.crashes
        records += result.checkedRecords
      }
      assert.isAbove(crashes, 40)
      assert.isAbove(records, 1_000)
    }))

  it.effect("a seed replays the same recovered state", () =>
    Effect.gen(function*() {
      const first = yield* scenario(7)
      const second = yield* scenario(7)
      assert.deepStrictEqual(second, first)
    }))
})
