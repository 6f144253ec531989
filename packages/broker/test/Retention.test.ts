import { assert, describe, it } from "@effect/vitest"
import { Message } from "@strait/core"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { message, text, withBroker } from "./fixtures.ts"

// messages older than ten minutes go, checked every minute, from a log of 4 KiB segments
const options = {
  settings: { retention: { maxAgeMillis: 10 * 60_000 }, retentionInterval: "1 minute" as const },
  storeSettings: { segmentBytes: 4096, asyncFlushInterval: "1 second" as const }
}
const padded = (body: string) => body.padEnd(200, ".")
const texts = (received: ReadonlyArray<{ readonly message: Message.StoredMessage }>) => received.map((r) => text(r.message).replace(/\.+$/, ""))
const pop = (group: string, topic: string, invisibleDuration = "30 seconds") => ({
  group,
  topic,
  maxMessages: 32,
  invisibleDuration: invisibleDuration as "30 seconds"
})
// one send per message: each its own record, so segments fill and roll
const sendEach = (broker: { readonly send: (messages: ReadonlyArray<Message.Message>) => Effect.Effect<unknown, unknown> }, topic: string, bodies: ReadonlyArray<string>) =>
  Effect.forEach(bodies, (body) => broker.send([message(topic, padded(body))]), { discard: true })

describe("Retention", () => {
  it.effect("messages past the retention go with their segments; a pull below the low-water mark is out of range; a group behind goes on from the oldest message kept", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* sendEach(broker, "t", Array.from({ length: 60 }, (_, n) => `old-${n}`))
        // the group has received every message, acknowledged none, when retention deletes most
        assert.strictEqual((yield* broker.pop(pop("g", "t"))).length + (yield* broker.pop(pop("g", "t"))).length, 60)
        yield* TestClock.adjust("20 minutes")
        yield* sendEach(broker, "t", ["new-0", "new-1"])
        yield* TestClock.adjust("1 minute")
        const { end, start } = (yield* broker.describeTopic("t")).queues[0]!
        assert.isAbove(start, 1, "the old segments went")
        assert.strictEqual(end, 62, "offsets go on")
        const below = yield* Effect.flip(broker.pull({ topic: "t", queueId: 0, offset: 0, maxCount: 10 }))
        assert.strictEqual(below._tag, "OffsetOutOfRange")
        const received = yield* broker.pop(pop("g", "t"))
        assert.deepStrictEqual(
          received.map((r) => r.message.queueOffset),
          Array.from({ length: end - start }, (_, i) => start + i),
          "the group goes on from the oldest message kept, in order"
        )
        assert.deepStrictEqual(texts(received).slice(-2), ["new-0", "new-1"])
        for (const r of received) yield* broker.ack("g", "t", r.receiptHandle)
        assert.deepStrictEqual(yield* broker.groupProgress("g"), [{ topic: "t", queueId: 0, end, consumed: end, inFlight: 0 }], "what was deleted counts as consumed")
      }), options))

  it.effect("a delayed message keeps its record and everything after it until it is delivered, across a restart", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        yield* broker.createTopic({ name: "f", kind: "NORMAL", queues: 1 })
        const now = yield* Clock.currentTimeMillis
        yield* broker.send([message("d", "later", { deliveryTimestamp: now + 30 * 60_000 })])
        yield* sendEach(broker, "f", Array.from({ length: 60 }, (_, n) => `filler-${n}`))
        yield* TestClock.adjust("20 minutes")
        assert.strictEqual((yield* broker.describeTopic("f")).queues[0]!.start, 0, "nothing after the held message went")
        const again = yield* restart()
        yield* TestClock.adjust("10 minutes")
        const received = yield* again.pop(pop("g", "d"))
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["later"], "delivered at its time")
        yield* again.ack("g", "d", received[0]!.receiptHandle)
        yield* TestClock.adjust("2 minutes")
        assert.isAbove((yield* again.describeTopic("f")).queues[0]!.start, 0, "once delivered it keeps nothing")
      }), options))

  it.effect("a half message keeps its record and everything after it until its transaction ends", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* broker.createTopic({ name: "f", kind: "NORMAL", queues: 1 })
        const [half] = yield* broker.send([message("tx", "open")], { transactional: true })
        yield* sendEach(broker, "f", Array.from({ length: 60 }, (_, n) => `filler-${n}`))
        yield* TestClock.adjust("1 minute")
        assert.strictEqual((yield* broker.describeTopic("f")).queues[0]!.start, 0, "nothing after the half message went")
        yield* broker.endTransaction("tx", half!.transactionId, "COMMIT")
        yield* TestClock.adjust("1 minute")
        assert.isAbove((yield* broker.describeTopic("f")).queues[0]!.start, 0, "once committed it keeps nothing")
        assert.deepStrictEqual((yield* broker.pop(pop("g", "tx"))).map((r) => text(r.message)), ["open"])
      }), { ...options, settings: { ...options.settings, retention: { maxBytes: 4096 } } }))

  it.effect("consumer state is snapshotted once its log grows; a restart replays from the snapshot with acknowledgements, windows and attempts", () =>
    withBroker((broker, restart, readFile) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(Array.from({ length: 600 }, (_, n) => message("t", `m-${n}`)))
        const handles = new Map<string, string>()
        while (true) {
          const received = yield* broker.pop(pop("g", "t", "10 minutes"))
          if (received.length === 0) break
          for (const r of received) handles.set(text(r.message), r.receiptHandle)
        }
        assert.strictEqual(handles.size, 600)
        for (const [body, handle] of handles) if (body !== "m-3" && body !== "m-7") yield* broker.ack("g", "t", handle)
        // the next retention round snapshots the state (1,198 records by now)
        yield* TestClock.adjust("1 minute")
        const saved = yield* readFile("offsets.json")
        assert.isAbove(JSON.parse(new TextDecoder().decode(saved!)).stateSnapshotFrom, 1000, "a snapshot starts after the records it replaces")
        // after the snapshot: one more acknowledgement
        yield* broker.ack("g", "t", handles.get("m-7")!)
        const again = yield* restart()
        yield* TestClock.adjust("8 minutes")
        assert.deepStrictEqual(yield* again.pop(pop("g", "t")), [], "m-3's window, given before the snapshot, still runs")
        yield* TestClock.adjust("1 minute")
        const redelivered = yield* again.pop(pop("g", "t"))
        assert.deepStrictEqual(redelivered.map((r) => text(r.message)), ["m-3"], "only m-3: every other message stays acknowledged")
        assert.strictEqual(redelivered[0]!.message.deliveryAttempt, 2, "its attempts count on")
      })))
})
