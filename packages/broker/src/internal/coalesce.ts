// Coalescing: calls made while the fiber scheduler is busy go out as one request. The first call of a
// batch forks a flush that yields once, so every call made in the same turn (producers woken together
// by one reply, say) joins it; a batch that reaches its size limit is flushed at once.
import { Deferred, Effect, Exit, type Scope } from "effect"

interface Batch<I, O, E> {
  readonly items: Array<I>
  readonly replies: Array<Deferred.Deferred<O, E>>
  size: number
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
}) => {
  const open = new Map<string, Batch<I, O, E>>()

  const flush = (key: string, batch: Batch<I, O, E>) =>
    Effect.suspend(() => {
      if (open.get(key) === batch) open.delete(key)
      return options.run(key, batch.items).pipe(
        Effect.exit,
        Effect.map((exit) =>
          batch.replies.forEach((reply, i) => Deferred.doneUnsafe(reply, Exit.isSuccess(exit) ? exit.value[i]! : exit as Exit.Exit<never, E>))
        )
      )
    })

  return (key: string, item: I, size: number): Effect.Effect<O, E> =>
    Effect.suspend(() => {
      const reply = Deferred.makeUnsafe<O, E>()
      let batch = open.get(key)
      const fresh = batch === undefined
      if (batch === undefined) open.set(key, batch = { items: [], replies: [], size: 0 })
      batch.items.push(item)
      batch.replies.push(reply)
      batch.size += size
      // full: later calls start the next batch
      if (batch.size >= options.maxSize && open.get(key) === batch) open.delete(key)
      const waitForReply = Deferred.await(reply)
      return fresh ? Effect.andThen(Effect.forkIn(Effect.andThen(Effect.yieldNow, flush(key, batch)), options.scope), waitForReply) : waitForReply
    })
}
