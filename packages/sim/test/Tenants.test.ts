// Tenant water levels in a simulated cluster: the proxy's quotas keep a noisy tenant from pushing a
// quiet tenant's send p99 over its SLO. The wires carry a bounded number of bytes per millisecond, so
// a flood that gets through to the broker makes everything behind it wait; in simulated time, so the
// latencies are exact and the same every run.
import { assert, describe, it } from "@effect/vitest"
import { Catalog } from "@strait/control"
import { Producer, StraitClient } from "@strait/client"
import type { Quotas } from "@strait/proxy"
import { MemoryTransport, SimNetwork } from "@strait/transport"
import { Clock, Duration, Effect, Exit, Fiber, Layer } from "effect"
import { Cluster, Sim } from "../src/index.ts"

// a tenant's client on the simulated network, sending to its namespace's topic `t`
const tenant = (name: string, namespace: string, endpoints: ReadonlyArray<string>) =>
  Producer.Producer.layer().pipe(
    Layer.provideMerge(Layer.fresh(
      StraitClient.StraitClient.layer({ endpoints, clientId: name, namespace, requestTimeout: Duration.seconds(30) }).pipe(
        Layer.provide(MemoryTransport.layer(name))
      )
    ))
  )

const sloMillis = 50
const noisyBody = "n".repeat(8 * 1024)

interface Outcome {
  /** The quiet tenant's send latencies, in simulated milliseconds, sorted. */
  readonly quiet: ReadonlyArray<number>
  readonly quietFailures: number
  readonly noisyStored: number
  readonly noisyThrottled: number
}

// 10 simulated seconds: the noisy tenant keeps 64 sends of 8 KiB in flight, the quiet one sends 100
// bytes every 20 ms; the wires carry 2,000 bytes a millisecond (2 MB/s)
const run = (quotas: Quotas.QuotaSettings | undefined): Outcome => {
  const quiet: Array<number> = []
  let quietFailures = 0
  let noisyStored = 0
  let noisyThrottled = 0
  const program = Effect.gen(function*() {
    const cluster = yield* Cluster.make({
      brokers: 1,
      proxies: 1,
      ...(quotas === undefined ? {} : { quotas }),
      provision: Effect.gen(function*() {
        yield* Catalog.createTopic({ name: "noisy%t", kind: "NORMAL", queues: 4, flush: "async" })
        yield* Catalog.createTopic({ name: "quiet%t", kind: "NORMAL", queues: 4, flush: "async" })
      })
    })
    // every queue served before traffic starts
    yield* Effect.sleep(Duration.seconds(1))
    const until = (yield* Clock.currentTimeMillis) + 10_000
    const noisy = yield* Effect.forkChild(Effect.gen(function*() {
      const producer = yield* Producer.Producer
      yield* Effect.forEach(Array.from({ length: 64 }), () =>
        Effect.gen(function*() {
          while ((yield* Clock.currentTimeMillis) < until) {
            const sent = yield* Effect.exit(producer.send({ topic: "t", body: noisyBody }))
            if (Exit.isSuccess(sent)) noisyStored++
            else {
              noisyThrottled++
              yield* Effect.sleep(Duration.millis(20))
            }
          }
        }), { concurrency: "unbounded", discard: true })
    }).pipe(Effect.provide(tenant("noisy", "noisy", cluster.endpoints))))
    yield* Effect.gen(function*() {
      const producer = yield* Producer.Producer
      while ((yield* Clock.currentTimeMillis) < until) {
        const started = yield* Clock.currentTimeMillis
        const sent = yield* Effect.exit(producer.send({ topic: "t", body: "q".repeat(100) }))
        if (Exit.isSuccess(sent)) quiet.push((yield* Clock.currentTimeMillis) - started)
        else quietFailures++
        yield* Effect.sleep(Duration.millis(20))
      }
    }).pipe(Effect.provide(tenant("quiet", "quiet", cluster.endpoints)))
    yield* Fiber.interrupt(noisy)
  }).pipe(Effect.scoped, Effect.provide(Layer.fresh(SimNetwork.SimNetwork.layer({ latency: Duration.millis(1), jitter: Duration.zero, bandwidth: 2_000 }))))
  const result = Sim.run(program, { seed: 1, maxSteps: 200_000_000 })
  if (Exit.isFailure(result.exit)) throw new Error(`the run failed: ${String(result.exit.cause)}`)
  return { quiet: quiet.sort((a, b) => a - b), quietFailures, noisyStored, noisyThrottled }
}

const p99 = (sorted: ReadonlyArray<number>) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.POSITIVE_INFINITY

describe("tenant water levels", () => {
  it("without quotas a noisy tenant's flood pushes a quiet tenant's send p99 far over its SLO; with a quota on the noisy namespace the quiet one stays under it", () => {
    const unlimited = run(undefined)
    assert.isAbove(p99(unlimited.quiet), sloMillis * 4, `quiet p99 without quotas: ${p99(unlimited.quiet)} ms`)
    assert.strictEqual(unlimited.noisyThrottled, 0)

    // the noisy tenant may store 50 messages a second (400 KB/s, a fifth of the wire); its client
    // batches its 64 sends in flight into one request, of which the proxy takes what the quota allows
    const limited = run({ namespaces: { noisy: { messagesPerSecond: 50 } } })
    assert.isBelow(p99(limited.quiet), sloMillis, `quiet p99 with the quota: ${p99(limited.quiet)} ms`)
    assert.strictEqual(limited.quietFailures, 0)
    assert.isAbove(limited.quiet.length, 300)
    // the noisy tenant was throttled, not stopped: about its rate over the 10 s
    assert.isAbove(limited.noisyThrottled, 0)
    assert.isAtLeast(limited.noisyStored, 450)
    assert.isAtMost(limited.noisyStored, 560)
  }, 120_000)
})
