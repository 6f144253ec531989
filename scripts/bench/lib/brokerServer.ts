// A broker serving its data-plane protocol on TCP, for the broker bench. It runs as its own process
// so its CPU is measured apart from the client's. Usage: node brokerServer.ts DIRECTORY PORT.
// Prints "listening" once it serves; stops on SIGTERM.
import { Broker, Server } from "@strait/broker"
import { EventLoopScheduler } from "@strait/core"
import { RealDisk } from "@strait/storage"
import { TcpTransport } from "@strait/transport"
import { Cause, Effect, Fiber, Layer } from "effect"

const [directory, port] = process.argv.slice(2)
const node = Server.layer(`tcp://127.0.0.1:${port}`).pipe(
  Layer.provide(Broker.Broker.layer({ directory: directory! })),
  Layer.provide(TcpTransport.layer),
  Layer.provide(RealDisk.layer)
)
const fiber = Effect.runFork(
  Effect.scoped(Effect.gen(function*() {
    yield* Layer.build(node)
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
