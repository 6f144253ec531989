/**
 * A seeded `Scheduler` for deterministic simulation: it keeps every ready task (fiber starts,
 * yields, queue wake-ups) and runs one per step, chosen by a seeded generator.
 *
 * Under the default `MixedScheduler` ready tasks run in FIFO order from `setImmediate`; here the
 * driver runs them, one at a time, in an order drawn from the seed. One seed is one interleaving,
 * replayed exactly; another seed explores another one.
 *
 * @since 0.1.0
 */
import type { Fiber, Scheduler } from "effect"
import * as Prng from "./internal/prng.ts"

/**
 * How a `SimScheduler` is made.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Chooses the interleaving; the same seed gives the same order of steps. */
  readonly seed: number | string
  /**
   * The operations a fiber runs before it must yield (a preemption point). Defaults to the fiber's
   * `Scheduler.MaxOpsBeforeYield` (2048); lower values preempt more often and explore more.
   */
  readonly opsBeforeYield?: number | undefined
}

/**
 * A `Scheduler` whose dispatchers all feed one set of ready tasks, run one per `step`.
 *
 * **Details**
 *
 * Every dispatcher made by this scheduler shares its ready set, so fibers, queues and latches made
 * inside the simulated fiber tree all wait here. Task priorities are ignored on purpose: the seeded
 * choice is the order. `flush` (called by code that wants its work done synchronously) runs the
 * ready set to empty, still in seeded order.
 *
 * **Gotchas**
 *
 * A task scheduled on another scheduler (a `Queue` made by `Effect.runSync` outside the run, for
 * example) never reaches this ready set and escapes the simulation.
 *
 * @since 0.1.0
 */
export class SimScheduler implements Scheduler.Scheduler {
  readonly executionMode = "async" as const
  private readonly ready: Array<() => void> = []
  private readonly next: Prng.Prng
  private readonly opsBeforeYield: number | undefined
  private readonly dispatcher: Scheduler.SchedulerDispatcher
  private stepCount = 0

  constructor(options: Options) {
    this.next = Prng.make(options.seed)
    this.opsBeforeYield = options.opsBeforeYield
    const ready = this.ready
    this.dispatcher = {
      scheduleTask: (task) => {
        ready.push(task)
      },
      flush: () => {
        this.drain(Number.POSITIVE_INFINITY)
      }
    }
  }

  /** The tasks run so far. */
  get steps(): number {
    return this.stepCount
  }

  /** The tasks ready to run. */
  get pending(): number {
    return this.ready.length
  }

  /** A fiber yields (a preemption point, and so a seeded choice) after its operation budget. */
  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    return fiber.currentOpCount >= (this.opsBeforeYield ?? fiber.cache.maxOpsBeforeYield)
  }

  /** Every fiber gets the one shared dispatcher, so all ready tasks meet in one set. */
  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this.dispatcher
  }

  /** Runs one ready task chosen by the seed; `false` when nothing is ready. */
  step(): boolean {
    const ready = this.ready
    const count = ready.length
    if (count === 0) return false
    // a lone task needs no draw; skipping it keeps the stream for real choices
    const index = count === 1 ? 0 : this.next() % count
    const task = ready[index]!
    ready[index] = ready[count - 1]!
    ready.pop()
    this.stepCount++
    task()
    return true
  }

  /** Runs ready tasks until none is left or `budget` tasks have run; returns how many ran. */
  drain(budget: number): number {
    let ran = 0
    while (ran < budget && this.step()) ran++
    return ran
  }
}

/**
 * Makes a `SimScheduler`.
 *
 * @since 0.1.0
 */
export const make = (options: Options): SimScheduler => new SimScheduler(options)
