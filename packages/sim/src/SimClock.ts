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

/**
 * One node's clock in a simulated cluster: the cluster's clock as that node's quartz and NTP see it.
 * It runs at `rate` (1.01: 1 % fast) and its wall time is stepped by `offsetMillis`; its monotonic
 * time never steps and never goes back. `pausedUntil` holds the node's timers: a sleep due before
 * then fires only then, as the timers of a process stopped by a long GC pause or SIGSTOP do.
 *
 * @since 0.1.0
 */
export class NodeClock implements Clock.Clock {
  private rateNow = 1
  private offset = 0
  private anchorBase = 0
  private anchorNode = 0
  private paused = false
  // the fibers whose timers came due while paused
  private readonly waiting = new Set<() => void>()
  private readonly held: Effect.Effect<void> = Effect.callback<void>((resume) => {
    const wake = () => resume(Effect.void)
    this.waiting.add(wake)
    return Effect.sync(() => {
      this.waiting.delete(wake)
    })
  })
  readonly base: Clock.Clock

  constructor(base: Clock.Clock) {
    this.base = base
  }

  /** How fast this clock runs against the cluster's (1: on time). */
  get rate(): number {
    return this.rateNow
  }

  /** How far this clock's wall time is from the cluster's, beyond what its rate has added. */
  get offsetMillis(): number {
    return this.offset
  }

  private baseMillis(): number {
    return Number(this.base.monotonicTimeNanosUnsafe()) / NANOS_PER_MILLI
  }

  // this node's monotonic milliseconds
  private nodeMillis(): number {
    return this.anchorNode + (this.baseMillis() - this.anchorBase) * this.rateNow
  }

  /** Drifts from now on at `rate`, continuously (no step). */
  setRate(rate: number): void {
    if (!(rate > 0)) throw new RangeError("a clock's rate is positive")
    this.anchorNode = this.nodeMillis()
    this.anchorBase = this.baseMillis()
    this.rateNow = rate
  }

  /** Steps the wall time (as NTP may); monotonic time is unaffected. */
  stepWall(millis: number): void {
    this.offset += millis
  }

  /** On time again: rate 1, the wall time the cluster's, and running (not paused). */
  sync(): void {
    this.setRate(1)
    this.offset -= this.currentTimeMillisUnsafe() - this.base.currentTimeMillisUnsafe()
    this.resume()
  }

  /** Holds every timer until `resume`: a stopped process. */
  pause(): void {
    this.paused = true
  }

  /** Lets the held timers fire. */
  resume(): void {
    this.paused = false
    const waiting = [...this.waiting]
    this.waiting.clear()
    for (const wake of waiting) wake()
  }

  currentTimeMillisUnsafe(): number {
    return Math.floor(this.base.currentTimeMillisUnsafe() + this.offset + (this.nodeMillis() - this.baseMillis()))
  }

  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.currentTimeMillisUnsafe())

  currentTimeNanosUnsafe(): bigint {
    return BigInt(this.currentTimeMillisUnsafe()) * BigInt(NANOS_PER_MILLI)
  }

  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())

  monotonicTimeNanosUnsafe(): bigint {
    return BigInt(Math.round(this.nodeMillis() * NANOS_PER_MILLI))
  }

  readonly monotonicTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.monotonicTimeNanosUnsafe())

  /** Waits `duration` of this node's time (the cluster's time divided by the rate), held while paused. */
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    const millis = Duration.toMillis(duration)
    const waited = millis <= 0 || !Number.isFinite(millis) ? this.base.sleep(duration) : this.base.sleep(Duration.millis(millis / this.rateNow))
    return Effect.andThen(waited, Effect.suspend(() => (this.paused ? this.held : Effect.void)))
  }
}
