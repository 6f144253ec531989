// Calls made at about the same time travel together: each item waits up to `linger` (none: the next
// turn of the runtime) for others, up to `maxBatch` items or `maxBytes` bytes in one request, with at
// most `inFlight` requests out at once; each item still gets its own answer. A request unanswered for
// `slotLease` stops counting against `inFlight` (its items still wait for its answer or its timeout),
// so one lost or stuck request holds the next batches up for the lease, not for the whole timeout.
import { RequestSlots } from "@strait/core"
import { Clock, Deferred, Duration, Effect, Exit, Queue, type Scope } from "effect"

export interface BatcherOptions {
  readonly linger?: Duration.Input
  readonly maxBatch: number
  readonly maxBytes?: number
  readonly inFlight?: number
  readonly slotLease?: Duration.Input
}

/**
 * The slot lease of the client's send and acknowledgement batchers: far beyond a healthy round
 * trip, and far below the default request timeout (30 s).
 */
export const slotLease = Duration.seconds(5)

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
    const scope = yield* Effect.scope
    const queue = yield* Queue.unbounded<Pending<I, O, E>>()
    const maxInFlight = options.inFlight ?? 2
    const lease = options.slotLease === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(options.slotLease))
    const lingerMillis = options.linger === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(options.linger))
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    const missed = Exit.fail(missing)

    const answer = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      Effect.flatMap(settle(batch.map((pending) => pending.item)), (outcomes) =>
        Effect.sync(() => {
          for (let i = 0; i < batch.length; i++) Deferred.doneUnsafe(batch[i]!.done, outcomes[i] ?? missed)
        }))

    // the requests out; the loop waits on `freed` for a slot
    const slots = new RequestSlots.RequestSlots(maxInFlight, lease)
    let freed: Deferred.Deferred<void> | undefined
    const wake = () => {
      if (freed !== undefined) Deferred.doneUnsafe(freed, Exit.void)
      freed = undefined
    }
    // while the loop waits for a slot: its leases watched, the loop woken once one came free
    let watching = false
    const watchLease = Effect.andThen(
      RequestSlots.leaseWatch(slots, () => freed !== undefined),
      Effect.sync(() => {
        watching = false
        if (slots.free) wake()
      })
    )
    const slot: Effect.Effect<void> = Effect.suspend(() => {
      if (slots.free) return Effect.void
      const wait = freed ??= Deferred.makeUnsafe<void>()
      if (!slots.leased || watching) return Effect.andThen(Deferred.await(wait), slot)
      watching = true
      return Effect.andThen(Effect.forkIn(watchLease, scope), Effect.andThen(Deferred.await(wait), slot))
    })

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
      yield* slot
      const flight = slots.start(yield* Clock.currentTimeMillis)
      yield* Effect.forkScoped(Effect.ensuring(answer(batch), Effect.sync(() => {
        if (slots.end(flight)) wake()
      })))
    })))

    return (item: I, bytes = 0) =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<O, E>()
        return Effect.andThen(Queue.offer(queue, { item, bytes, done }), Deferred.await(done))
      })
  })
