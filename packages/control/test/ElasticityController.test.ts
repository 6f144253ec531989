// The elasticity controller: one leader decides from the nodes' load reports and scales through the
// orchestrator; each decision is an event with what came of it.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Catalog, Elasticity, ElasticityController, EmbeddedStore, MetadataStore, Orchestrator, PartitionLeases } from "../src/index.ts"

// an orchestrator that runs nodes in name only; `stopGate` holds every scale-in until it opens
const recording = (options: { readonly proxies: number; readonly stopGate?: Deferred.Deferred<void>; readonly failOut?: boolean }) => {
  const running: Array<string> = Array.from({ length: options.proxies }, (_, i) => `proxy-${i + 1}`)
  let started = options.proxies
  const calls: Array<string> = []
  const service = Orchestrator.Orchestrator.of({
    describe: "names",
    nodes: (role) => Effect.succeed(role === "proxy" ? [...running] : []),
    scaleOut: (role, count) =>
      Effect.suspend(() => {
        calls.push(`out ${role} ${count}`)
        if (options.failOut === true) return Effect.fail(new Orchestrator.OrchestratorFailed({ reason: "no room for another process" }))
        const ids = Array.from({ length: count }, () => `proxy-${++started}`)
        running.push(...ids)
        return Effect.succeed(ids)
      }),
    scaleIn: (role, ids) =>
      Effect.gen(function*() {
        calls.push(`in ${role} ${ids.join(",")}`)
        for (const id of ids) running.splice(running.indexOf(id), 1)
        if (options.stopGate !== undefined) yield* Deferred.await(options.stopGate)
      })
  })
  return { service, running, calls }
}

const policy: Partial<Elasticity.Policy> = {
  proxy: {
    min: 1,
    max: 8,
    target: 0.5,
    capacity: { cpu: 1 },
    model: { _tag: "PayAsYouGo" },
    scaleOutCooldown: "2 seconds",
    scaleInCooldown: "10 seconds"
  }
}

// every running proxy reports `cpu`, measured now
const report = (ids: ReadonlyArray<string>, cpu: (id: string) => number) =>
  Effect.gen(function*() {
    const store = yield* MetadataStore.MetadataStore
    const at = yield* Clock.currentTimeMillis
    for (const id of ids) {
      yield* store.put(Catalog.keys.load("proxy", id), Catalog.encode({
        id, role: "proxy", at, cpu: cpu(id), messagesPerSecond: 0, bytesPerSecond: 0, connections: 0, popInFlight: 0, backlog: 0, lagMillis: 0, p99Millis: 1
      } satisfies Elasticity.Load))
    }
  })

const second = TestClock.adjust("1 second")

describe("ElasticityController", () => {
  it.effect("the leader scales busy proxies out in one step and idle ones in, least loaded first, and stores each decision with its outcome", () =>
    Effect.gen(function*() {
      const orchestrator = recording({ proxies: 2 })
      const controller = yield* ElasticityController.run({ id: "c1", policy }).pipe(Effect.provideService(Orchestrator.Orchestrator, orchestrator.service))
      yield* report(orchestrator.running, () => 0.9)
      yield* second
      assert.isTrue(yield* controller.leading)
      // demand 1.8 at a target of 0.5: 4 proxies
      assert.deepStrictEqual(orchestrator.calls, ["out proxy 2"])
      assert.deepStrictEqual(orchestrator.running, ["proxy-1", "proxy-2", "proxy-3", "proxy-4"])

      // the load falls; proxy-3 carries least and proxy-4 has not reported: proxy-4 goes first
      yield* report(["proxy-1", "proxy-2", "proxy-3"], (id) => id === "proxy-3" ? 0.05 : 0.2)
      yield* second
      // not before the cooldown after the last change
      assert.deepStrictEqual(orchestrator.calls, ["out proxy 2"])
      for (let i = 0; i < 10; i++) {
        yield* report(orchestrator.running.filter((id) => id !== "proxy-4"), (id) => id === "proxy-3" ? 0.05 : 0.2)
        yield* second
      }
      assert.deepStrictEqual(orchestrator.calls, ["out proxy 2", "in proxy proxy-4"])

      const stored = yield* ElasticityController.storedEvents
      assert.deepStrictEqual(stored.map((event) => [event.from, event.to, event.outcome, event.ok]), [
        [2, 4, "started proxy-3, proxy-4", true],
        [4, 3, "stopped proxy-4", true]
      ])
      assert.include(stored[0]!.reason, "mean water level 0.9 against a target of 0.5")
      assert.deepStrictEqual(yield* controller.events, stored)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("only the leader decides; when its scope closes another instance takes over", () =>
    Effect.gen(function*() {
      const orchestrator = recording({ proxies: 1 })
      const provide = Effect.provideService(Orchestrator.Orchestrator, orchestrator.service)
      const firstScope = yield* Scope.make()
      const first = yield* ElasticityController.run({ id: "c1", policy }).pipe(provide, Scope.provide(firstScope))
      yield* second
      const standby = yield* ElasticityController.run({ id: "c2", policy }).pipe(provide)
      yield* second
      assert.isTrue(yield* first.leading)
      assert.isFalse(yield* standby.leading)
      yield* Scope.close(firstScope, Exit.void)
      assert.isFalse(yield* first.leading)
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(yield* standby.leading)
      yield* report(orchestrator.running, () => 1)
      yield* second
      assert.deepStrictEqual(orchestrator.calls, ["out proxy 1"])
      assert.strictEqual((yield* standby.events).length, 1)
      assert.strictEqual((yield* first.events).length, 0)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a role whose scale-in still drains is not decided again; stale reports do not count", () =>
    Effect.gen(function*() {
      const stopGate = yield* Deferred.make<void>()
      const orchestrator = recording({ proxies: 3, stopGate })
      yield* ElasticityController.run({ id: "c1", policy: { proxy: { ...policy.proxy!, scaleInCooldown: "1 second", maxStepIn: 1 } } }).pipe(
        Effect.provideService(Orchestrator.Orchestrator, orchestrator.service)
      )
      yield* report(orchestrator.running, () => 0)
      yield* second
      assert.deepStrictEqual(orchestrator.calls, ["in proxy proxy-3"])
      for (let i = 0; i < 5; i++) {
        yield* report(orchestrator.running, () => 0)
        yield* second
      }
      assert.deepStrictEqual(orchestrator.calls, ["in proxy proxy-3"])
      // the stop ends once the last reports are 6 s old: past the 5 s they count for, so nothing is
      // decided from them
      yield* TestClock.adjust("6 seconds")
      yield* Deferred.succeed(stopGate, undefined)
      yield* second
      assert.deepStrictEqual(orchestrator.calls, ["in proxy proxy-3"])
      yield* report(orchestrator.running, () => 0)
      yield* second
      assert.deepStrictEqual(orchestrator.calls, ["in proxy proxy-3", "in proxy proxy-2"])
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("an orchestrator that fails is an event that says why, and the decision comes again after the cooldown", () =>
    Effect.gen(function*() {
      const orchestrator = recording({ proxies: 1, failOut: true })
      const controller = yield* ElasticityController.run({ id: "c1", policy }).pipe(Effect.provideService(Orchestrator.Orchestrator, orchestrator.service))
      yield* report(orchestrator.running, () => 1)
      yield* second
      const [failed] = yield* controller.events
      assert.deepStrictEqual([failed?.ok, failed?.outcome], [false, "failed: no room for another process"])
      yield* report(orchestrator.running, () => 1)
      yield* second
      assert.strictEqual(orchestrator.calls.length, 1)
      yield* report(orchestrator.running, () => 1)
      yield* second
      assert.strictEqual(orchestrator.calls.length, 2)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a policy that does not hold together stops the controller from starting", () =>
    Effect.gen(function*() {
      const orchestrator = recording({ proxies: 1 })
      const refused = yield* Effect.flip(ElasticityController.run({ id: "c1", policy: { broker: { ...policy.proxy!, min: 5, max: 2 } } }).pipe(
        Effect.provideService(Orchestrator.Orchestrator, orchestrator.service)
      ))
      assert.strictEqual(refused._tag, "InvalidPolicy")
      assert.include(refused.message, "broker")
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  describe("brokers", () => {
    // brokers as their partition leases (real ones, in the shared store); each started by the
    // orchestrator reports the backlog `backlog` gives it
    const brokerFleet = (initial: number) =>
      Effect.gen(function*() {
        const store = yield* MetadataStore.MetadataStore
        const running = new Map<string, Scope.Closeable>()
        const backlog = new Map<string, number>()
        const calls: Array<string> = []
        let started = 0
        const startOne = Effect.gen(function*() {
          const id = `broker-${started++}`
          const scope = yield* Scope.make()
          yield* PartitionLeases.make({ brokerId: id, address: `mem://${id}`, ttl: "3 seconds", reconcileInterval: "1 second" }).pipe(
            Effect.provideService(MetadataStore.MetadataStore, store),
            Scope.provide(scope)
          )
          running.set(id, scope)
          return id
        })
        for (let i = 0; i < initial; i++) yield* startOne
        const service = Orchestrator.Orchestrator.of({
          describe: "leases",
          nodes: (role) => Effect.succeed(role === "broker" ? [...running.keys()] : []),
          scaleOut: (role, count) =>
            Effect.gen(function*() {
              calls.push(`out ${role} ${count}`)
              const ids: Array<string> = []
              for (let i = 0; i < count; i++) ids.push(yield* startOne)
              return ids
            }).pipe(Effect.mapError((error) => new Orchestrator.OrchestratorFailed({ reason: error.message }))),
          scaleIn: (role, ids) =>
            Effect.gen(function*() {
              calls.push(`in ${role} ${ids.join(",")}`)
              for (const id of ids) {
                yield* Scope.close(running.get(id)!, Exit.void)
                running.delete(id)
              }
            })
        })
        const reportAll = (messagesPerSecond: number) =>
          Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            for (const id of running.keys()) {
              yield* store.put(Catalog.keys.load("broker", id), Catalog.encode({
                id, role: "broker", at, cpu: 0, messagesPerSecond, bytesPerSecond: 0, connections: 0, popInFlight: 0,
                backlog: backlog.get(id) ?? 0, lagMillis: 0, p99Millis: 0, held: 0
              } satisfies Elasticity.Load))
            }
          })
        return { service, running, backlog, calls, reportAll }
      })

    const brokerPolicy: Partial<Elasticity.Policy> = {
      broker: { ...policy.proxy!, min: 2, max: 4, capacity: { messagesPerSecond: 1_000 }, scaleInCooldown: "5 seconds", maxStepIn: 1 }
    }
    const homes = Effect.map(Catalog.epochs, (epochs) => {
      const counts: Record<string, number> = {}
      for (const record of epochs.values()) counts[record.home] = (counts[record.home] ?? 0) + 1
      return counts
    })
    const owners = Effect.map(Catalog.owners, (owners) => {
      const counts: Record<string, number> = {}
      for (const record of owners.values()) counts[record.broker] = (counts[record.broker] ?? 0) + 1
      return counts
    })

    it.effect("a new broker takes its share of every topic's writes; a leaving one stops only once it owns nothing and holds nothing", () =>
      Effect.gen(function*() {
        const fleet = yield* brokerFleet(2)
        yield* Catalog.createTopic({ name: "orders", kind: "NORMAL", queues: 6, flush: "async" })
        yield* second
        const controller = yield* ElasticityController.run({ id: "c1", policy: brokerPolicy }).pipe(Effect.provideService(Orchestrator.Orchestrator, fleet.service))
        // busy: 2 brokers at 600 msg/s each against 500 → 3 brokers
        yield* fleet.reportAll(600)
        yield* second
        assert.deepStrictEqual(fleet.calls, ["out broker 1"])
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(yield* homes, { "broker-0": 2, "broker-1": 2, "broker-2": 2 })
        assert.deepStrictEqual(yield* owners, { "broker-0": 2, "broker-1": 2, "broker-2": 2 })
        const [out] = yield* controller.events
        assert.strictEqual(out?.outcome, "started broker-2; 2 queues moved to take writes there")

        // quiet, but broker-2 (the highest) still holds 5 messages its consumers have not taken
        fleet.backlog.set("broker-2", 5)
        for (let i = 0; i < 8; i++) {
          yield* fleet.reportAll(10)
          yield* second
        }
        assert.deepStrictEqual(fleet.calls, ["out broker 1"])
        assert.deepStrictEqual(yield* homes, { "broker-0": 3, "broker-1": 3 })
        assert.deepStrictEqual(yield* owners, { "broker-0": 3, "broker-1": 3 })
        assert.deepStrictEqual([...(yield* Catalog.retiring)], ["broker-2"])
        // consumed: it goes, and is no longer marked leaving
        fleet.backlog.set("broker-2", 0)
        yield* fleet.reportAll(10)
        yield* second
        yield* second
        assert.deepStrictEqual(fleet.calls, ["out broker 1", "in broker broker-2"])
        assert.deepStrictEqual([...(yield* Catalog.retiring)], [])
        const stored = yield* ElasticityController.storedEvents
        assert.deepStrictEqual(stored.map((event) => [event.from, event.to, event.ok]), [[2, 3, true], [3, 2, true]])
        assert.include(stored[1]!.outcome, "stopped broker-2 once drained")
      }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

    it.effect("a leaving broker not drained in time stays, takes writes again, and the decision fails with what it holds", () =>
      Effect.gen(function*() {
        const fleet = yield* brokerFleet(3)
        yield* Catalog.createTopic({ name: "orders", kind: "NORMAL", queues: 6, flush: "async" })
        yield* second
        // the next try comes only after the 30 s cooldown
        const policy: Partial<Elasticity.Policy> = { broker: { ...brokerPolicy.broker!, scaleInCooldown: Duration.seconds(30) } }
        const controller = yield* ElasticityController.run({ id: "c1", policy, retireTimeout: "5 seconds" }).pipe(
          Effect.provideService(Orchestrator.Orchestrator, fleet.service)
        )
        fleet.backlog.set("broker-2", 7)
        for (let i = 0; i < 9; i++) {
          yield* fleet.reportAll(10)
          yield* second
        }
        const [failed] = yield* controller.events
        assert.strictEqual(failed?.ok, false)
        assert.include(failed?.outcome ?? "", "broker-2: 7 messages unconsumed")
        assert.deepStrictEqual(fleet.calls, [])
        assert.deepStrictEqual([...(yield* Catalog.retiring)], [])
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* owners)["broker-2"], 2)
      }).pipe(Effect.provide(EmbeddedStore.layerMemory)))
  })
})
