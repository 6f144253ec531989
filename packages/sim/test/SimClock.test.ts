import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber } from "effect"
import * as Prng from "../src/internal/prng.ts"
import { TimerHeap } from "../src/internal/timerHeap.ts"
import * as Sim from "../src/Sim.ts"
import * as SimClock from "../src/SimClock.ts"
import * as SimScheduler from "../src/SimScheduler.ts"

describe("SimClock", () => {
  it("timers due at the same instant fire in the order they were registered", () => {
    const sleepers = Effect.gen(function*() {
      const registered: Array<number> = []
      const woke: Array<number> = []
      for (let sleeper = 0; sleeper < 8; sleeper++) {
        yield* Effect.forkChild(Effect.suspend(() => {
          registered.push(sleeper)
          return Effect.sleep("100 millis")
        }).pipe(Effect.andThen(Effect.sync(() => woke.push(sleeper)))))
      }
      yield* Effect.sleep("1 second")
      return { registered: registered.join(","), woke: woke.join(",") }
    })
    const registrationOrders = new Set<string>()
    for (let seed = 1; seed <= 10; seed++) {
      const result = Sim.run(sleepers, { seed })
      assert.isTrue(Exit.isSuccess(result.exit))
      if (Exit.isSuccess(result.exit)) {
        assert.strictEqual(result.exit.value.woke, result.exit.value.registered, `seed ${seed}`)
        registrationOrders.add(result.exit.value.registered)
      }
    }
    assert.isAbove(registrationOrders.size, 1, "the seeds registered the timers in different orders")
  })

  it("advance jumps to the earliest timer and fires only the timers due then", () => {
    const clock = SimClock.make({ startMillis: 0 })
    const scheduler = SimScheduler.make({ seed: 1 })
    const fired: Array<string> = []
    const sleep = (label: string, millis: number) =>
      Effect.runFork(clock.sleep(Duration.millis(millis)).pipe(Effect.andThen(Effect.sync(() => fired.push(label)))), {
        scheduler
      })
    sleep("late", 30)
    sleep("early-1", 10)
    sleep("early-2", 10)
    assert.strictEqual(clock.pendingTimers, 3)
    assert.strictEqual(clock.nextTimerMillis, 10)
    assert.isTrue(clock.advance())
    assert.deepStrictEqual(fired, ["early-1", "early-2"])
    assert.strictEqual(clock.elapsedMillis, 10)
    assert.isTrue(clock.advance())
    assert.deepStrictEqual(fired, ["early-1", "early-2", "late"])
    assert.isFalse(clock.advance(), "no timer left: time stays put")
    assert.strictEqual(clock.elapsedMillis, 30)
    assert.strictEqual(clock.timersFired, 3)
  })

  it("an interrupted sleep removes its timer", () => {
    const clock = SimClock.make()
    const scheduler = SimScheduler.make({ seed: 1 })
    const sleeper = Effect.runFork(clock.sleep(Duration.seconds(5)), { scheduler })
    assert.strictEqual(clock.pendingTimers, 1)
    sleeper.interruptUnsafe()
    assert.strictEqual(clock.pendingTimers, 0)
    assert.isFalse(clock.advance())
    assert.strictEqual(clock.elapsedMillis, 0)
  })

  it("a sleep of zero is a yield, not a timer", () => {
    const result = Sim.run(Effect.sleep(Duration.zero), { seed: 1 })
    assert.isTrue(Exit.isSuccess(result.exit))
    assert.strictEqual(result.timersFired, 0)
    assert.strictEqual(result.virtualMillis, 0)
  })

  it("wall-clock and monotonic readings advance together by the virtual time, to the nanosecond", () => {
    const readings = Effect.gen(function*() {
      yield* Effect.sleep(Duration.micros(1_500n))
      return {
        millis: yield* Clock.currentTimeMillis,
        nanos: yield* Clock.currentTimeNanos,
        monotonic: yield* Effect.clockWith((clock) => clock.monotonicTimeNanos)
      }
    })
    const result = Sim.run(readings, { seed: 1, startMillis: 1_000 })
    assert.isTrue(Exit.isSuccess(result.exit))
    if (Exit.isSuccess(result.exit)) {
      assert.deepStrictEqual(result.exit.value, { millis: 1_001, nanos: 1_001_500_000n, monotonic: 1_500_000n })
    }
    assert.strictEqual(result.virtualMillis, 1.5)
  })
})

describe("TimerHeap", () => {
  it("pops timers by due time, then by registration, whatever was inserted or removed", () => {
    const heap = new TimerHeap()
    const next = Prng.make("heap")
    const inserted = []
    for (let i = 0; i < 2_000; i++) inserted.push(heap.insert(next() % 50, () => {}))
    const removed = new Set(inserted.filter((_, i) => i % 3 === 0))
    for (const timer of removed) heap.remove(timer)
    for (const timer of removed) heap.remove(timer) // removing twice is harmless
    const expected = inserted.filter((timer) => !removed.has(timer))
      .sort((a, b) => a.at - b.at || a.sequence - b.sequence)
    assert.strictEqual(heap.size, expected.length)
    const popped = []
    for (let timer = heap.pop(); timer !== undefined; timer = heap.pop()) popped.push(timer)
    assert.deepStrictEqual(popped.map((t) => t.sequence), expected.map((t) => t.sequence))
  })
})

describe("a node's own clock", () => {
  // runs `body` with the node's clock as the Clock, on a simulated cluster clock
  const onNode = <A>(body: (node: SimClock.NodeClock, cluster: Clock.Clock) => Effect.Effect<A>) =>
    Sim.run(Effect.flatMap(Effect.service(Clock.Clock), (cluster) => {
      const node = new SimClock.NodeClock(cluster)
      return Effect.provideService(body(node, cluster), Clock.Clock, node)
    }), { seed: 1 })

  it("runs at its rate: a 1 % fast clock sleeps a second in 990 ms of the cluster's time and reads 1 % ahead, and its monotonic time never steps", () => {
    const result = onNode((node, cluster) =>
      Effect.gen(function*() {
        const startCluster = cluster.currentTimeMillisUnsafe()
        const startNode = yield* Clock.currentTimeMillis
        node.setRate(1.01)
        yield* Effect.sleep("1 second")
        const clusterElapsed = cluster.currentTimeMillisUnsafe() - startCluster
        const nodeElapsed = (yield* Clock.currentTimeMillis) - startNode
        const monotonicBefore = node.monotonicTimeNanosUnsafe()
        node.stepWall(-5_000)
        const monotonicAfter = node.monotonicTimeNanosUnsafe()
        const stepped = (yield* Clock.currentTimeMillis) - startNode
        return { clusterElapsed, nodeElapsed, monotonicBefore, monotonicAfter, stepped }
      }))
    assert.isTrue(Exit.isSuccess(result.exit))
    if (Exit.isSuccess(result.exit)) {
      const { clusterElapsed, nodeElapsed, monotonicBefore, monotonicAfter, stepped } = result.exit.value
      assert.closeTo(clusterElapsed, 990, 1)
      assert.closeTo(nodeElapsed, 1_000, 1)
      assert.strictEqual(monotonicAfter, monotonicBefore)
      assert.closeTo(stepped, -4_000, 1)
    }
  })

  it("a change of rate is continuous: the clock goes on from where it was, at the new rate", () => {
    const result = onNode((node) =>
      Effect.gen(function*() {
        node.setRate(2)
        yield* Effect.sleep("1 second")
        const middle = node.monotonicTimeNanosUnsafe()
        node.setRate(0.5)
        const after = node.monotonicTimeNanosUnsafe()
        yield* Effect.sleep("1 second")
        return { middle, after, end: node.monotonicTimeNanosUnsafe() }
      }))
    assert.isTrue(Exit.isSuccess(result.exit))
    if (Exit.isSuccess(result.exit)) {
      assert.strictEqual(result.exit.value.after, result.exit.value.middle)
      assert.closeTo(Number(result.exit.value.end - result.exit.value.middle) / 1e6, 1_000, 1)
    }
  })

  it("paused, it holds every timer until resumed: a stopped process's sleeps end only when it runs again", () => {
    const result = onNode((node, cluster) =>
      Effect.gen(function*() {
        const start = cluster.currentTimeMillisUnsafe()
        node.pause()
        const sleeper = yield* Effect.forkChild(Effect.andThen(Effect.sleep("100 millis"), Effect.sync(() => cluster.currentTimeMillisUnsafe() - start)))
        yield* Effect.provideService(Effect.sleep("5 seconds"), Clock.Clock, cluster)
        node.resume()
        return yield* Fiber.join(sleeper)
      }))
    assert.isTrue(Exit.isSuccess(result.exit))
    if (Exit.isSuccess(result.exit)) assert.closeTo(result.exit.value, 5_000, 1)
  })
})
