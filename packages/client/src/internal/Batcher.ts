// Calls made at about the same time travel together: each item waits up to `linger` (none: the next
// turn of the runtime) for others, up to `maxBatch` items or `maxBytes` bytes in one request, with at
// most `inFlight` requests out at once; each item still gets its own answer.
import { Deferred, Duration, Effect, Exit, Queue, type Scope, Semaphore } from "effect"

export interface BatcherOptions {
  readonly linger?: Duration.Input
  readonly maxBatch: number
  readonly maxBytes?: number
  readonly inFlight?: number
}

interface Pending<I, O, E> {
  readonly item: I
  readonly bytes: number
  readonly done: Deferred.Deferred<O, E>
}

/**
 * Starts a batcher in the current scope. `settle` makes one request for a batch and answers each of
 * its items, in order; an item it gives no answer fails with `missing`.
 */
export const make = <I, O, E>(
  options: BatcherOptions,
  settle: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>>,
  missing: E
): Effect.Effect<(item: I, bytes?: number) => Effect.Effect<O, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Pending<I, O, E>>()
    const inFlight = yield* Semaphore.make(options.inFlight ?? 2)
    const lingerMillis = options.linger === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(options.linger))
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    const missed = Exit.fail(missing)

    const answer = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      Effect.flatMap(settle(batch.map((pending) => pending.item)), (outcomes) =>
        Effect.sync(() => {
          for (let i = 0; i < batch.length; i++) Deferred.doneUnsafe(batch[i]!.done, outcomes[i] ?? missed)
        }))

    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      if (lingerMillis > 0) yield* Effect.sleep(Duration.millis(lingerMillis))
      else yield* Effect.yieldNow
      const batch = [first]
      let bytes = first.bytes
      while (batch.length < options.maxBatch && bytes < maxBytes) {
        const next = yield* Queue.poll(queue)
        if (next._tag === "None") break
        batch.push(next.value)
        bytes += next.value.bytes
      }
      yield* inFlight.take(1)
      yield* Effect.forkScoped(Effect.ensuring(answer(batch), inFlight.release(1)))
    })))

    return (item: I, bytes = 0) =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<O, E>()
        return Effect.andThen(Queue.offer(queue, { item, bytes, done }), Deferred.await(done))
      })
  })
