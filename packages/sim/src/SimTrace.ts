/**
 * The simulator's trace sink: it folds every recorded event, with the virtual time it happened at,
 * into a running 64-bit hash. Two runs of one seed must end with the same hash.
 *
 * Installed as `@strait/core`'s `Trace` by `Sim.run`; the simulated clock records each timer it
 * fires, and programs record their own events with `Trace`.
 *
 * @since 0.1.0
 */
import type { TraceSink } from "@strait/core/Trace"
import { Fnv64 } from "./internal/fnv64.ts"

/**
 * One recorded event, kept only when asked for (`keepEvents`).
 *
 * @since 0.1.0
 */
export interface TraceEvent {
  /** Virtual milliseconds since the start of the run. */
  readonly virtualMillis: number
  readonly kind: string
  readonly detail: string
}

/**
 * How a `SimTrace` is made.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Reads the virtual time, in milliseconds since the start of the run, stamped on each event. */
  readonly virtualMillis: () => number
  /** Keep every event in memory as well as hashing it (for debugging a divergence). */
  readonly keepEvents?: boolean | undefined
}

const KIND_END = 0x1f
const EVENT_END = 0x1e

/**
 * A `TraceSink` that hashes events as they arrive.
 *
 * **Details**
 *
 * The hash covers, for each event in order, its virtual time (the float64's bits), kind and
 * detail (their UTF-16 code units, with separators), in FNV-1a 64; the same events at other times
 * hash differently.
 * By default only the count is kept; nothing grows with the length of the run.
 *
 * @since 0.1.0
 */
export class SimTrace implements TraceSink {
  readonly enabled = true
  private readonly hash = new Fnv64()
  private readonly virtualMillis: () => number
  private readonly kept: Array<TraceEvent> | undefined
  private count = 0

  constructor(options: Options) {
    this.virtualMillis = options.virtualMillis
    this.kept = options.keepEvents === true ? [] : undefined
  }

  /** Records one event; a field so that a detached `record` still works. */
  readonly record = (kind: string, detail: string): void => {
    const virtualMillis = this.virtualMillis()
    const hash = this.hash
    hash.number(virtualMillis)
    hash.string(kind)
    hash.unit(KIND_END)
    hash.string(detail)
    hash.unit(EVENT_END)
    this.count++
    this.kept?.push({ virtualMillis, kind, detail })
  }

  /** The events recorded so far. */
  get events(): number {
    return this.count
  }

  /** The hash of the events recorded so far, as 16 hex digits. */
  get traceHash(): string {
    return this.hash.digest()
  }

  /** The events themselves when made with `keepEvents`, else `undefined`. */
  get eventLog(): ReadonlyArray<TraceEvent> | undefined {
    return this.kept
  }
}

/**
 * Makes a `SimTrace`.
 *
 * @since 0.1.0
 */
export const make = (options: Options): SimTrace => new SimTrace(options)
