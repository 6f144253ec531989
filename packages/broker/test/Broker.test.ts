import { assert, describe, it } from "@effect/vitest"
import { Message } from "@strait/core"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Broker, Filter } from "../src/index.ts"
import { message, text, withBroker } from "./fixtures.ts"

describe("topics", () => {
  it.effect("a topic is created, described, grown, and deleted", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "orders", kind: "NORMAL", queues: 2 })
        assert.strictEqual((yield* Effect.flip(broker.createTopic({ name: "orders", kind: "NORMAL", queues: 2 })))._tag, "TopicAlreadyExists")
        const described = yield* broker.describeTopic("orders")
        assert.deepStrictEqual(described.queues, [{ queueId: 0, start: 0, end: 0 }, { queueId: 1, start: 0, end: 0 }])
        assert.strictEqual((yield* broker.updateTopic("orders", { queues: 4 })).queues, 4)
        assert.strictEqual((yield* Effect.flip(broker.updateTopic("orders", { queues: 3 })))._tag, "IllegalTopicChange")
        yield* broker.deleteTopic("orders")
        assert.strictEqual((yield* Effect.flip(broker.describeTopic("orders")))._tag, "TopicNotFound")
        assert.deepStrictEqual(yield* broker.topics, [])
      })))

  it.effect("bad topic settings are a typed error", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* Effect.flip(broker.createTopic({ name: "bad name!", kind: "NORMAL", queues: 1 })))._tag, "IllegalTopicSpec")
        assert.strictEqual((yield* Effect.flip(broker.createTopic({ name: "t", kind: "NORMAL", queues: 0 })))._tag, "IllegalTopicSpec")
      })))

  it.effect("topics and their messages survive a restart", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "FIFO", queues: 3, flush: "sync" })
        yield* broker.send([message("t", "a", { messageGroup: "g" })])
        const again = yield* restart()
        const [spec] = yield* again.topics
        assert.deepStrictEqual([spec?.name, spec?.kind, spec?.queues, spec?.flush], ["t", "FIFO", 3, "sync"])
        const queues = (yield* again.describeTopic("t")).queues
        assert.strictEqual(queues.reduce((n, q) => n + q.end, 0), 1)
      })))
})

describe("produce", () => {
  it.effect("a message that breaks a rule, or goes to no topic, is refused with a typed error", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        assert.strictEqual((yield* Effect.flip(broker.send([message("t", "")])))._tag, "MessageBodyEmpty")
        assert.strictEqual((yield* Effect.flip(broker.send([message("nowhere", "x")])))._tag, "TopicNotFound")
      })))

  it.effect("a message whose kind differs from its topic's is refused, unless the check is off", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "plain", kind: "NORMAL", queues: 1 })
        const refused = yield* Effect.flip(broker.send([message("plain", "x", { messageGroup: "g" })]))
        assert.strictEqual(refused._tag, "MessageTypeMismatch")
        const accepted = yield* broker.send([message("plain", "x", { messageGroup: "g" })]).pipe(
          Effect.provideService(Broker.BrokerSettings, { ...Broker.BrokerSettings.defaultValue(), validateMessageType: false })
        )
        assert.strictEqual(accepted.length, 1)
      })))

  it.effect("normal messages spread round-robin over the queues; a receipt's transaction id is its message id", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 4 })
        const receipts = yield* broker.send(Array.from({ length: 8 }, (_, i) => message("t", `m${i}`)))
        assert.deepStrictEqual(receipts.map((r) => r.queueId), [0, 1, 2, 3, 0, 1, 2, 3])
        assert.isTrue(receipts.every((r) => r.transactionId === r.messageId && r.offset >= 0))
      })))

  it.effect("every message of a FIFO group goes to one queue, in send order", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 8 })
        const receipts = yield* broker.send(Array.from({ length: 20 }, (_, i) => message("f", `g1-${i}`, { messageGroup: "g1" })))
        const queueId = receipts[0]!.queueId
        assert.isTrue(receipts.every((r) => r.queueId === queueId))
        assert.deepStrictEqual(receipts.map((r) => r.offset), Array.from({ length: 20 }, (_, i) => i))
        const pulled = yield* broker.pull({ topic: "f", queueId, offset: 0, maxCount: 100 })
        assert.deepStrictEqual(pulled.messages.map(text), Array.from({ length: 20 }, (_, i) => `g1-${i}`))
      })))

  it.effect("a retried send with the same message id returns the first receipt and stores nothing new", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        const original = message("t", "once")
        const [first] = yield* broker.send([original])
        const [retry] = yield* broker.send([original])
        assert.deepStrictEqual(retry, first)
        const stored = (yield* broker.describeTopic("t")).queues.reduce((n, q) => n + q.end, 0)
        assert.strictEqual(stored, 1)
        yield* TestClock.adjust("3 minutes") // past the idempotency window
        yield* broker.send([original])
        assert.strictEqual((yield* broker.describeTopic("t")).queues.reduce((n, q) => n + q.end, 0), 2)
      })))
})

describe("idempotency across a restart", () => {
  it.effect("a retry after a restart returns the first receipt and stores nothing new, for delayed and half messages too", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        yield* broker.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        yield* broker.createTopic({ name: "x", kind: "TRANSACTION", queues: 1 })
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const plain = message("t", "once")
        const delayed = message("d", "later", { deliveryTimestamp: now + 10_000 })
        const half = message("x", "half")
        const [first] = yield* broker.send([plain, delayed])
        const [firstHalf] = yield* broker.send([half], { transactional: true })
        const [, firstDelayed] = yield* broker.send([plain, delayed])
        const again = yield* restart()
        yield* TestClock.adjust("20 seconds") // the delayed message reaches its topic meanwhile
        assert.deepStrictEqual(yield* again.send([plain, delayed]), [first!, firstDelayed!])
        assert.deepStrictEqual(yield* again.send([half], { transactional: true }), [firstHalf!])
        const stored = (yield* again.describeTopic("t")).queues.reduce((n, q) => n + q.end, 0)
        const delivered = (yield* again.describeTopic("d")).queues.reduce((n, q) => n + q.end, 0)
        assert.deepStrictEqual([stored, delivered], [1, 1])
        yield* TestClock.adjust("2 minutes") // past the window, counted from the first send
        const third = yield* restart()
        yield* third.send([plain])
        assert.strictEqual((yield* third.describeTopic("t")).queues.reduce((n, q) => n + q.end, 0), 2, "forgotten after the window")
      })))
})

describe("pull and offsets", () => {
  it.effect("a pull returns stored messages with their queue, offset, store time and first delivery attempt", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        yield* broker.send([message("t", "a", { tag: "x", userProperties: { k: "v" } }), message("t", "b")])
        const result = yield* broker.pull({ topic: "t", queueId: 0, offset: 0, maxCount: 10 })
        assert.deepStrictEqual(result.messages.map(text), ["a", "b"])
        const first = result.messages[0]!
        assert.isTrue(first instanceof Message.StoredMessage)
        assert.deepStrictEqual([first.queueId, first.queueOffset, first.storeTimestamp, first.deliveryAttempt], [0, 0, now, 1])
        assert.deepStrictEqual([first.tag, first.userProperties], ["x", { k: "v" }])
        assert.deepStrictEqual([result.nextOffset, result.start, result.end], [2, 0, 2])
        const atEnd = yield* broker.pull({ topic: "t", queueId: 0, offset: 2, maxCount: 10 })
        assert.deepStrictEqual([atEnd.messages.length, atEnd.nextOffset], [0, 2])
        const beyond = yield* Effect.flip(broker.pull({ topic: "t", queueId: 0, offset: 3, maxCount: 10 }))
        assert.strictEqual(beyond._tag, "OffsetOutOfRange")
        assert.strictEqual((yield* Effect.flip(broker.pull({ topic: "t", queueId: 1, offset: 0, maxCount: 1 })))._tag, "QueueNotFound")
      })))

  it.effect("a pull with a tag filter skips what it does not match but moves past it", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        yield* broker.send(["a", "b", "a", "c"].map((tag, i) => message("t", `${tag}${i}`, { tag })))
        const filter = yield* Filter.parse({ type: "TAG", expression: "a || c" })
        const result = yield* broker.pull({ topic: "t", queueId: 0, offset: 0, maxCount: 10, filter })
        assert.deepStrictEqual(result.messages.map(text), ["a0", "a2", "c3"])
        assert.strictEqual(result.nextOffset, 4)
      })))

  it.effect("committed offsets are kept durably, checked against the queue, and reset by time", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        for (let i = 0; i < 6; i++) {
          yield* broker.send([message("t", `m${i}`)])
          yield* TestClock.adjust("1 second")
        }
        assert.isUndefined(yield* broker.committedOffset("g", "t", 0))
        yield* broker.commitOffset("g", "t", 0, 2)
        assert.strictEqual((yield* Effect.flip(broker.commitOffset("g", "t", 0, 4)))._tag, "OffsetOutOfRange")
        const again = yield* restart()
        assert.strictEqual(yield* again.committedOffset("g", "t", 0), 2)
        // queue 0 holds m0, m2, m4 (stored at +0 s, +2 s, +4 s); queue 1 holds m1, m3, m5
        const reset = yield* again.resetOffsetsToTime("g", "t", start + 2_500)
        assert.deepStrictEqual(reset, [2, 1])
        assert.strictEqual(yield* again.committedOffset("g", "t", 1), 1)
      })))
})
