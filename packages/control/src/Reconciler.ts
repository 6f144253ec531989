/**
 * A loop that brings local state in line with the metadata store: it runs once at start, again
 * after every change under the prefixes it watches (changes that come together run it once), and
 * every `interval` anyway, so a missed change or a store that was down is caught up with.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Queue, Result, type Scope, Stream } from "effect"
import { type Change, MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"

/**
 * Runs `reconcile` now, then on changes and every `interval`, while the scope lives. `onChange`
 * sees each change first (for what only a change can tell, such as a deletion).
 *
 * @since 0.1.0
 */
export const run = <R>(options: {
  readonly prefixes: ReadonlyArray<string>
  readonly interval: Duration.Input
  readonly reconcile: Effect.Effect<void, never, R>
  readonly onChange?: (change: Change) => Effect.Effect<void, never, R>
}): Effect.Effect<void, never, R | MetadataStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const wake = yield* Queue.sliding<void>(1)
    const consume = (streams: ReadonlyArray<Stream.Stream<Change, MetadataUnavailable>>) =>
      Stream.runForEach(
        Stream.mergeAll(streams, { concurrency: "unbounded" }),
        (change) => Effect.andThen(options.onChange?.(change) ?? Effect.void, Queue.offer(wake, undefined))
      )
    const logged = Effect.catch((error: MetadataUnavailable) => Effect.logDebug("watching the metadata store failed; watching again in a second", error))
    // a later watch starts after the one before failed or ended; changes may have been missed
    // meanwhile, so a reconciliation follows its start
    const watchAgain = Effect.scoped(Effect.gen(function*() {
      const streams = yield* Effect.forEach(options.prefixes, store.watch)
      yield* Queue.offer(wake, undefined)
      yield* consume(streams)
    })).pipe(logged)
    // the first watch starts before this returns, so no change made from then on is missed
    const first = yield* Effect.result(Effect.forEach(options.prefixes, store.watch))
    yield* Effect.forkScoped(
      (Result.isSuccess(first) ? logged(consume(first.success)) : Effect.void).pipe(
        Effect.andThen(Effect.forever(Effect.andThen(Effect.sleep(Duration.seconds(1)), watchAgain)))
      )
    )
    yield* options.reconcile
    yield* Effect.forkScoped(Effect.forever(
      Effect.raceFirst(Queue.take(wake), Effect.sleep(options.interval)).pipe(Effect.andThen(options.reconcile))
    ))
  })
