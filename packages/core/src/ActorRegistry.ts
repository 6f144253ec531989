/**
 * A registry of actors keyed by id: partitions by queue, sessions by client, links by broker.
 *
 * An actor starts on first use of its key and lives in a fiber of the registry's `FiberMap`.
 * Stopping a key interrupts that fiber, so the actor drains (see `Actor`); the next use of the key
 * starts a fresh actor. Closing the registry's scope stops every actor, each with its own drain.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit, FiberMap, type Scope } from "effect"
import * as Actor from "./Actor.ts"

/**
 * A running registry.
 *
 * @since 0.1.0
 */
export interface ActorRegistry<K, M extends Actor.Envelope> {
  /** The actor for `key`, started now if it is not running. Fails once the registry is closing. */
  readonly get: (key: K) => Effect.Effect<Actor.Actor<M>, Actor.Draining>
  /** Stops the actor for `key` and waits for its drain; a no-op when it is not running. */
  readonly stop: (key: K) => Effect.Effect<void>
  /** Whether an actor runs (or drains) for `key`. */
  readonly has: (key: K) => Effect.Effect<boolean>
  /** How many actors run or drain. */
  readonly size: Effect.Effect<number>
}

/**
 * Makes a registry in the current scope; `spawn` starts the actor for a key inside the scope that
 * the registry gives it (use `Actor.make` or `Actor.makeBatched`).
 *
 * **Gotchas**
 *
 * `spawn` runs with the context of the effect that made the registry, not of the caller of `get`.
 *
 * @since 0.1.0
 */
export const make = <K, M extends Actor.Envelope, R>(
  name: string,
  spawn: (key: K) => Effect.Effect<Actor.Actor<M>, never, Scope.Scope | R>
): Effect.Effect<ActorRegistry<K, M>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const fibers = yield* FiberMap.make<K>()
    const starting = new Map<K, Deferred.Deferred<Actor.Actor<M>, Actor.Draining>>()
    let closing = false
    // added after the FiberMap's own finalizer, so it runs first: no new actor starts during shutdown
    yield* Effect.addFinalizer(() => Effect.sync(() => {
      closing = true
    }))

    const run = (key: K, ready: Deferred.Deferred<Actor.Actor<M>, Actor.Draining>) =>
      Effect.scoped(Effect.gen(function*() {
        yield* Deferred.succeed(ready, yield* spawn(key))
        return yield* Effect.never
      })).pipe(
        Effect.provideContext(context),
        Effect.onExit(() =>
          Effect.suspend(() => {
            if (starting.get(key) === ready) starting.delete(key)
            return Deferred.done(ready, Exit.fail(new Actor.Draining({ actor: `${name}/${String(key)}` })))
          })
        )
      )

    const get = (key: K): Effect.Effect<Actor.Actor<M>, Actor.Draining> =>
      Effect.suspend(() => {
        const existing = starting.get(key)
        if (existing !== undefined) return Deferred.await(existing)
        if (closing) return Effect.fail(new Actor.Draining({ actor: `${name}/${String(key)}` }))
        // registered before anything yields, so concurrent callers of one key share one actor
        const ready = Deferred.makeUnsafe<Actor.Actor<M>, Actor.Draining>()
        starting.set(key, ready)
        return FiberMap.run(fibers, key, run(key, ready)).pipe(Effect.andThen(Deferred.await(ready)))
      })

    return {
      get,
      stop: (key) => FiberMap.remove(fibers, key),
      has: (key) => Effect.sync(() => starting.has(key)),
      size: Effect.sync(() => starting.size)
    }
  })
