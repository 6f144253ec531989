// Recovery from damage on real files: the log is cut at the first bad record, the damage is
// reported with its file and position, everything before it stays readable, and no record that
// fails its CRC is ever served.
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { CommitLog, RealDisk, Store } from "../src/index.ts"
import { body } from "./Store.contract.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "strait-recovery-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0

const settings = { ...Store.StoreSettings.defaultValue(), segmentBytes: 2048, indexEntriesPerSegment: 16 }
const queue = { topic: "t", queueId: 0 }
const recordBytes = 100 + CommitLog.HeaderBytes

/**
 * Writes `count` 100-byte messages under `sync` to a fresh store and returns its directory: closed
 * cleanly, or, with `crashed`, a copy taken while it ran (what a crash leaves: everything synced,
 * the checkpoint from opening).
 */
const written = (count: number, options: { readonly crashed: boolean }) =>
  Effect.gen(function*() {
    const directory = path.join(root, `store-${n++}`)
    const scope = yield* Scope.make()
    const store = yield* Store.open(directory).pipe(Scope.provide(scope))
    for (let i = 0; i < count; i++) yield* store.append(queue, [{ body: body("t", i), tagHash: 0 }], "sync")
    const crashed = `${directory}-crashed`
    if (options.crashed) fs.cpSync(directory, crashed, { recursive: true })
    yield* Scope.close(scope, Exit.void)
    return options.crashed ? crashed : directory
  })

const segmentFiles = (directory: string) =>
  fs.readdirSync(path.join(directory, "log")).filter((f) => f.endsWith(".log")).sort()

const reopen = (directory: string) => Store.open(directory)

const run = <A, E>(effect: Effect.Effect<A, E, import("../src/Disk.ts").Disk | Scope.Scope>) =>
  effect.pipe(Effect.provideService(Store.StoreSettings, settings), Effect.provide(RealDisk.layer))

describe("recovery", () => {
  it.effect("after a crash, a flipped byte in an older segment is reported with its file and position; everything before it is kept", () =>
    run(Effect.gen(function*() {
      const directory = yield* written(60, { crashed: true })
      const files = segmentFiles(directory)
      assert.isAbove(files.length, 2)
      const damaged = files[1]!
      const file = path.join(directory, "log", damaged)
      const bytes = fs.readFileSync(file)
      const victim = 3 // the fourth record of the second segment
      bytes[victim * recordBytes + CommitLog.HeaderBytes + 10]! ^= 0xff
      fs.writeFileSync(file, bytes)
      const store = yield* reopen(directory)
      const damage = store.recovery.damage
      assert.strictEqual(damage?._tag, "CorruptRecord")
      assert.strictEqual(damage?.file, damaged)
      assert.strictEqual(damage?.reason, "CRC mismatch")
      const perSegment = Math.floor(settings.segmentBytes / recordBytes)
      assert.strictEqual(damage?.position, Number(damaged.slice(0, 20)) + victim * recordBytes)
      const kept = perSegment + victim
      assert.deepStrictEqual(yield* store.bounds(queue), { start: 0, end: kept })
      const read = yield* store.read(queue, 0, { maxCount: 1000, maxBytes: 1 << 20 })
      assert.deepStrictEqual(read.map((r) => [...r.body]), Array.from({ length: kept }, (_, i) => [...body("t", i)]))
      assert.deepStrictEqual(segmentFiles(directory), files.slice(0, 2), "segments after the damage are unreachable and removed")
      const next = yield* store.append(queue, [{ body: body("t", 999), tagHash: 0 }], "sync")
      assert.strictEqual(next[0]!.offset, kept)
    })))

  it.effect("after a crash, a wrong magic is damage too", () =>
    run(Effect.gen(function*() {
      const directory = yield* written(40, { crashed: true })
      const file = path.join(directory, "log", segmentFiles(directory)[0]!)
      const bytes = fs.readFileSync(file)
      bytes[recordBytes + 4] = 0 // the second record's magic
      fs.writeFileSync(file, bytes)
      const store = yield* reopen(directory)
      assert.strictEqual(store.recovery.damage?.reason, "bad magic")
      assert.deepStrictEqual(yield* store.bounds(queue), { start: 0, end: 1 })
    })))

  it.effect("after a crash, a torn tail in the last segment is cut without being called damage", () =>
    run(Effect.gen(function*() {
      const directory = yield* written(10, { crashed: true })
      const files = segmentFiles(directory)
      const file = path.join(directory, "log", files[files.length - 1]!)
      const size = fs.statSync(file).size
      fs.truncateSync(file, size - 50) // the last record lost its end
      const store = yield* reopen(directory)
      assert.isUndefined(store.recovery.damage)
      assert.strictEqual(store.recovery.truncatedBytes, recordBytes - 50)
      assert.strictEqual((yield* store.bounds(queue)).end, 9)
      const read = yield* store.read(queue, 0, { maxCount: 100, maxBytes: 1 << 20 })
      assert.deepStrictEqual(read.map((r) => [...r.body]), Array.from({ length: 9 }, (_, i) => [...body("t", i)]))
    })))

  it.effect("a record damaged behind the checkpoint is never served: the read fails with CorruptRecord", () =>
    run(Effect.gen(function*() {
      const directory = yield* written(5, { crashed: false })
      const store = yield* reopen(directory)
      const file = path.join(directory, "log", segmentFiles(directory)[0]!)
      const fd = fs.openSync(file, "r+")
      fs.writeSync(fd, new Uint8Array([0xde, 0xad]), 0, 2, 2 * recordBytes + CommitLog.HeaderBytes)
      fs.closeSync(fd)
      const error = yield* Effect.flip(store.read(queue, 2, { maxCount: 1, maxBytes: 1 << 20 }))
      assert.strictEqual(error._tag, "CorruptRecord")
      const fine = yield* store.read(queue, 1, { maxCount: 1, maxBytes: 1 << 20 })
      assert.deepStrictEqual([...fine[0]!.body], [...body("t", 1)])
    })))
})
