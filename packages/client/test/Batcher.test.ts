// The client's batcher slots: batches wait while `inFlight` requests are out, and with a slot lease
// a request that stays unanswered gives its slot up after the lease, so one lost request holds the
// next sends up for the lease and not for its whole timeout. Time is the TestClock's.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as Batcher from "../src/internal/Batcher.ts"

// a batcher whose first request is never answered and whose later ones answer each item doubled
const batcher = (slotLease: Duration.Input | undefined) =>
  Effect.gen(function*() {
    const requests: Array<ReadonlyArray<number>> = []
    const submit = yield* Batcher.make<number, number, string>(
      { maxBatch: 16, inFlight: 1, ...(slotLease === undefined ? {} : { slotLease }) },
      (items) => {
        requests.push(items)
        return requests.length === 1 ? Effect.never : Effect.succeed(items.map((item) => Exit.succeed(item * 2)))
      },
      "missing"
    )
    return { submit, requests }
  })

describe("Batcher", () => {
  it.effect("a request unanswered past the slot lease lets the waiting items go; its own items still wait", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* batcher(Duration.seconds(5))
      const lost = yield* Effect.forkChild(submit(1))
      yield* TestClock.adjust("1 millis")
      const waiting = yield* Effect.forkChild(Effect.all([submit(2), submit(3)], { concurrency: "unbounded" }))
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(requests, [[1]])
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 seconds")
      assert.deepStrictEqual(waiting.pollUnsafe(), Exit.succeed([4, 6]))
      assert.deepStrictEqual(requests, [[1], [2, 3]])
      assert.isUndefined(lost.pollUnsafe())
    }))

  it.effect("without a lease, the waiting items wait for as long as the request holding the slot", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* batcher(undefined)
      yield* Effect.forkChild(submit(1))
      yield* TestClock.adjust("1 millis")
      const waiting = yield* Effect.forkChild(submit(2))
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(requests, [[1]])
      assert.isUndefined(waiting.pollUnsafe())
    }))

  it.effect("with the slot free, items go at once and each gets its own answer", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* batcher(Duration.seconds(5))
      yield* Effect.forkChild(submit(1))
      yield* TestClock.adjust("1 millis")
      yield* TestClock.adjust("5 seconds")
      const answers = yield* Effect.all([submit(5), submit(6)], { concurrency: "unbounded" })
      assert.deepStrictEqual(answers, [10, 12])
      assert.deepStrictEqual(requests, [[1], [5, 6]])
    }))
})
