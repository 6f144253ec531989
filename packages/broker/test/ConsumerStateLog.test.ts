// The consumer-state log (`%POP%`) as a format: what a restarted broker makes of records written in
// an order a race can produce.
import { assert, describe, it } from "@effect/vitest"
import { ConsumerGroup, MessageBatch } from "@strait/core"
import { SimDisk, Store } from "@strait/storage"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { Consumption, Topics } from "../src/index.ts"
import { message, text } from "./fixtures.ts"

const Window = 1
const Acknowledged = 2
const Consumed = 3
const SnapshotEnd = 4

// kind (u8), queue id (u32), offset, pop time, window end (f64), attempt (u32), then `group \0 topic`
const stateRecord = (kind: number, offset: number, popTime = 0, invisibleUntil = 0, attempt = 0) => {
  const key = kind === SnapshotEnd ? new Uint8Array(0) : new TextEncoder().encode("g\u0000t")
  const bytes = new Uint8Array(33 + key.length)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, kind)
  view.setUint32(1, 0, true)
  view.setFloat64(5, offset, true)
  view.setFloat64(13, popTime, true)
  view.setFloat64(21, invisibleUntil, true)
  view.setUint32(29, attempt, true)
  bytes.set(key, 33)
  return { body: bytes, tagHash: 0 }
}

describe("the consumer-state log", () => {
  it.effect("an acknowledgement recorded ahead of a snapshot that still shows its message in flight stays: the snapshot only adds", () =>
    Effect.gen(function*() {
      const store = yield* Store.open("/data/store")
      yield* store.append({ topic: "t", queueId: 0 }, ["m0", "m1", "m2"].map((body) => ({ body: MessageBatch.encode([message("t", body)]), tagHash: 0 })), "sync")
      const now = yield* Clock.currentTimeMillis
      const until = now + 60_000
      yield* store.append({ topic: "%POP%", queueId: 0 }, [
        stateRecord(Window, 0, now, until, 1),
        stateRecord(Window, 1, now, until, 1),
        // acknowledged (no permit taken) while a snapshot was reading the books...
        stateRecord(Acknowledged, 0),
        // ...which had read them just before, and were written after
        stateRecord(Consumed, 0),
        stateRecord(Window, 0, now, until, 1),
        stateRecord(Window, 1, now, until, 1),
        stateRecord(SnapshotEnd, 0)
      ], "sync")
      const spec = yield* Topics.decodeSpec({ name: "t", kind: "NORMAL", queues: 1 })
      const group = new ConsumerGroup.ConsumerGroup({ name: "g" as ConsumerGroup.ConsumerGroupName })
      const consumption = yield* Consumption.make({
        brokerName: "b",
        store,
        topic: () => Effect.succeed(spec),
        group: () => Effect.succeed(group),
        committedOffset: () => Effect.undefined,
        deadLetter: () => Effect.void,
        groupNames: () => ["g"],
        snapshotFrom: 0,
        saveSnapshotFrom: () => Effect.void
      })
      const pop = (invisibleDuration: "10 minutes") => consumption.pop({ group: "g", topic: "t", maxMessages: 32, invisibleDuration })
      assert.deepStrictEqual((yield* pop("10 minutes")).map((r) => text(r.message)), ["m2"], "m0 and m1 are in flight")
      yield* TestClock.adjust("1 minute")
      const again = yield* pop("10 minutes")
      assert.deepStrictEqual(again.map((r) => text(r.message)), ["m1"], "m0 stays acknowledged; m1's window ended")
      assert.strictEqual(again[0]!.message.deliveryAttempt, 2)
    }).pipe(Effect.provide(SimDisk.layer())))
})
