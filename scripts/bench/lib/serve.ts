// Runs a layer as a bench server process: prints "listening" once it is built, and stops (its
// finalizers run) on SIGTERM.
import { EventLoopScheduler } from "@strait/core"
import { Cause, Effect, Fiber, Layer } from "effect"

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
  fiber.addObserver((exit) => {
    if (exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)) console.error(String(exit.cause))
    process.exit(0)
  })
}
