import { assert, describe, it } from "@effect/vitest"
import { ConsumerGroup, Message } from "@strait/core"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Filter } from "../src/index.ts"
import { message, text, withBroker } from "./fixtures.ts"

const popRequest = (group: string, extra: { maxMessages?: number; invisibleDuration?: string; pollTimeout?: string } = {}) => ({
  group,
  topic: "t",
  maxMessages: extra.maxMessages ?? 32,
  invisibleDuration: (extra.invisibleDuration ?? "30 seconds") as "30 seconds",
  ...(extra.pollTimeout === undefined ? {} : { pollTimeout: extra.pollTimeout as "20 seconds" })
})

const texts = (received: ReadonlyArray<{ readonly message: Message.StoredMessage }>) => received.map((r) => text(r.message)).sort()

describe("Pop consumption", () => {
  it.effect("a popped message is invisible to its group until the window ends, then comes again with attempt + 1", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        yield* broker.send([message("t", "a"), message("t", "b")])
        const first = yield* broker.pop(popRequest("g"))
        assert.deepStrictEqual(texts(first), ["a", "b"])
        assert.isTrue(first.every((r) => r.message.deliveryAttempt === 1))
        assert.deepStrictEqual(yield* broker.pop(popRequest("g")), [])
        yield* TestClock.adjust("30 seconds")
        const again = yield* broker.pop(popRequest("g"))
        assert.deepStrictEqual(texts(again), ["a", "b"])
        assert.isTrue(again.every((r) => r.message.deliveryAttempt === 2))
      })))

  it.effect("an acknowledged message is never delivered to the group again; another group gets its own copy", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a"), message("t", "b")])
        const received = yield* broker.pop(popRequest("g"))
        yield* broker.ack("g", "t", received.find((r) => text(r.message) === "a")!.receiptHandle)
        yield* TestClock.adjust("31 seconds")
        assert.deepStrictEqual(texts(yield* broker.pop(popRequest("g"))), ["b"])
        assert.deepStrictEqual(texts(yield* broker.pop(popRequest("other"))), ["a", "b"])
      })))

  it.effect("changing invisibility issues a new handle, and the old one can no longer acknowledge", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a")])
        const [received] = yield* broker.pop(popRequest("g"))
        const renewed = yield* broker.changeInvisibility("g", "t", received!.receiptHandle, "2 minutes")
        assert.notStrictEqual(renewed, received!.receiptHandle)
        const stale = yield* Effect.flip(broker.ack("g", "t", received!.receiptHandle))
        assert.strictEqual(stale._tag, "ReceiptHandleStale")
        yield* TestClock.adjust("1 minute") // past the first window, inside the new one
        assert.deepStrictEqual(yield* broker.pop(popRequest("g")), [])
        yield* broker.ack("g", "t", renewed)
        yield* TestClock.adjust("5 minutes")
        assert.deepStrictEqual(yield* broker.pop(popRequest("g")), [])
      })))

  it.effect("an expired handle cannot acknowledge, and a tampered one is rejected", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a")])
        const [received] = yield* broker.pop(popRequest("g", { invisibleDuration: "10 seconds" }))
        const handle = received!.receiptHandle
        const tampered = `${handle.slice(0, 10)}${handle[10] === "A" ? "B" : "A"}${handle.slice(11)}`
        assert.strictEqual((yield* Effect.flip(broker.ack("g", "t", tampered)))._tag, "InvalidReceiptHandle")
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual((yield* Effect.flip(broker.ack("g", "t", handle)))._tag, "ReceiptHandleExpired")
        assert.strictEqual((yield* Effect.flip(broker.pop(popRequest("g", { invisibleDuration: "13 hours" }))))._tag, "IllegalInvisibleTime")
      })))

  it.effect("past the group's max attempts a message goes to %DLQ%<group> with its id and origin, and no further", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.setGroup(new ConsumerGroup.ConsumerGroup({ name: "g" as ConsumerGroup.ConsumerGroupName, maxDeliveryAttempts: 2 }))
        const [sent] = yield* broker.send([message("t", "poison")])
        for (let attempt = 1; attempt <= 2; attempt++) {
          const received = yield* broker.pop(popRequest("g", { invisibleDuration: "1 second" }))
          assert.deepStrictEqual(received.map((r) => r.message.deliveryAttempt), [attempt])
          yield* TestClock.adjust("1 second")
        }
        assert.deepStrictEqual(yield* broker.pop(popRequest("g")), [], "never delivered a third time")
        const dead = yield* broker.pull({ topic: "%DLQ%g", queueId: 0, offset: 0, maxCount: 10 })
        assert.strictEqual(dead.messages.length, 1)
        const letter = dead.messages[0]!
        assert.strictEqual(letter.messageId, sent!.messageId)
        assert.strictEqual(letter.userProperties.DLQ_ORIGIN_TOPIC, "t")
        assert.strictEqual(letter.userProperties.DLQ_ORIGIN_MESSAGE_ID, sent!.messageId)
      })))

  it.effect("a forwarded message goes to %DLQ%<group> with its id and origin, and never to the group again, after a restart too", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const [sent] = yield* broker.send([message("t", "poison", { userProperties: { k: "v" } }), message("t", "fine")])
        const received = yield* broker.pop(popRequest("g", { invisibleDuration: "10 seconds" }))
        const poison = received.find((r) => text(r.message) === "poison")!
        yield* broker.forwardToDeadLetter("g", "t", poison.receiptHandle)
        const dead = yield* broker.pull({ topic: "%DLQ%g", queueId: 0, offset: 0, maxCount: 10 })
        assert.deepStrictEqual(dead.messages.map(text), ["poison"])
        const letter = dead.messages[0]!
        assert.strictEqual(letter.messageId, sent!.messageId)
        assert.deepStrictEqual(letter.userProperties, { k: "v", DLQ_ORIGIN_TOPIC: "t", DLQ_ORIGIN_MESSAGE_ID: sent!.messageId })
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(texts(yield* broker.pop(popRequest("g"))), ["fine"], "the forwarded message is not delivered again")
        const again = yield* restart()
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(texts(yield* again.pop(popRequest("g"))), ["fine"], "nor after a restart")
      })))

  it.effect("a handle that no longer holds its message cannot forward it, and forwards nothing", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a")])
        const [received] = yield* broker.pop(popRequest("g", { invisibleDuration: "10 seconds" }))
        yield* broker.changeInvisibility("g", "t", received!.receiptHandle, "1 minute")
        const stale = yield* Effect.flip(broker.forwardToDeadLetter("g", "t", received!.receiptHandle))
        assert.strictEqual(stale._tag, "ReceiptHandleStale")
        assert.strictEqual((yield* Effect.flip(broker.forwardToDeadLetter("g", "t", "not-a-handle")))._tag, "InvalidReceiptHandle")
        assert.strictEqual((yield* Effect.flip(broker.forwardToDeadLetter("g", "nowhere", received!.receiptHandle)))._tag, "TopicNotFound")
        assert.strictEqual((yield* Effect.flip(broker.describeTopic("%DLQ%g")))._tag, "TopicNotFound", "nothing was dead-lettered")
      })))

  it.effect("a receive parked on a dead-letter topic is woken by a dead letter", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.createTopic({ name: "%DLQ%g", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a")])
        const [received] = yield* broker.pop(popRequest("g"))
        const parked = yield* Effect.forkChild(broker.pop({ ...popRequest("inspector", { pollTimeout: "20 seconds" }), topic: "%DLQ%g" }))
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isUndefined(parked.pollUnsafe())
        yield* broker.forwardToDeadLetter("g", "t", received!.receiptHandle)
        assert.deepStrictEqual(texts(yield* Fiber.join(parked)), ["a"])
      })))

  it.effect("an empty receive parks until a message arrives, woken by the append without time passing", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 4 })
        const parked = yield* Effect.forkChild(broker.pop(popRequest("g", { pollTimeout: "20 seconds" })))
        yield* Effect.yieldNow
        assert.isUndefined(parked.pollUnsafe())
        yield* broker.send([message("t", "late")])
        const received = yield* Fiber.join(parked)
        assert.deepStrictEqual(texts(received), ["late"])
      })))

  it.effect("parked receives of several groups and consumers all get what arrives, without time passing", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        const park = (group: string) => Effect.forkChild(broker.pop(popRequest(group, { maxMessages: 1, pollTimeout: "20 seconds" })))
        const g = [yield* park("g"), yield* park("g"), yield* park("g"), yield* park("g")]
        const other = yield* park("other")
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        yield* broker.send([message("t", "a"), message("t", "b"), message("t", "c")])
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        const done = g.map((fiber) => fiber.pollUnsafe()).filter((exit) => exit !== undefined)
        const taken = done.flatMap((exit) => exit._tag === "Success" ? exit.value.map((r) => text(r.message)) : [])
        assert.deepStrictEqual(taken.sort(), ["a", "b", "c"], "three consumers of g get one message each")
        assert.strictEqual(done.length, 3, "the fourth stays parked")
        assert.strictEqual((yield* Fiber.join(other)).length, 1, "another group gets its own copy")
        yield* TestClock.adjust("20 seconds")
      })))

  it.effect("a parked receive ends empty at its poll timeout, and wakes when a window ends", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const empty = yield* Effect.forkChild(broker.pop(popRequest("g", { pollTimeout: "5 seconds" })))
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* Fiber.join(empty), [])
        yield* broker.send([message("t", "a")])
        yield* broker.pop(popRequest("g", { invisibleDuration: "3 seconds" }))
        const waiting = yield* Effect.forkChild(broker.pop(popRequest("g", { pollTimeout: "20 seconds" })))
        yield* TestClock.adjust("3 seconds")
        const again = yield* Fiber.join(waiting)
        assert.deepStrictEqual(again.map((r) => r.message.deliveryAttempt), [2])
      })))

  it.effect("a receive takes at most 32 messages", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(Array.from({ length: 40 }, (_, i) => message("t", `m${i}`)))
        assert.strictEqual((yield* broker.pop(popRequest("g", { maxMessages: 100 }))).length, 32)
        assert.strictEqual((yield* broker.pop(popRequest("g", { maxMessages: 100 }))).length, 8)
      })))

  it.effect("messages a group's filter does not match are never delivered to it and never counted", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(["x", "y", "x"].map((tag, i) => message("t", `${tag}${i}`, { tag })))
        const filter = yield* Filter.parse({ type: "TAG", expression: "x" })
        const received = yield* broker.pop({ ...popRequest("g"), filter })
        assert.deepStrictEqual(texts(received), ["x0", "x2"])
        for (const r of received) yield* broker.ack("g", "t", r.receiptHandle)
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* broker.pop({ ...popRequest("g"), filter }), [])
      })))

  it.effect("after a restart, acknowledged messages stay acknowledged and unacknowledged ones come again", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(["a", "b", "c"].map((body) => message("t", body)))
        const received = yield* broker.pop(popRequest("g"))
        for (const r of received.filter((r) => text(r.message) !== "c")) yield* broker.ack("g", "t", r.receiptHandle)
        const again = yield* restart()
        yield* TestClock.adjust("30 seconds") // c's window, given before the restart, ends
        assert.deepStrictEqual(texts(yield* again.pop(popRequest("g"))), ["c"])
      })))

  it.effect("a message in flight at a restart stays invisible until its window ends, and its attempts count on", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        yield* broker.setGroup(new ConsumerGroup.ConsumerGroup({ name: "g" as ConsumerGroup.ConsumerGroupName, maxDeliveryAttempts: 3 }))
        yield* broker.send([message("t", "a"), message("t", "b")])
        yield* broker.pop(popRequest("g"))
        yield* TestClock.adjust("30 seconds")
        assert.isTrue((yield* broker.pop(popRequest("g"))).every((r) => r.message.deliveryAttempt === 2))
        const again = yield* restart()
        yield* TestClock.adjust("29 seconds")
        assert.deepStrictEqual(yield* again.pop(popRequest("g")), [], "the windows given before the restart still run")
        yield* TestClock.adjust("1 second")
        const third = yield* again.pop(popRequest("g"))
        assert.deepStrictEqual(texts(third), ["a", "b"])
        assert.isTrue(third.every((r) => r.message.deliveryAttempt === 3), "attempts count on from before the restart")
        const fourth = yield* restart()
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(yield* fourth.pop(popRequest("g")), [], "past max attempts: dead-lettered, not delivered")
        const dead = yield* fourth.pull({ topic: "%DLQ%g", queueId: 0, offset: 0, maxCount: 10 })
        assert.deepStrictEqual(dead.messages.map(text).sort(), ["a", "b"])
      })))

  it.effect("a receipt handle given before a restart still acknowledges, and a changed window survives too", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a"), message("t", "b")])
        const received = yield* broker.pop(popRequest("g"))
        const a = received.find((r) => text(r.message) === "a")!
        const b = received.find((r) => text(r.message) === "b")!
        const longer = yield* broker.changeInvisibility("g", "t", b.receiptHandle, "2 minutes")
        const again = yield* restart()
        yield* again.ack("g", "t", a.receiptHandle)
        assert.strictEqual((yield* Effect.flip(again.ack("g", "t", b.receiptHandle)))._tag, "ReceiptHandleStale", "the handle the change superseded")
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(yield* again.pop(popRequest("g")), [], "a is acknowledged and b's window runs two minutes")
        yield* again.ack("g", "t", longer)
        yield* TestClock.adjust("5 minutes")
        assert.deepStrictEqual(yield* (yield* restart()).pop(popRequest("g")), [])
      })))

  it.effect("renewing a window keeps the handle: it acknowledges after the first window would have ended, across a restart too", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "held")])
        const [held] = yield* broker.pop(popRequest("g"))
        yield* TestClock.adjust("20 seconds")
        const until = yield* broker.renewInvisibility("g", "t", held!.receiptHandle, "1 minute")
        assert.strictEqual(until, held!.invisibleUntil - 30_000 + 20_000 + 60_000, "now (20 s in) plus a minute")
        // a renewal never shortens the window
        assert.strictEqual(yield* broker.renewInvisibility("g", "t", held!.receiptHandle, "1 second"), until)
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(yield* broker.pop(popRequest("g")), [], "still held, past the first window's end")
        const again = yield* restart()
        yield* again.ack("g", "t", held!.receiptHandle)
        yield* TestClock.adjust("5 minutes")
        assert.deepStrictEqual(yield* again.pop(popRequest("g")), [])
      })))

  it.effect("a renewal cannot revive a window that ended", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "late")])
        const [held] = yield* broker.pop(popRequest("g"))
        yield* TestClock.adjust("31 seconds")
        const late = yield* Effect.flip(broker.renewInvisibility("g", "t", held!.receiptHandle, "1 minute"))
        assert.strictEqual(late._tag, "ReceiptHandleExpired")
      })))

  it.effect("a message whose time to live ran out is never delivered, and is counted", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "short", { ttlMillis: 5_000 }), message("t", "long", { ttlMillis: 60_000 })])
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(texts(yield* broker.pop(popRequest("g"))), ["long"])
        assert.strictEqual((yield* broker.stats).expiredMessages, 1)
      })))

  it.effect("acknowledgements above an unacknowledged message survive a restart", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(["a", "b", "c", "d"].map((body) => message("t", body)))
        const received = yield* broker.pop(popRequest("g"))
        for (const r of received.filter((r) => ["b", "d"].includes(text(r.message)))) yield* broker.ack("g", "t", r.receiptHandle)
        const again = yield* restart()
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(texts(yield* again.pop(popRequest("g"))), ["a", "c"])
      })))

  it.effect("a group's progress shows per queue its end, what it consumed, its lag and what it holds in flight", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send([message("t", "a"), message("t", "b"), message("t", "c")])
        // a group that never received stands at the queue's start
        assert.deepStrictEqual(yield* broker.groupProgress("g"), [{ topic: "t", queueId: 0, end: 3, consumed: 0, inFlight: 0 }])
        const received = yield* broker.pop(popRequest("g", { maxMessages: 2 }))
        yield* broker.ack("g", "t", received.find((r) => text(r.message) === "a")!.receiptHandle)
        assert.deepStrictEqual(yield* broker.groupProgress("g"), [{ topic: "t", queueId: 0, end: 3, consumed: 1, inFlight: 1 }])
      })))
})
