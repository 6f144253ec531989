// A proxy alone (RocketMQ gRPC) in front of a broker over TCP, for the rocketmq bench: in its own
// process so its CPU is measured apart. Usage: node proxyServer.ts BROKER_PORT PORT. Prints
// "listening" once it serves; stops on SIGTERM.
import { EventLoopScheduler } from "@strait/core"
import { Node } from "@strait/node"
import { Cause, Effect, Fiber, Layer } from "effect"

const [brokerPort, port] = process.argv.slice(2)
const fiber = Effect.runFork(
  Effect.scoped(Effect.gen(function*() {
    yield* Layer.build(Node.proxyOnly({ host: "127.0.0.1", port: Number(port), broker: `tcp://127.0.0.1:${brokerPort}`, tuning: { drainTimeoutMillis: 0 } }))
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
