// The coalescer's request slots: calls wait while `maxInFlight` requests of their key are on the
// wire, and with a slot lease a request that stays unanswered gives its slot up after the lease, so
// one lost request holds the next calls up for the lease and not for ever. Time is the TestClock's.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as Coalesce from "../src/internal/coalesce.ts"

// a coalescer whose first request is never answered and whose later ones answer each item doubled
const coalescer = (slotLease: Duration.Input | undefined) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const requests: Array<ReadonlyArray<number>> = []
    const submit = Coalesce.make<number, number, never>({
      scope,
      maxSize: 1024,
      maxInFlight: 1,
      ...(slotLease === undefined ? {} : { slotLease }),
      run: (_, items) => {
        requests.push(items)
        return requests.length === 1 ? Effect.never : Effect.succeed(items.map((item) => Exit.succeed(item * 2)))
      }
    })
    return { submit, requests }
  })

describe("Coalesce", () => {
  it.effect("a request unanswered past the slot lease lets the waiting calls go; its own callers still wait", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* coalescer(Duration.seconds(5))
      const lost = yield* Effect.forkChild(submit("k", 1, 1))
      yield* TestClock.adjust("1 millis")
      const waiting = yield* Effect.forkChild(submit("k", 2, 1))
      yield* TestClock.adjust("4 seconds")
      // the slot is still held: the second call has not left
      assert.deepStrictEqual(requests, [[1]])
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 seconds")
      assert.deepStrictEqual(waiting.pollUnsafe(), Exit.succeed(4))
      assert.deepStrictEqual(requests, [[1], [2]])
      assert.isUndefined(lost.pollUnsafe())
    }))

  it.effect("without a lease, the waiting calls wait for as long as the request holding the slot", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* coalescer(undefined)
      yield* Effect.forkChild(submit("k", 1, 1))
      yield* TestClock.adjust("1 millis")
      const waiting = yield* Effect.forkChild(submit("k", 2, 1))
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(requests, [[1]])
      assert.isUndefined(waiting.pollUnsafe())
    }))

  it.effect("calls made while the slot is held leave together once its lease runs out", () =>
    Effect.gen(function*() {
      const { requests, submit } = yield* coalescer(Duration.seconds(5))
      yield* Effect.forkChild(submit("k", 1, 1))
      yield* TestClock.adjust("1 millis")
      const waiting = yield* Effect.forkChild(Effect.all([submit("k", 2, 1), submit("k", 3, 1), submit("k", 4, 1)], { concurrency: "unbounded" }))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(waiting.pollUnsafe(), Exit.succeed([4, 6, 8]))
      assert.deepStrictEqual(requests, [[1], [2, 3, 4]])
    }))
})
