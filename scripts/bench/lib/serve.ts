// Runs a layer as a bench server process: prints "listening" once it is built, and stops (its
// finalizers run) on SIGTERM.
import { EventLoopScheduler } from "@strait/core"
import { Cause, Effect, Fiber, Layer } from "effect"
import * as ShmStats from "@strait/transport-native/adapters/ShmNet"

export const serveUntilTerminated = <A, E>(layer: Layer.Layer<A, E>) => {
  const fiber = Effect.runFork(
    Effect.scoped(Effect.gen(function*() {
      yield* Layer.build(layer)
      console.log("listening")
      return yield* Effect.never
    })),
    { scheduler: EventLoopScheduler.make() }
  )
  process.on("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
  // STRAIT_SHM_STATS: what the process's shared-memory links did, on its way out
  if (process.env.STRAIT_SHM_STATS !== undefined) {
    fiber.addObserver(() => console.error(`${process.argv[1]}: shared memory ${JSON.stringify(ShmStats.stats)}`))
  }
  fiber.addObserver((exit) => {
    if (exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)) console.error(String(exit.cause))
    process.exit(0)
  })
}
