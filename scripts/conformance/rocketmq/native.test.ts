// Conformance of Strait's own client (@strait/client) over TCP against real node processes: `strait
// dev`, and a cluster whose proxies restart in turn (GOAWAY) under load without an application error.
import { Consumer, Producer, StraitClient } from "@strait/client"
import { TcpTransport } from "@strait/transport"
import { Effect, Fiber, Layer, Ref, Schedule } from "effect"
import { afterAll, describe, expect, test } from "vitest"
import { eventually, type RunningNode, startCluster, startNode } from "./harness.ts"

const nodes: Array<RunningNode> = []
afterAll(async () => {
  for (const code of await Promise.all(nodes.map((node) => node.stop("SIGTERM")))) expect(code).toBe(0)
}, 60_000)

// looks at `ref` every 20 ms until `done` holds, failing after `timeout`
const until = <A>(ref: Ref.Ref<A>, done: (value: A) => boolean, timeout: `${number} seconds`) =>
  Effect.repeat(Ref.get(ref), { until: done, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout(timeout))

const nativeOf = (output: string) => /native protocol on (tcp:\/\/[\d.]+:\d+)/.exec(output)![1]!

const clientLayer = (endpoints: ReadonlyArray<string>) =>
  Producer.Producer.layer().pipe(
    Layer.provideMerge(StraitClient.StraitClient.layer({ endpoints, requestTimeout: "20 seconds" })),
    Layer.provide(TcpTransport.layer)
  )

describe.concurrent("the Effect-native client", () => {
  test("31. a producer and a consumer of @strait/client over TCP against strait dev: every message sent is handled once", async () => {
    const node = await startNode({ topics: [{ name: "native", kind: "NORMAL", queues: 2 }] })
    nodes.push(node)
    const handled = await Effect.runPromise(Effect.gen(function*() {
      const producer = yield* Producer.Producer
      yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => `n${i}`), (body) => producer.send({ topic: "native", body }), { concurrency: 5 })
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const consumer = yield* Effect.forkChild(Consumer.run({ group: "g-native", topic: "native", pollTime: "500 millis" }, ({ message }) =>
        Ref.update(seen, (all) => [...all, new TextDecoder().decode(message.body)])))
      yield* until(seen, (all) => all.length >= 20, "20 seconds")
      yield* Fiber.interrupt(consumer)
      return yield* Ref.get(seen)
    }).pipe(Effect.provide(clientLayer([nativeOf(node.output())])), Effect.scoped))
    expect([...handled].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`).sort())
  }, 60_000)

  test("32. every proxy of a cluster restarted in turn under a native producer and consumer: no application error, nothing lost", async () => {
    const cluster = await startCluster({ brokers: 1, proxies: 2, config: { tuning: { drainTimeoutMillis: 2000 } } })
    try {
      await cluster.admin("topic", "create", "native-rolling", "--queues", "2", "--flush", "sync")
      await eventually(async () => /queues \(2, 0 unserved\)/.test(await cluster.admin("status")), 20_000)
      const endpoints = cluster.nativeEndpoints
      const outcome = await Effect.runPromise(Effect.gen(function*() {
        const producer = yield* Producer.Producer
        const acknowledged = yield* Ref.make<ReadonlyArray<string>>([])
        const failures = yield* Ref.make<ReadonlyArray<string>>([])
        const consumed = yield* Ref.make<ReadonlySet<string>>(new Set())
        const sending = yield* Effect.forkChild(Effect.forever(Effect.gen(function*() {
          const body = `r${(yield* Ref.get(acknowledged)).length + (yield* Ref.get(failures)).length}`
          yield* producer.send({ topic: "native-rolling", body }).pipe(
            Effect.andThen(Ref.update(acknowledged, (all) => [...all, body])),
            Effect.catch((error) => Ref.update(failures, (all) => [...all, `${error._tag}: ${error.reason}`]))
          )
          yield* Effect.sleep("10 millis")
        })))
        const consuming = yield* Effect.forkChild(Consumer.run({ group: "g-native-rolling", topic: "native-rolling", pollTime: "500 millis" }, ({ message }) =>
          Ref.update(consumed, (all) => new Set([...all, new TextDecoder().decode(message.body)]))))
        const sent = (n: number) => until(acknowledged, (all) => all.length >= n, "30 seconds")
        yield* sent(30)
        for (const proxy of cluster.proxies) {
          const before = (yield* Ref.get(acknowledged)).length
          yield* Effect.promise(() => proxy.stop())
          yield* sent(before + 30)
          yield* Effect.promise(() => proxy.restart())
        }
        yield* sent((yield* Ref.get(acknowledged)).length + 30)
        yield* Fiber.interrupt(sending)
        const all = yield* Ref.get(acknowledged)
        yield* until(consumed, (seen) => all.every((body) => seen.has(body)), "30 seconds")
        yield* Fiber.interrupt(consuming)
        return { failures: yield* Ref.get(failures), acknowledged: all.length }
      }).pipe(Effect.provide(clientLayer(endpoints)), Effect.scoped))
      expect(outcome.failures).toEqual([])
      expect(outcome.acknowledged).toBeGreaterThanOrEqual(120)
    } finally {
      await cluster.stop()
    }
  }, 180_000)
})
