// Faults of the simulated cluster that overlap: each ends on its own and leaves the others in force.
import { assert, describe, it } from "@effect/vitest"
import { Transport } from "@strait/core"
import { MemoryTransport, SimNetwork } from "@strait/transport"
import { Duration, Effect, Exit, Layer } from "effect"
import { Cluster, Sim } from "../src/index.ts"

describe("overlapping faults in a simulated cluster", () => {
  it("a pause that ends while the node is isolated leaves it isolated; the isolation's end lets it be reached", () => {
    const program = Effect.gen(function*() {
      const cluster = yield* Cluster.make({ brokers: 1, proxies: 1, nodeClocks: true })
      cluster.addClient("client")
      yield* Effect.sleep(Duration.seconds(1))
      const transport = yield* Effect.service(Transport.Transport)
      // a connection attempt to the proxy that gives up after a second (a partition stalls, then refuses)
      const reachable = Effect.scoped(transport.connect(cluster.endpoints[0]!)).pipe(
        Effect.timeout(Duration.seconds(1)),
        Effect.exit,
        Effect.map(Exit.isSuccess)
      )
      const before = yield* reachable
      yield* cluster.isolate("proxy-0", true)
      yield* cluster.pause("proxy-0", true)
      yield* cluster.pause("proxy-0", false)
      const afterPause = yield* reachable
      yield* cluster.isolate("proxy-0", false)
      const afterIsolation = yield* reachable
      return { before, afterPause, afterIsolation }
    }).pipe(
      Effect.provide(MemoryTransport.layer("client")),
      Effect.scoped,
      Effect.provide(Layer.fresh(SimNetwork.SimNetwork.layer({ latency: Duration.millis(1) })))
    )
    const result = Sim.run(program, { seed: 1, maxVirtualTime: "5 minutes" })
    assert.deepStrictEqual(result.exit, Exit.succeed({ before: true, afterPause: false, afterIsolation: true }))
  })
})
