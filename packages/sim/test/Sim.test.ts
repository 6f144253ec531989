import { assert, describe, it } from "@effect/vitest"
import { Trace } from "@strait/core/Trace"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Queue, Random, Ref, Schedule } from "effect"
import * as Sim from "../src/Sim.ts"
import * as SimClock from "../src/SimClock.ts"

/** The typed error of a failed exit; fails the test when the exit is anything else. */
const errorOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  const error = Exit.findErrorOption(exit)
  if (Option.isSome(error)) return error.value
  assert.fail(`a typed failure, not ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "a success"}`)
}

const valueOf = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  assert.fail(`the run succeeded, not ${Cause.pretty(exit.cause)}`)
}

// Several fibers with sleeps and Random draws, a bounded queue, Deferreds and a jittered retry.
const workload = Effect.gen(function*() {
  const trace = yield* Trace
  const inbox = yield* Queue.bounded<number>(2)
  const consumed = yield* Deferred.make<number>()
  const producers = 4
  const messagesEach = 5
  for (let producer = 0; producer < producers; producer++) {
    yield* Effect.forkChild(Effect.gen(function*() {
      for (let i = 0; i < messagesEach; i++) {
        yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(1, 20)))
        yield* Queue.offer(inbox, producer * 100 + i)
        trace.record("sent", `${producer}/${i}`)
      }
    }))
  }
  yield* Effect.forkChild(Effect.gen(function*() {
    let sum = 0
    for (let n = 0; n < producers * messagesEach; n++) {
      const message = yield* Queue.take(inbox)
      trace.record("received", String(message))
      sum += message
    }
    yield* Deferred.succeed(consumed, sum)
  }))
  const attempts = yield* Ref.make(0)
  const flaky = Ref.updateAndGet(attempts, (n) => n + 1).pipe(
    Effect.flatMap((n) => (n < 4 ? Effect.fail("busy" as const) : Effect.succeed(n)))
  )
  const succeededOn = yield* flaky.pipe(Effect.retry(Schedule.exponential("10 millis").pipe(Schedule.jittered)))
  trace.record("retried", String(succeededOn))
  return yield* Deferred.await(consumed)
})

describe("Sim.run", () => {
  it("the same seed gives the same trace hash, steps and virtual time for a concurrent program", () => {
    const first = Sim.run(workload, { seed: 7 })
    const second = Sim.run(workload, { seed: 7 })
    assert.strictEqual(valueOf(first.exit), 4 * (0 + 1 + 2 + 3 + 4) + 100 * (0 + 1 + 2 + 3) * 5)
    assert.strictEqual(first.traceHash, second.traceHash)
    assert.strictEqual(first.steps, second.steps)
    assert.strictEqual(first.virtualMillis, second.virtualMillis)
    assert.strictEqual(first.events, second.events)
    assert.isAbove(first.events, 40, "sends, receives and timers were all traced")
  })

  it("another seed gives another trace", () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((seed) => Sim.run(workload, { seed }).traceHash))
    assert.strictEqual(hashes.size, 5)
  })

  it("the seed chooses the interleaving of racing fibers, and each seed replays its own", () => {
    const race = Effect.gen(function*() {
      const order: Array<number> = []
      const racers: Array<Fiber.Fiber<void>> = []
      for (let racer = 0; racer < 10; racer++) {
        racers.push(yield* Effect.forkChild(Effect.sync(() => {
          order.push(racer)
        })))
      }
      yield* Fiber.joinAll(racers)
      return order.join(",")
    })
    const orders = new Set<string>()
    for (let seed = 1; seed <= 20; seed++) {
      const order = valueOf(Sim.run(race, { seed }).exit)
      assert.strictEqual(valueOf(Sim.run(race, { seed }).exit), order, `seed ${seed} replays its order`)
      assert.deepStrictEqual(order.split(",").map(Number).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      orders.add(order)
    }
    assert.isAbove(orders.size, 1)
  })

  it("an hour of sleep is one jump of virtual time, not an hour of steps", () => {
    const result = Sim.run(Effect.sleep("1 hour"), { seed: 1 })
    assert.isTrue(Exit.isSuccess(result.exit))
    assert.strictEqual(result.virtualMillis, 3_600_000)
    assert.strictEqual(result.timersFired, 1)
    assert.isAtMost(result.steps, 2)
  })

  it("a program that waits on a Deferred nobody completes is reported as a Deadlock", () => {
    const result = Sim.run(
      Effect.gen(function*() {
        const never = yield* Deferred.make<void>()
        yield* Effect.forkChild(Deferred.await(never))
        yield* Effect.sleep("5 seconds")
        yield* Deferred.await(never)
      }),
      { seed: 1 }
    )
    const deadlock = errorOf(result.exit)
    assert.instanceOf(deadlock, Sim.Deadlock)
    assert.strictEqual(deadlock._tag, "Deadlock")
    assert.strictEqual(deadlock.virtualMillis, 5_000)
    assert.strictEqual(deadlock.liveFibers, 2, "the program and its child are still waiting")
    assert.strictEqual(deadlock.steps, result.steps)
  })

  it("maxSteps stops a program that yields forever", () => {
    const result = Sim.run(Effect.forever(Effect.void), { seed: 1, maxSteps: 1_000 })
    const stopped = errorOf(result.exit)
    assert.instanceOf(stopped, Sim.StepLimitExceeded)
    assert.strictEqual(result.steps, 1_000)
  })

  it("maxSteps also stops a program that sleeps forever", () => {
    const result = Sim.run(Effect.forever(Effect.sleep("1 millis"), { disableYield: true }), { seed: 1, maxSteps: 500 })
    assert.instanceOf(errorOf(result.exit), Sim.StepLimitExceeded)
    assert.strictEqual(result.timersFired, 500)
  })

  it("maxVirtualTime stops a run before the first timer past the limit", () => {
    const result = Sim.run(Effect.forever(Effect.sleep("1 second")), { seed: 1, maxVirtualTime: "1 minute" })
    const stopped = errorOf(result.exit)
    assert.instanceOf(stopped, Sim.TimeLimitExceeded)
    assert.strictEqual(result.virtualMillis, 60_000)
    assert.strictEqual(stopped._tag === "TimeLimitExceeded" && stopped.nextTimerMillis, 61_000)
  })

  it("the program's own failure is the run's exit", () => {
    const result = Sim.run(Effect.sleep("1 second").pipe(Effect.andThen(Effect.fail("refused" as const))), { seed: 1 })
    assert.strictEqual(errorOf(result.exit), "refused")
    assert.strictEqual(result.virtualMillis, 1_000)
  })

  it("Clock.currentTimeMillis is the virtual time, from 2026-01-01 by default", () => {
    const readings = Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      yield* Effect.sleep("90 seconds")
      return [start, yield* Clock.currentTimeMillis] as const
    })
    const [start, end] = valueOf(Sim.run(readings, { seed: 1 }).exit)
    assert.strictEqual(start, SimClock.defaultStartMillis)
    assert.strictEqual(new Date(start).toISOString(), "2026-01-01T00:00:00.000Z")
    assert.strictEqual(end - start, 90_000)
    const [configured] = valueOf(Sim.run(readings, { seed: 1, startMillis: 0 }).exit)
    assert.strictEqual(configured, 0)
  })

  it("Effect.timeout fires in virtual time and its cancelled sleep does not hold the run", () => {
    const result = Sim.run(Effect.sleep("10 seconds").pipe(Effect.timeout("1 second")), { seed: 1 })
    assert.isTrue(Cause.isTimeoutError(errorOf(result.exit)))
    assert.strictEqual(result.virtualMillis, 1_000)
    assert.strictEqual(result.timersFired, 1)
  })

  it("Schedule.exponential retries wait 100, 200 and 400 virtual ms", () => {
    const program = Effect.gen(function*() {
      const attemptedAt: Array<number> = []
      yield* Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => {
          attemptedAt.push(now - SimClock.defaultStartMillis)
          return attemptedAt.length < 4 ? Effect.fail("busy") : Effect.void
        }),
        Effect.retry(Schedule.exponential("100 millis"))
      )
      return attemptedAt
    })
    const result = Sim.run(program, { seed: 1 })
    assert.deepStrictEqual(valueOf(result.exit), [0, 100, 300, 700])
    assert.strictEqual(result.timersFired, 3)
  })

  it("programs record their own events with Trace, and the hash covers them", () => {
    const recording = (detail: string) =>
      Effect.gen(function*() {
        const trace = yield* Trace
        assert.isTrue(trace.enabled)
        yield* Effect.sleep("3 millis")
        trace.record("decision", detail)
      })
    const a = Sim.run(recording("a"), { seed: 1, keepEvents: true })
    const b = Sim.run(recording("b"), { seed: 1 })
    assert.notStrictEqual(a.traceHash, b.traceHash)
    assert.strictEqual(a.events, 2)
    assert.deepStrictEqual(a.eventLog, [
      { virtualMillis: 3, kind: "timer", detail: "3" },
      { virtualMillis: 3, kind: "decision", detail: "a" }
    ])
    assert.isUndefined(b.eventLog, "events are only counted unless keepEvents is set")
  })

  it("runEffect returns the same result as run", () =>
    Effect.runPromise(Effect.gen(function*() {
      const viaEffect = yield* Sim.runEffect(workload, { seed: 3 })
      assert.strictEqual(viaEffect.traceHash, Sim.run(workload, { seed: 3 }).traceHash)
    })))
})
