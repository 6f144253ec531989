// Load reports and standby activation: what a node tells the elasticity controller, and how a warm
// node is brought into service.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Catalog, Elasticity, EmbeddedStore, LoadReports, MetadataStore, NodeRegistration } from "../src/index.ts"

const sample = (extra: Partial<LoadReports.Sample> = {}): LoadReports.Sample => ({
  cpuMicros: 0,
  messages: 0,
  bytes: 0,
  connections: 0,
  popInFlight: 0,
  backlog: 0,
  lagMillis: 0,
  p99Millis: 0,
  ...extra
})

const stored = (role: Elasticity.Role, id: string) =>
  Effect.gen(function*() {
    const store = yield* MetadataStore.MetadataStore
    return Catalog.decode(Elasticity.Load, yield* store.get(Catalog.keys.load(role, id)))
  })

describe("LoadReports", () => {
  it("turns running totals into rates over the time between two samples", () => {
    const load = LoadReports.report(
      { role: "proxy", id: "p1" },
      3000,
      sample({ cpuMicros: 1_500_000, messages: 5000, bytes: 1_000_000, connections: 7, p99Millis: 12 }),
      { at: 1000, sample: sample({ cpuMicros: 500_000, messages: 1000, bytes: 0 }) }
    )
    assert.deepStrictEqual(load, {
      id: "p1", role: "proxy", at: 3000, cpu: 0.5, messagesPerSecond: 2000, bytesPerSecond: 500_000,
      connections: 7, popInFlight: 0, backlog: 0, lagMillis: 0, p99Millis: 12
    })
    // the first sample has nothing to measure a rate against
    assert.strictEqual(LoadReports.report({ role: "proxy", id: "p1" }, 3000, sample({ messages: 5000 }), undefined).messagesPerSecond, 0)
  })

  it.effect("a node publishes its load every interval while it lives; the report goes with it", () =>
    Effect.gen(function*() {
      let messages = 0
      const scope = yield* Scope.make()
      yield* LoadReports.publish({ role: "proxy", id: "p1", sample: Effect.sync(() => sample({ messages: (messages += 300) })) }).pipe(Scope.provide(scope))
      assert.isUndefined(yield* stored("proxy", "p1"))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const load = yield* stored("proxy", "p1")
      assert.deepStrictEqual([load?.at, load?.messagesPerSecond], [2000, 300])
      yield* Scope.close(scope, Exit.void)
      assert.isUndefined(yield* stored("proxy", "p1"))
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a standby node waits for its activation, and one activated before it looked goes at once", () =>
    Effect.gen(function*() {
      const waiting = yield* Effect.forkChild(NodeRegistration.awaitActivation("proxy", "warm-1"))
      yield* TestClock.adjust("5 seconds")
      assert.isUndefined(waiting.pollUnsafe())
      yield* NodeRegistration.activate("proxy", "warm-1")
      yield* Fiber.join(waiting)
      yield* NodeRegistration.awaitActivation("proxy", "warm-1")
      yield* NodeRegistration.deactivate("proxy", "warm-1")
      const again = yield* Effect.forkChild(NodeRegistration.awaitActivation("proxy", "warm-1"))
      yield* TestClock.adjust("5 seconds")
      assert.isUndefined(again.pollUnsafe())
      yield* Fiber.interrupt(again)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))
})
