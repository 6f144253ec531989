// The shared-memory Layer runs the Transport contract unchanged (skipped, saying why, where the
// addon is not built here).
import { describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { tmpdir } from "node:os"
import { transportContract } from "@strait/transport/test/contract"
import * as Addon from "../src/adapters/Addon.ts"
import * as ShmNet from "../src/adapters/ShmNet.ts"
import { ShmTransport } from "../src/index.ts"

// one turn of the event loop, so socket callbacks run; progress-based, not a timed wait
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
const directory = tmpdir()
const loaded = Addon.addon()

if (typeof loaded === "string") {
  describe("Transport contract: shm", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  transportContract({
    name: "shm",
    layer: ShmTransport.layer.pipe(Layer.orDie, Layer.provide(Layer.succeed(ShmTransport.ShmSettings, {
      capacity: 64 * 1024,
      connectTimeout: "5 seconds",
      acceptBacklog: 1024
    }))),
    address: (n) => `shm://${directory}/strait-shm-${process.pid}-${n}.sock`,
    unreachable: `shm://${directory}/strait-shm-${process.pid}-nobody.sock`,
    rawPipe: (address) =>
      Effect.acquireRelease(
        ShmNet.connect(loaded, address.slice("shm://".length), 64 * 1024),
        (pipe) => pipe.destroy
      ),
    settle: turn
  })
}
