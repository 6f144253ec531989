import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { message, text, withBroker } from "./fixtures.ts"

const pop = (pollTimeout?: "1 minute") => ({
  group: "g",
  topic: "d",
  maxMessages: 32,
  invisibleDuration: "30 seconds" as const,
  ...(pollTimeout === undefined ? {} : { pollTimeout })
})
const now = Effect.clockWith((clock) => clock.currentTimeMillis)

describe("delayed delivery", () => {
  it.effect("a delayed message is not delivered before its time, and is delivered at it", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 2 })
        const [receipt] = yield* broker.send([message("d", "later", { deliveryTimestamp: (yield* now) + 10_000 })])
        assert.isString(receipt!.recallHandle)
        yield* TestClock.adjust("9999 millis")
        assert.deepStrictEqual(yield* broker.pop(pop()), [], "not a millisecond early")
        const waiting = yield* Effect.forkChild(broker.pop(pop("1 minute")))
        yield* TestClock.adjust("1 millis")
        const received = yield* Fiber.join(waiting)
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["later"])
        assert.strictEqual(received[0]!.message.queueId, receipt!.queueId)
      })))

  it.effect("a delivery time already past is delivered at once, without a recall handle", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        const [receipt] = yield* broker.send([message("d", "now", { deliveryTimestamp: (yield* now) - 20_000 })])
        assert.isUndefined(receipt!.recallHandle)
        assert.deepStrictEqual((yield* broker.pop(pop())).map((r) => text(r.message)), ["now"])
      })))

  it.effect("a timer survives a restart and fires once", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        yield* broker.send([message("d", "durable", { deliveryTimestamp: (yield* now) + 60_000 })])
        const again = yield* restart()
        yield* TestClock.adjust("1 minute")
        const received = yield* again.pop(pop())
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["durable"])
        yield* again.ack("g", "d", received[0]!.receiptHandle)
        const third = yield* restart()
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* third.pop(pop()), [], "a fired timer does not fire again after a restart")
        assert.strictEqual((yield* third.describeTopic("d")).queues[0]!.end, 1, "stored in its topic once")
      })))

  it.effect("a recalled message is never delivered; recalling twice, too late, or with a bad handle fails", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        const start = yield* now
        const [recalled, delivered] = yield* broker.send([
          message("d", "recalled", { deliveryTimestamp: start + 5_000 }),
          message("d", "delivered", { deliveryTimestamp: start + 5_000 })
        ])
        assert.strictEqual(yield* broker.recall("d", recalled!.recallHandle!), recalled!.messageId)
        assert.strictEqual((yield* Effect.flip(broker.recall("d", recalled!.recallHandle!)))._tag, "RecallFailed")
        assert.strictEqual((yield* Effect.flip(broker.recall("d", "garbage")))._tag, "RecallFailed")
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual((yield* broker.pop(pop())).map((r) => text(r.message)), ["delivered"])
        assert.strictEqual((yield* Effect.flip(broker.recall("d", delivered!.recallHandle!)))._tag, "RecallFailed")
      })))
})
