// Disk faults reach the Store's callers as typed errors and leave the store consistent.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { SimDisk, Store } from "../src/index.ts"
import { body } from "./Store.contract.ts"

const settings = { ...Store.StoreSettings.defaultValue(), segmentBytes: 4096, indexEntriesPerSegment: 16 }
const queue = { topic: "t", queueId: 0 }
const directory = "/data/store"

const onSimDisk = <A, E>(effect: Effect.Effect<A, E, SimDisk.SimDisk | import("../src/Disk.ts").Disk | Scope.Scope>) =>
  effect.pipe(Effect.provideService(Store.StoreSettings, settings), Effect.provide(Layer.fresh(SimDisk.layer())))

const bodies = (store: Store.Store) =>
  Effect.map(store.read(queue, 0, { maxCount: 1000, maxBytes: 1 << 20 }), (records) => records.map((r) => [...r.body]))

describe("Store under disk faults", () => {
  it.effect("a full disk fails the append with DiskFull, writes nothing, and appends go on once there is room", () =>
    onSimDisk(Effect.gen(function*() {
      const sim = yield* SimDisk.SimDisk
      const store = yield* Store.open(directory)
      yield* store.append(queue, [{ body: body("t", 0), tagHash: 0 }], "sync")
      const used = (yield* sim.stats).bytesWritten
      yield* sim.setCapacity(used + 50)
      const full = yield* Effect.flip(store.append(queue, [{ body: body("t", 1), tagHash: 0 }], "sync"))
      assert.strictEqual(full._tag, "DiskFull")
      assert.deepStrictEqual(yield* store.bounds(queue), { start: 0, end: 1 })
      yield* sim.setCapacity(undefined)
      const next = yield* store.append(queue, [{ body: body("t", 2), tagHash: 0 }], "sync")
      assert.strictEqual(next[0]!.offset, 1, "the failed append's offset is handed out again")
      assert.deepStrictEqual(yield* bodies(store), [[...body("t", 0)], [...body("t", 2)]])
    })))

  it.effect("a failed fdatasync fails the waiting appends and stops the store until it is reopened", () =>
    onSimDisk(Effect.gen(function*() {
      const sim = yield* SimDisk.SimDisk
      const scope = yield* Scope.make()
      const store = yield* Store.open(directory).pipe(Scope.provide(scope))
      yield* store.append(queue, [{ body: body("t", 0), tagHash: 0 }], "sync")
      yield* sim.failNextSync(`${directory}/log`)
      const failed = yield* Effect.flip(store.append(queue, [{ body: body("t", 1), tagHash: 0 }], "sync"))
      assert.strictEqual(failed._tag, "StoreFailed")
      const later = yield* Effect.flip(store.append(queue, [{ body: body("t", 2), tagHash: 0 }], "async"))
      assert.strictEqual(later._tag, "StoreFailed", "no append is taken after a failed sync")
      yield* Scope.close(scope, Exit.void)
      const reopened = yield* Store.open(directory)
      const recovered = yield* bodies(reopened)
      assert.deepStrictEqual(recovered[0], [...body("t", 0)], "the acknowledged record survived")
      const next = yield* reopened.append(queue, [{ body: body("t", 3), tagHash: 0 }], "sync")
      assert.strictEqual(next[0]!.offset, recovered.length)
    })))

  it.effect("a failed index sync at a checkpoint stops the store; after a crash the reopened store rebuilds the index from the log", () =>
    onSimDisk(Effect.gen(function*() {
      const sim = yield* SimDisk.SimDisk
      const scope = yield* Scope.make()
      const store = yield* Store.open(directory).pipe(Scope.provide(scope))
      for (let i = 0; i < 3; i++) yield* store.append(queue, [{ body: body("t", i), tagHash: 0 }], "sync")
      // the index loses its unsynced entries; a checkpoint after it would call them durable
      yield* sim.failNextSync(`${directory}/index`)
      const failure = yield* Effect.flip(store.checkpoint)
      assert.strictEqual(failure._tag, "DiskIOError")
      yield* store.checkpoint
      const stopped = yield* Effect.flip(store.append(queue, [{ body: body("t", 3), tagHash: 0 }], "sync"))
      assert.strictEqual(stopped._tag, "StoreFailed", "no append is taken after the failed sync")
      yield* sim.crash
      yield* Scope.close(scope, Exit.void)
      const reopened = yield* Store.open(directory)
      assert.deepStrictEqual(yield* bodies(reopened), [0, 1, 2].map((i) => [...body("t", i)]), "every acknowledged record, found through the rebuilt index")
    })))

  it.effect("a failing read surfaces as a typed error and the next read works", () =>
    onSimDisk(Effect.gen(function*() {
      const sim = yield* SimDisk.SimDisk
      const store = yield* Store.open(directory)
      yield* store.append(queue, [{ body: body("t", 0), tagHash: 0 }], "sync")
      yield* sim.failReads(`${directory}/log`, 1)
      const error = yield* Effect.flip(store.read(queue, 0, { maxCount: 1, maxBytes: 1 << 20 }))
      assert.strictEqual(error._tag, "DiskIOError")
      yield* sim.failReads(`${directory}/log`, 0)
      assert.deepStrictEqual(yield* bodies(store), [[...body("t", 0)]])
    }).pipe(Effect.provideService(Store.StoreSettings, { ...settings, recentBytes: 0 }))))

  it.effect("the newest records are read from memory, within the budget; older ones from the disk", () =>
    onSimDisk(Effect.gen(function*() {
      const sim = yield* SimDisk.SimDisk
      const store = yield* Store.open(directory)
      const other = { topic: "u", queueId: 0 }
      // 100-byte bodies are 136-byte records: the budget holds the last three, across both queues
      for (let i = 0; i < 4; i++) yield* store.append(queue, [{ body: body("t", i), tagHash: 0 }], "async")
      yield* store.append(other, [{ body: body("u", 0), tagHash: 0 }], "async")
      yield* sim.failReads(`${directory}/log`, 1)
      const fromMemory = yield* store.read(queue, 2, { maxCount: 10, maxBytes: 1 << 20 })
      assert.deepStrictEqual(fromMemory.map((r) => [...r.body]), [[...body("t", 2)], [...body("t", 3)]], "no disk read needed")
      assert.strictEqual((yield* store.read(other, 0, { maxCount: 10, maxBytes: 1 << 20 })).length, 1)
      const older = yield* Effect.flip(store.read(queue, 1, { maxCount: 10, maxBytes: 1 << 20 }))
      assert.strictEqual(older._tag, "DiskIOError", "dropped from memory: read from the disk")
      yield* sim.failReads(`${directory}/log`, 0)
      assert.deepStrictEqual((yield* store.read(queue, 0, { maxCount: 2, maxBytes: 1 << 20 })).map((r) => [...r.body]), [[...body("t", 0)], [...body("t", 1)]])
    }).pipe(Effect.provideService(Store.StoreSettings, { ...settings, recentBytes: 3 * 136 }))))
})
