// Helpers the broker's internal queues (%TIMER%, %HALF%, %POP%) and their loops share.
import type { Store } from "@strait/storage"
import { Deferred, Effect } from "effect"

/**
 * Visits the records of `queue` from `from` (its start by default) to its end, in order, until
 * `visit` returns `true`; returns whether it did.
 */
export const scanQueue = (
  store: Store.Store,
  queue: Store.QueueRef,
  visit: (record: Store.StoredRecord) => boolean,
  from?: number
) =>
  Effect.gen(function*() {
    const { end, start } = yield* store.bounds(queue)
    // retention may have deleted the records below `start`
    let offset = Math.max(from ?? start, start)
    while (offset < end) {
      const records = yield* store.read(queue, offset, { maxCount: 4096, maxBytes: 16 * 1024 * 1024 })
      if (records.length === 0) break
      for (const record of records) if (visit(record)) return true
      offset = records[records.length - 1]!.offset + 1
    }
    return false
  })

/** A wake-up signal for a loop that sleeps until something changes: `wait` until the next `nudge`. */
export const wakeup = () => {
  let wake = Deferred.makeUnsafe<void>()
  return {
    wait: Effect.suspend(() => Deferred.await(wake)),
    nudge: () => {
      const waiting = wake
      wake = Deferred.makeUnsafe<void>()
      Deferred.doneUnsafe(waiting, Effect.void)
    }
  }
}
