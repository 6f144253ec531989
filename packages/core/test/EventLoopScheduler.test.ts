import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Queue } from "effect"
import * as EventLoopScheduler from "../src/adapters/EventLoopScheduler.ts"

const onLoop = <A>(program: Effect.Effect<A>) => Effect.runPromise(program, { scheduler: EventLoopScheduler.make() })

describe("EventLoopScheduler", () => {
  it("fibers hand messages to each other in order", async () => {
    const received = await onLoop(Effect.gen(function*() {
      const queue = yield* Queue.unbounded<number>()
      const consumer = yield* Effect.forkChild(Effect.forEach([1, 2, 3, 4, 5], () => Queue.take(queue)))
      for (let i = 1; i <= 5; i++) yield* Queue.offer(queue, i)
      return yield* Fiber.join(consumer)
    }))
    expect(received).toEqual([1, 2, 3, 4, 5])
  })

  it("a fiber that never stops yielding does not starve the event loop", async () => {
    let spins = 0
    const reachedLoop = await onLoop(Effect.gen(function*() {
      const spinner = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sync(() => spins++), Effect.yieldNow)))
      // a macrotask callback stands in for I/O: it must get its turn while the spinner runs
      const macrotask = yield* Deferred.make<boolean>()
      setImmediate(() => Deferred.doneUnsafe(macrotask, Effect.succeed(true)))
      const ran = yield* Deferred.await(macrotask)
      yield* Fiber.interrupt(spinner)
      return ran
    }))
    expect(reachedLoop).toBe(true)
    expect(spins).toBeGreaterThan(0)
  })

  it("a fiber woken through a queue by a callback runs before the event loop's next check phase", async () => {
    const order: Array<string> = []
    await onLoop(Effect.gen(function*() {
      const woken = yield* Queue.unbounded<void>()
      const waiter = yield* Effect.forkChild(Effect.andThen(Queue.take(woken), Effect.sync(() => order.push("fiber"))))
      yield* Effect.yieldNow
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => {
          setImmediate(() => {
            setImmediate(() => {
              order.push("next check phase")
              resolve()
            })
            Queue.offerUnsafe(woken, undefined)
          })
        })
      )
      yield* Fiber.join(waiter)
    }))
    expect(order).toEqual(["fiber", "next check phase"])
  })
})
