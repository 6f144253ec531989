/**
 * The simulation driver: runs an Effect from a seed on the `SimScheduler` and the `SimClock`, with
 * `Random` seeded, and reports how the run ended and the hash of its trace.
 *
 * A run is one synchronous loop: run ready tasks (one per step, in seeded order) until none is
 * left; if the program has finished, stop; otherwise jump virtual time to the next timer and fire
 * it. Nothing runnable and no timer pending is a deadlock. No real timer is ever set, so an hour of
 * virtual time costs only the work done in it, and the same seed replays the same run.
 *
 * @since 0.1.0
 */
import { Trace } from "@strait/core/Trace"
import { Clock, Context, Data, Duration, Effect, Exit, Metric, Random } from "effect"
import * as AmbientGuard from "./adapters/AmbientGuard.ts"
import * as SimClock from "./SimClock.ts"
import * as SimScheduler from "./SimScheduler.ts"
import * as SimTrace from "./SimTrace.ts"

/**
 * Nothing could run, no timer was pending, and the program had not finished: every live fiber
 * waits on something that nobody will ever provide.
 *
 * @since 0.1.0
 */
export class Deadlock extends Data.TaggedError("Deadlock")<{
  readonly steps: number
  readonly virtualMillis: number
  /** Fibers started and not finished (including the program's own), as the runtime reported them. */
  readonly liveFibers: number
}> {
  override get message(): string {
    return `deadlock after ${this.steps} steps at virtual ${this.virtualMillis} ms: nothing runnable, no timer pending, ${this.liveFibers} fibers waiting`
  }
}

/**
 * The run dispatched `maxSteps` steps (ready tasks run plus timers fired) without finishing.
 *
 * @since 0.1.0
 */
export class StepLimitExceeded extends Data.TaggedError("StepLimitExceeded")<{
  readonly maxSteps: number
  readonly steps: number
  readonly virtualMillis: number
}> {
  override get message(): string {
    return `no end after ${this.steps} steps (limit ${this.maxSteps}) at virtual ${this.virtualMillis} ms`
  }
}

/**
 * The next timer would take virtual time past `maxVirtualTime` before the program finished.
 *
 * @since 0.1.0
 */
export class TimeLimitExceeded extends Data.TaggedError("TimeLimitExceeded")<{
  readonly maxVirtualMillis: number
  readonly virtualMillis: number
  /** When the timer that would have fired next was due, in virtual millis since the start. */
  readonly nextTimerMillis: number
  readonly steps: number
}> {
  override get message(): string {
    return `no end within ${this.maxVirtualMillis} virtual ms: next timer due at ${this.nextTimerMillis} ms`
  }
}

/**
 * Why the driver stopped a run that had not finished.
 *
 * @since 0.1.0
 */
export type RunError = Deadlock | StepLimitExceeded | TimeLimitExceeded

/**
 * How to run a simulation.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Seeds both the interleaving (the scheduler) and `Random`; the same seed replays the run. */
  readonly seed: number | string
  /** The most steps (ready tasks run plus timers fired) before `StepLimitExceeded`; 10,000,000 by default. */
  readonly maxSteps?: number | undefined
  /** The most virtual time before `TimeLimitExceeded`; unbounded by default. */
  readonly maxVirtualTime?: Duration.Input | undefined
  /** The Unix time, in milliseconds, at which virtual time starts; 2026-01-01T00:00:00Z by default. */
  readonly startMillis?: number | undefined
  /** Keep every trace event in memory (`Result.eventLog`) as well as hashing it; off by default. */
  readonly keepEvents?: boolean | undefined
  /** Make `Math.random`, `Date.now`, timers… throw `AmbientNondeterminism` during the run; on by default. */
  readonly guardAmbient?: boolean | undefined
  /** Operations a fiber runs before a forced yield; see `SimScheduler.Options`. */
  readonly opsBeforeYield?: number | undefined
}

/**
 * How a run ended.
 *
 * @since 0.1.0
 */
export interface Result<A, E> {
  /** The program's exit, or a failure with a `RunError` when the driver stopped it. */
  readonly exit: Exit.Exit<A, E | RunError>
  /** The hash of every trace event (time, kind, detail), as 16 hex digits. */
  readonly traceHash: string
  /** Steps dispatched: ready tasks run plus timers fired. */
  readonly steps: number
  /** Virtual milliseconds elapsed. */
  readonly virtualMillis: number
  readonly timersFired: number
  /** Trace events recorded (timers fired and the program's own `Trace` events). */
  readonly events: number
  /** The events themselves with `keepEvents: true`, else `undefined`. */
  readonly eventLog: ReadonlyArray<SimTrace.TraceEvent> | undefined
  /** Fibers started and not finished when the run ended. */
  readonly liveFibers: number
}

const DEFAULT_MAX_STEPS = 10_000_000

/**
 * Runs `program` to its end in simulated time and returns how it ended.
 *
 * **When to use**
 *
 * At the top of a simulation test: `Sim.run` is a plain synchronous function, so a test calls it
 * directly, then asserts on `exit` and compares `traceHash` across runs of one seed.
 *
 * **Details**
 *
 * The program runs with `Clock` replaced by a `SimClock`, the `Scheduler` by a `SimScheduler`,
 * `Random.withSeed(seed)`, and `Trace` (from `@strait/core`) by a `SimTrace`. The run stops when
 * the program has finished and nothing is left to run, or with a `RunError` (`Deadlock`,
 * `StepLimitExceeded`, `TimeLimitExceeded`) in `exit`. Fibers still waiting when it stops are
 * abandoned, not interrupted: the whole simulated world is dropped with the run.
 *
 * **Gotchas**
 *
 * Everything the run uses must be made inside it: a `Queue` or `Layer` built by an `Effect.run*`
 * call outside the program binds to the real scheduler and escapes the simulation. Layers memoize
 * across `Effect.provide` calls; build per-node layers with `Layer.fresh`. Keep fiber ids and
 * other process-global counters out of trace events.
 *
 * @since 0.1.0
 */
export const run = <A, E>(program: Effect.Effect<A, E>, options: Options): Result<A, E> =>
  options.guardAmbient === false ? simulate(program, options) : AmbientGuard.guard(() => simulate(program, options))

/**
 * `run` as an Effect, for composing simulations inside an Effect (an `it.effect` test, a seed sweep).
 *
 * @since 0.1.0
 */
export const runEffect = <A, E>(program: Effect.Effect<A, E>, options: Options): Effect.Effect<Result<A, E>> =>
  Effect.sync(() => run(program, options))

const simulate = <A, E>(program: Effect.Effect<A, E>, options: Options): Result<A, E> => {
  const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS
  const maxVirtualMillis = options.maxVirtualTime === undefined
    ? Number.POSITIVE_INFINITY
    : Duration.toMillis(options.maxVirtualTime)
  const scheduler = SimScheduler.make({ seed: options.seed, opsBeforeYield: options.opsBeforeYield })
  // the trace stamps events with the clock's time and the clock records its timers in the trace;
  // the closure reads `clock` only once both exist
  const trace = SimTrace.make({ virtualMillis: () => clock.elapsedMillis, keepEvents: options.keepEvents })
  const clock = SimClock.make({ startMillis: options.startMillis, trace })
  const fibers = { live: 0 }
  const fiberCounter: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => {
      fibers.live++
    },
    recordFiberEnd: () => {
      fibers.live--
    }
  }
  const context = Context.make(Clock.Clock, clock).pipe(
    Context.add(Trace, trace),
    Context.add(Metric.FiberRuntimeMetrics, fiberCounter)
  )
  const steps = () => scheduler.steps + clock.timersFired

  const root = Effect.runForkWith(context)(Random.withSeed(program, options.seed), { scheduler })
  let stopped: RunError | undefined
  while (true) {
    scheduler.drain(maxSteps - steps())
    if (scheduler.pending > 0) {
      stopped = new StepLimitExceeded({ maxSteps, steps: steps(), virtualMillis: clock.elapsedMillis })
      break
    }
    if (root.pollUnsafe() !== undefined) break
    const nextTimerMillis = clock.nextTimerMillis
    if (nextTimerMillis === undefined) {
      stopped = new Deadlock({ steps: steps(), virtualMillis: clock.elapsedMillis, liveFibers: fibers.live })
      break
    }
    if (nextTimerMillis > maxVirtualMillis) {
      stopped = new TimeLimitExceeded({
        maxVirtualMillis,
        virtualMillis: clock.elapsedMillis,
        nextTimerMillis,
        steps: steps()
      })
      break
    }
    if (steps() >= maxSteps) {
      stopped = new StepLimitExceeded({ maxSteps, steps: steps(), virtualMillis: clock.elapsedMillis })
      break
    }
    clock.advance()
  }
  return {
    exit: stopped === undefined ? root.pollUnsafe()! : Exit.fail(stopped),
    traceHash: trace.traceHash,
    steps: steps(),
    virtualMillis: clock.elapsedMillis,
    timersFired: clock.timersFired,
    events: trace.events,
    eventLog: trace.eventLog,
    liveFibers: fibers.live
  }
}
