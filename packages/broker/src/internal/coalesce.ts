// Coalescing: calls made while the fiber scheduler is busy, or while enough requests of their key are
// on the wire already, go out as one request. The first call of a batch forks a flush that yields
// once, so every call made in the same turn (producers woken together by one reply, say) joins it.
// With `maxInFlight` requests of a key unanswered, new calls wait in the open batch and it leaves
// when one of them is answered: under load, batches grow with the round trip instead of requests
// multiplying; unloaded, a call leaves after one turn as before. A batch that reaches its size limit
// is closed at once. With a `slotLease`, a request unanswered for that long stops holding its slot
// (its callers still wait for its answer or its timeout): one lost or stuck request holds the next
// batches up for the lease, not for the whole request timeout.
import { RequestSlots } from "@strait/core"
import { Clock, Deferred, Duration, Effect, Exit, type Scope } from "effect"

interface Batch<I, O, E> {
  readonly items: Array<I>
  readonly replies: Array<Deferred.Deferred<O, E>>
  size: number
}

interface KeyState<I, O, E> {
  /** The batch calls join now. */
  open: Batch<I, O, E> | undefined
  /** Closed batches waiting for a request slot, oldest first. */
  readonly ready: Array<Batch<I, O, E>>
  /** The key's requests on the wire. */
  readonly slots: RequestSlots.RequestSlots
  /** A flush of the open batch is forked and has not run yet. */
  scheduled: boolean
  /** A fiber waits for the oldest slot's lease to run out. */
  leaseWatched: boolean
}

/**
 * A coalescer: `submit(key, item, size)` waits for its item's outcome; `run(key, items)` carries out
 * a batch of one key and answers each item in order (or fails them all).
 */
export const make = <I, O, E>(options: {
  readonly scope: Scope.Scope
  readonly run: (key: string, items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>, E>
  /** A batch is sent once its items' sizes add up to this. */
  readonly maxSize: number
  /** Requests of one key on the wire at once; more calls wait in the next batch. */
  readonly maxInFlight?: number
  /** How long a request holds its slot at most (default: until it is answered). */
  readonly slotLease?: Duration.Input
}) => {
  const maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY
  const lease = options.slotLease === undefined ? undefined : Duration.toMillis(Duration.fromInputUnsafe(options.slotLease))
  const keys = new Map<string, KeyState<I, O, E>>()

  const send = (key: string, state: KeyState<I, O, E>, batch: Batch<I, O, E>): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const flight = state.slots.start(now)
      return options.run(key, batch.items).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          batch.replies.forEach((reply, i) => Deferred.doneUnsafe(reply, Exit.isSuccess(exit) ? exit.value[i]! : exit as Exit.Exit<never, E>))
          state.slots.end(flight)
          return next(key, state)
        })
      )
    })

  // a slot is free: the oldest closed batch goes, else the open one (after one turn, so callers of
  // this turn join it); no slot free while calls wait: the lease of the oldest is watched
  const next = (key: string, state: KeyState<I, O, E>): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (!state.slots.free) return watchLease(key, state)
      const closed = state.ready.shift()
      if (closed !== undefined) return Effect.asVoid(Effect.forkIn(send(key, state, closed), options.scope))
      if (state.open === undefined || state.scheduled) {
        if (state.slots.out === 0 && state.open === undefined && keys.get(key) === state) keys.delete(key)
        return Effect.void
      }
      state.scheduled = true
      return Effect.asVoid(Effect.forkIn(Effect.andThen(Effect.yieldNow, flushOpen(key, state)), options.scope))
    })

  // One fiber per key, only while calls wait for a slot: it sleeps until the oldest slot's lease
  // runs out, gives up every slot whose lease has, and lets the waiting batches go.
  const watchLease = (key: string, state: KeyState<I, O, E>): Effect.Effect<void> => {
    if (!state.slots.leased || state.leaseWatched || (state.open === undefined && state.ready.length === 0)) return Effect.void
    state.leaseWatched = true
    const watched = RequestSlots.leaseWatch(state.slots, () => state.open !== undefined || state.ready.length > 0)
    return Effect.asVoid(Effect.forkIn(
      Effect.andThen(watched, () => {
        state.leaseWatched = false
        // as many batches as slots came free
        const free = Math.min(maxInFlight - state.slots.holding, state.ready.length + 1)
        return Effect.forEach(Array.from({ length: Math.max(0, free) }), () => next(key, state), { discard: true })
      }),
      options.scope
    ))
  }

  const flushOpen = (key: string, state: KeyState<I, O, E>) =>
    Effect.suspend(() => {
      state.scheduled = false
      const batch = state.open
      if (batch === undefined) return Effect.void
      if (!state.slots.free) return Effect.void
      state.open = undefined
      return send(key, state, batch)
    })

  return (key: string, item: I, size: number): Effect.Effect<O, E> =>
    Effect.suspend(() => {
      const reply = Deferred.makeUnsafe<O, E>()
      let state = keys.get(key)
      if (state === undefined) keys.set(key, state = { open: undefined, ready: [], slots: new RequestSlots.RequestSlots(maxInFlight, lease), scheduled: false, leaseWatched: false })
      let batch = state.open
      if (batch === undefined) state.open = batch = { items: [], replies: [], size: 0 }
      batch.items.push(item)
      batch.replies.push(reply)
      batch.size += size
      // full: it waits for a slot of its own, and later calls start the next batch
      if (batch.size >= options.maxSize) {
        state.open = undefined
        state.ready.push(batch)
      }
      return Effect.andThen(next(key, state), Deferred.await(reply))
    })
}
