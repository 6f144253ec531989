import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as Sim from "../src/Sim.ts"
import * as SimScheduler from "../src/SimScheduler.ts"

const orderOf = (seed: number | string): string => {
  const scheduler = SimScheduler.make({ seed })
  const dispatcher = scheduler.makeDispatcher()
  const ran: Array<number> = []
  for (let task = 0; task < 10; task++) dispatcher.scheduleTask(() => ran.push(task), 0)
  scheduler.drain(Number.POSITIVE_INFINITY)
  return ran.join(",")
}

describe("SimScheduler", () => {
  it("a step runs exactly one ready task and counts it", () => {
    const scheduler = SimScheduler.make({ seed: 1 })
    const dispatcher = scheduler.makeDispatcher()
    let ran = 0
    for (let task = 0; task < 3; task++) dispatcher.scheduleTask(() => ran++, 0)
    assert.isTrue(scheduler.step())
    assert.strictEqual(ran, 1)
    assert.strictEqual(scheduler.steps, 1)
    assert.strictEqual(scheduler.pending, 2)
    assert.strictEqual(scheduler.drain(1), 1, "drain stops at its budget")
    assert.strictEqual(scheduler.drain(10), 1)
    assert.isFalse(scheduler.step(), "nothing left")
    assert.strictEqual(scheduler.steps, 3)
  })

  it("the seed decides the order of ready tasks, and replays it", () => {
    assert.strictEqual(orderOf(42), orderOf(42))
    assert.strictEqual(orderOf("a string seed"), orderOf("a string seed"))
    const orders = new Set([1, 2, 3, 4, 5, 6].map(orderOf))
    assert.isAbove(orders.size, 1)
  })

  it("all dispatchers feed one ready set, and flush runs it to empty", () => {
    const scheduler = SimScheduler.make({ seed: 1 })
    const ran: Array<string> = []
    scheduler.makeDispatcher().scheduleTask(() => ran.push("a"), 0)
    scheduler.makeDispatcher().scheduleTask(() => ran.push("b"), 5)
    assert.strictEqual(scheduler.pending, 2)
    scheduler.makeDispatcher().flush()
    assert.deepStrictEqual([...ran].sort(), ["a", "b"])
    assert.strictEqual(scheduler.pending, 0)
  })

  it("a fiber is preempted after opsBeforeYield operations, so busy fibers interleave", () => {
    const busyPair = Effect.gen(function*() {
      const log: Array<string> = []
      const busy = (name: string) => Effect.forEach(Array.from({ length: 200 }, (_, i) => i), () => Effect.sync(() => log.push(name)))
      const fibers = [yield* Effect.forkChild(busy("a")), yield* Effect.forkChild(busy("b"))]
      yield* Fiber.joinAll(fibers)
      let switches = 0
      for (let i = 1; i < log.length; i++) if (log[i] !== log[i - 1]) switches++
      return switches
    })
    const switchesOf = (opsBeforeYield: number | undefined) => {
      const result = Sim.run(busyPair, { seed: 3, opsBeforeYield })
      assert.isTrue(Exit.isSuccess(result.exit))
      return Exit.isSuccess(result.exit) ? result.exit.value : -1
    }
    assert.strictEqual(switchesOf(undefined), 1, "with the default budget each fiber runs to its end")
    assert.isAbove(switchesOf(16), 4)
  })
})
