/**
 * A virtual `Clock` for deterministic simulation: time stands still while anything can run and
 * jumps to the next timer when nothing can.
 *
 * `Effect.sleep`, `Effect.timeout`, `Schedule` delays and everything else that waits on the
 * `Clock` register a timer here instead of calling `setTimeout`. The driver (`Sim.run`) calls
 * `advance` when the scheduler is idle: virtual time moves to the earliest timer and every timer
 * due at that instant fires, in the order the timers were registered.
 *
 * @since 0.1.0
 */
import type { TraceSink } from "@strait/core/Trace"
import { type Clock, Duration, Effect } from "effect"
import { TimerHeap } from "./internal/timerHeap.ts"

/**
 * The default start of virtual time: 2026-01-01T00:00:00Z, in Unix milliseconds, so that
 * `Clock.currentTimeMillis` reads like a real date.
 *
 * @since 0.1.0
 */
export const defaultStartMillis = 1_767_225_600_000

const NANOS_PER_MILLI = 1_000_000

/**
 * How a `SimClock` is made.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The Unix time, in milliseconds, at which virtual time starts; `defaultStartMillis` if absent. */
  readonly startMillis?: number | undefined
  /** Where each fired timer is recorded as (`"timer"`, virtual millis since the start). */
  readonly trace?: TraceSink | undefined
}

/**
 * A `Clock` whose time moves only when `advance` is called.
 *
 * **Details**
 *
 * Timers sit in a binary heap ordered by (due time, registration order). A sleep that is
 * interrupted (a lost race, an `Effect.timeout` that won) removes its timer, so it neither fires
 * nor keeps the run alive. A timer's fiber resumes synchronously inside `advance`, and runs until
 * it next waits; what it wakes goes to the scheduler's ready set.
 *
 * Wall-clock time (`currentTimeMillis`, `currentTimeNanos`) is `startMillis` plus the virtual time
 * elapsed; monotonic time is the virtual time elapsed, in nanoseconds.
 *
 * **Gotchas**
 *
 * Sleeps of zero or negative length are a plain yield, as with the live clock; an infinite sleep
 * never registers a timer (it waits forever, and can be a deadlock).
 *
 * @since 0.1.0
 */
export class SimClock implements Clock.Clock {
  /** The Unix time, in milliseconds, at which this clock started. */
  readonly startMillis: number
  private readonly timers = new TimerHeap()
  private readonly trace: TraceSink | undefined
  private elapsed = 0
  private fired = 0

  constructor(options: Options = {}) {
    this.startMillis = options.startMillis ?? defaultStartMillis
    this.trace = options.trace?.enabled === true ? options.trace : undefined
  }

  /** Virtual milliseconds elapsed since the start. */
  get elapsedMillis(): number {
    return this.elapsed
  }

  /** The timers fired so far. */
  get timersFired(): number {
    return this.fired
  }

  /** The timers registered and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.timers.size
  }

  /** When the earliest pending timer is due, in virtual milliseconds since the start. */
  get nextTimerMillis(): number | undefined {
    return this.timers.peek()?.at
  }

  currentTimeMillisUnsafe(): number {
    return this.startMillis + Math.floor(this.elapsed)
  }

  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.currentTimeMillisUnsafe())

  currentTimeNanosUnsafe(): bigint {
    return BigInt(this.startMillis) * BigInt(NANOS_PER_MILLI) + this.monotonicTimeNanosUnsafe()
  }

  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())

  monotonicTimeNanosUnsafe(): bigint {
    return BigInt(Math.round(this.elapsed * NANOS_PER_MILLI))
  }

  readonly monotonicTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.monotonicTimeNanosUnsafe())

  /** Waits until virtual time reaches now + `duration`; interrupting the wait removes its timer. */
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    const millis = Duration.toMillis(duration)
    if (millis <= 0) return Effect.yieldNow
    if (!Number.isFinite(millis)) return Effect.never
    return Effect.callback<void>((resume) => {
      const timer = this.timers.insert(this.elapsed + millis, () => resume(Effect.void))
      return Effect.sync(() => this.timers.remove(timer))
    })
  }

  /**
   * Jumps to the earliest pending timer and fires every timer due at that instant, in registration
   * order; `false` (and time unchanged) when no timer is pending.
   */
  advance(): boolean {
    const timers = this.timers
    const first = timers.peek()
    if (first === undefined) return false
    const at = first.at
    this.elapsed = at
    const detail = this.trace === undefined ? "" : String(at)
    while (timers.peek()?.at === at) {
      const timer = timers.pop()!
      this.fired++
      this.trace?.record("timer", detail)
      timer.fire()
    }
    return true
  }
}

/**
 * Makes a `SimClock`.
 *
 * @since 0.1.0
 */
export const make = (options?: Options): SimClock => new SimClock(options)
