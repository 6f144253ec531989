import { assert, describe, it } from "@effect/vitest"
import { ConsumerGroup } from "@strait/core"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { message, text, withBroker } from "./fixtures.ts"

const fifoGroup = new ConsumerGroup.ConsumerGroup({ name: "g" as ConsumerGroup.ConsumerGroupName, fifo: true })
const pop = { group: "g", topic: "f", maxMessages: 32, invisibleDuration: "30 seconds" as const }

describe("FIFO message groups under Pop", () => {
  it.effect("a message group is delivered in order, one at a time: nothing behind its head goes while the head is held", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send(["a1", "a2", "a3"].map((body) => message("f", body, { messageGroup: "A" })))
        const delivered: Array<string> = []
        for (let i = 0; i < 3; i++) {
          const received = yield* broker.pop(pop)
          assert.strictEqual(received.length, 1, "one message of the group at a time")
          delivered.push(text(received[0]!.message))
          assert.deepStrictEqual(yield* broker.pop(pop), [], "nothing behind the head while it is held")
          yield* broker.ack("g", "f", received[0]!.receiptHandle)
        }
        assert.deepStrictEqual(delivered, ["a1", "a2", "a3"])
      })))

  it.effect("acknowledging a group's head wakes a receive parked on the topic, which gets the next message of the group", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send(["a1", "a2"].map((body) => message("f", body, { messageGroup: "A" })))
        const [head] = yield* broker.pop(pop)
        const parked = yield* Effect.forkChild(broker.pop({ ...pop, pollTimeout: "20 seconds" }))
        yield* TestClock.adjust("1 second")
        yield* broker.ack("g", "f", head!.receiptHandle)
        // woken by the ack, long before the poll's 20 s end
        yield* TestClock.adjust("1 second")
        const next = yield* Fiber.join(parked)
        assert.deepStrictEqual(next.map((r) => text(r.message)), ["a2"])
      })))

  it.effect("other message groups proceed while one group's head is held", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send([["A", "a1"], ["A", "a2"], ["B", "b1"], ["B", "b2"], ["C", "c1"]].map(([group, body]) =>
          message("f", body!, { messageGroup: group! })))
        const first = yield* broker.pop(pop)
        assert.deepStrictEqual(first.map((r) => text(r.message)), ["a1", "b1", "c1"])
        yield* broker.ack("g", "f", first.find((r) => text(r.message) === "b1")!.receiptHandle)
        const second = yield* broker.pop(pop)
        assert.deepStrictEqual(second.map((r) => text(r.message)), ["b2"], "B moves on; A is still held")
      })))

  it.effect("a head whose window ends is delivered again before anything behind it, attempt + 1", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send(["a1", "a2"].map((body) => message("f", body, { messageGroup: "A" })))
        yield* broker.pop(pop)
        yield* TestClock.adjust("30 seconds")
        const again = yield* broker.pop(pop)
        assert.deepStrictEqual(again.map((r) => [text(r.message), r.message.deliveryAttempt]), [["a1", 2]])
      })))

  it.effect("a retried receive with the same attempt id gets the same messages and handles", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send(["a1", "b1"].map((body) => message("f", body, { messageGroup: body.slice(0, 1) })))
        const first = yield* broker.pop({ ...pop, attemptId: "attempt-1" })
        const retry = yield* broker.pop({ ...pop, attemptId: "attempt-1" })
        assert.deepStrictEqual(retry.map((r) => r.receiptHandle), first.map((r) => r.receiptHandle))
        assert.deepStrictEqual(yield* broker.pop({ ...pop, attemptId: "attempt-2" }), [])
      })))

  it.effect("a group that is not FIFO gets a FIFO topic's messages without the ordering rules", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.send(["a1", "a2"].map((body) => message("f", body, { messageGroup: "A" })))
        const received = yield* broker.pop({ ...pop, group: "plain" })
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["a1", "a2"])
      })))

  it.effect("a message group's head in flight at a restart still holds back the rest of its group", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "f", kind: "FIFO", queues: 1 })
        yield* broker.setGroup(fifoGroup)
        yield* broker.send([["A", "a1"], ["A", "a2"], ["B", "b1"]].map(([group, body]) => message("f", body!, { messageGroup: group! })))
        const first = yield* broker.pop(pop)
        assert.deepStrictEqual(first.map((r) => text(r.message)), ["a1", "b1"])
        yield* broker.ack("g", "f", first.find((r) => text(r.message) === "b1")!.receiptHandle)
        const again = yield* restart()
        assert.deepStrictEqual(yield* again.pop(pop), [], "a1 is still held, so a2 waits")
        yield* TestClock.adjust("30 seconds")
        const second = yield* again.pop(pop)
        assert.deepStrictEqual(second.map((r) => [text(r.message), r.message.deliveryAttempt]), [["a1", 2]])
        yield* again.ack("g", "f", second[0]!.receiptHandle)
        assert.deepStrictEqual((yield* again.pop(pop)).map((r) => text(r.message)), ["a2"])
      })))
})
