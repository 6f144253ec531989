import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { message, text, withBroker } from "./fixtures.ts"

const pop = (maxMessages: number) => ({ group: "g", topic: "p", maxMessages, invisibleDuration: "30 seconds" as const })

describe("priority topics", () => {
  it.effect("higher priority is delivered first across every queue, equal priorities in store order", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "p", kind: "PRIORITY", queues: 3 })
        const sends: ReadonlyArray<readonly [string, number]> = [["low-1", 1], ["high-1", 9], ["mid-1", 5], ["high-2", 9], ["low-2", 1], ["mid-2", 5]]
        for (const [body, priority] of sends) {
          yield* broker.send([message("p", body, { priority })])
          yield* TestClock.adjust("1 millis") // distinct store times make "store order" observable
        }
        const order: Array<string> = []
        for (let i = 0; i < sends.length; i++) {
          const [received] = yield* broker.pop(pop(1))
          order.push(text(received!.message))
          yield* broker.ack("g", "p", received!.receiptHandle)
        }
        assert.deepStrictEqual(order, ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2"])
      })))

  it.effect("a message delivered again keeps its priority", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "p", kind: "PRIORITY", queues: 1 })
        yield* broker.send([message("p", "urgent", { priority: 8 })])
        yield* broker.pop(pop(1))
        yield* broker.send([message("p", "routine", { priority: 2 })])
        yield* TestClock.adjust("30 seconds")
        const [again] = yield* broker.pop(pop(1))
        assert.deepStrictEqual([text(again!.message), again!.message.deliveryAttempt], ["urgent", 2])
      })))

  it.effect("a message in flight at a restart is not delivered as new, and keeps its priority when its window ends", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "p", kind: "PRIORITY", queues: 1 })
        yield* broker.send([message("p", "urgent", { priority: 8 })])
        yield* broker.pop(pop(1))
        yield* broker.send([message("p", "routine", { priority: 2 })])
        const again = yield* restart()
        assert.deepStrictEqual((yield* again.pop(pop(32))).map((r) => text(r.message)), ["routine"])
        yield* TestClock.adjust("30 seconds")
        yield* again.send([message("p", "later", { priority: 5 })])
        const [next] = yield* again.pop(pop(1))
        assert.deepStrictEqual([text(next!.message), next!.message.deliveryAttempt], ["urgent", 2])
      })))
})
