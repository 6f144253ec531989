/**
 * A scheduler for Node processes that runs woken fibers on microtasks, and lets the event loop in
 * after a bounded run of them.
 *
 * Effect's default scheduler flushes every batch of ready fibers from `setImmediate`, so a fiber woken
 * by a socket callback runs only in the event loop's next check phase; on the transport's round trip
 * that is a large share of the latency. Flushing on a microtask runs it right after the callback. A
 * fiber that keeps yielding must not starve I/O, though: after `microtaskFlushesPerTurn` flushes in
 * one turn of the event loop the next flush goes through `setImmediate`, and the count starts again
 * in the next turn.
 *
 * @since 0.1.0
 */
import { Scheduler } from "effect"

/**
 * Makes the scheduler; install it with `Effect.runFork(program, { scheduler })` (or the promise
 * variants) at the process entry point.
 *
 * **Gotchas**
 *
 * Not for the simulator, which brings its own deterministic scheduler.
 *
 * @since 0.1.0
 */
export const make = (options: { readonly microtaskFlushesPerTurn?: number } = {}): Scheduler.Scheduler => {
  const budget = options.microtaskFlushesPerTurn ?? 64
  let flushesThisTurn = 0
  let resetScheduled = false
  const schedule = (flush: () => void): () => void => {
    if (flushesThisTurn < budget) {
      flushesThisTurn++
      if (!resetScheduled) {
        resetScheduled = true
        setImmediate(() => {
          resetScheduled = false
          flushesThisTurn = 0
        })
      }
      let cancelled = false
      queueMicrotask(() => {
        if (!cancelled) flush()
      })
      return () => {
        cancelled = true
      }
    }
    const timer = setImmediate(flush)
    return () => clearImmediate(timer)
  }
  return new Scheduler.MixedScheduler("async", schedule)
}
