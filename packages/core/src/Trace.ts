/**
 * The trace of a run: what the network delivered and which timers fired, in order.
 *
 * Components that deliver things (the memory transport, the simulated disk, the simulator's clock)
 * record an event per delivery. Outside the simulator the sink is a no-op; under it, the simulator
 * folds every event into a hash, and the same seed must give the same hash.
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * Where trace events go. `record` is synchronous and cheap: it runs on delivery paths.
 *
 * **Gotchas**
 *
 * An event must not contain anything that differs between two runs of one seed: no fiber ids, no
 * wall-clock times, no object identities.
 *
 * @since 0.1.0
 */
export interface TraceSink {
  readonly enabled: boolean
  readonly record: (kind: string, detail: string) => void
}

/**
 * The current trace sink; the default discards everything.
 *
 * @since 0.1.0
 */
export const Trace = Context.Reference<TraceSink>("@strait/core/Trace", {
  defaultValue: () => ({ enabled: false, record: () => {} })
})
