import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Latch, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Catalog, EmbeddedStore, MetadataStore, PartitionLeases } from "../src/index.ts"

type Store = MetadataStore.MetadataStore["Service"]

// the store as a broker sees it; `pause` stalls every call the broker makes (a process stopped by
// SIGSTOP, a long GC pause, a partition from the store), `resume` lets them through again
const pausable = (store: Store) => {
  const gate = Latch.makeUnsafe(true)
  const gated = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.andThen(gate.await, effect)
  const view: Store = {
    describe: store.describe,
    get: (key) => gated(store.get(key)),
    list: (prefix) => gated(store.list(prefix)),
    put: (key, value, options) => gated(store.put(key, value, options)),
    delete: (key) => gated(store.delete(key)),
    transact: (transaction) => gated(store.transact(transaction)),
    grantLease: (ttl) => gated(store.grantLease(ttl)),
    keepAlive: (lease) => gated(store.keepAlive(lease)),
    revoke: (lease) => gated(store.revoke(lease)),
    watch: (prefix) => gated(store.watch(prefix))
  }
  return { view, pause: gate.close, resume: gate.open }
}

const start = (id: string, store: Store) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const leases = yield* PartitionLeases.make({ brokerId: id, address: `mem://${id}`, ttl: "3 seconds", reconcileInterval: "1 second" }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, store),
      Scope.provide(scope)
    )
    return { leases, stop: Scope.close(scope, Exit.void) }
  })

const heldKeys = (leases: PartitionLeases.PartitionLeases) =>
  Effect.map(leases.held, (queues) => queues.map((queue) => `${Catalog.queueKey(queue.topic, queue.queueId)}@${queue.epoch}`).sort())

const createOrders = Catalog.createTopic({ name: "orders", kind: "NORMAL", queues: 8, flush: "async" })

// brokers a and b, then the topic: each claims its share
const twoBrokers = (store: Store, a: Store = store) =>
  Effect.gen(function*() {
    const first = yield* start("a", a)
    const second = yield* start("b", store)
    yield* createOrders
    yield* first.leases.reconcile
    yield* second.leases.reconcile
    return { a: first, b: second }
  })

const allQueues = Array.from({ length: 8 }, (_, q) => `orders/${q}`)
const queuesOf = (keys: ReadonlyArray<string>) => keys.map((key) => key.split("@")[0]!)

describe("PartitionLeases", () => {
  it.effect("live brokers split a topic's queues: each queue is held by exactly one, at epoch 1", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoBrokers(yield* MetadataStore.MetadataStore)
      const heldByA = yield* heldKeys(a.leases)
      const heldByB = yield* heldKeys(b.leases)
      expect([...queuesOf(heldByA), ...queuesOf(heldByB)].sort()).toEqual(allQueues)
      expect(heldByA.length).toBeGreaterThan(0)
      expect(heldByB.length).toBeGreaterThan(0)
      expect([...heldByA, ...heldByB].every((key) => key.endsWith("@1"))).toBe(true)
      // the store agrees with what each broker believes
      const owners = yield* Catalog.owners
      for (const key of queuesOf(heldByA)) expect(owners.get(key)?.broker).toBe("a")
      for (const key of queuesOf(heldByB)) expect(owners.get(key)?.broker).toBe("b")
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a paused broker whose lease expired cannot write when it wakes; its queues move at a higher epoch and come back at a higher one still", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const paused = pausable(store)
      const { a, b } = yield* twoBrokers(store, paused.view)
      const mine = queuesOf(yield* heldKeys(a.leases))
      const [topic, queueId] = [mine[0]!.split("/")[0]!, Number(mine[0]!.split("/")[1])]
      expect(yield* a.leases.guard(topic, queueId)).toBe(1)

      yield* paused.pause
      yield* TestClock.adjust("4 seconds")
      // the store let a's lease go; b serves a's queues now, each at epoch 2
      yield* b.leases.reconcile
      const taken = yield* heldKeys(b.leases)
      for (const key of mine) expect(taken).toContain(`${key}@2`)
      // a wakes up: it still believes it holds its queues, but will not write them
      const refused = yield* Effect.flip(a.leases.guard(topic, queueId))
      expect(refused).toBeInstanceOf(PartitionLeases.NotQueueOwner)
      expect(a.leases.writable("orders", yield* Clock.currentTimeMillis)).toEqual([])

      yield* paused.resume
      // a's next keep-alive learns the lease is gone: it drops everything and registers again; b sees
      // the home of those queues alive and hands them back; a claims them
      yield* TestClock.adjust("1 second")
      yield* b.leases.reconcile
      yield* a.leases.reconcile
      expect(yield* heldKeys(a.leases)).toEqual(mine.map((key) => `${key}@3`))
      expect(queuesOf(yield* heldKeys(b.leases)).some((key) => mine.includes(key))).toBe(false)
      expect(yield* a.leases.guard(topic, queueId)).toBe(3)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a broker that stops revokes its lease: its queues move at once and come back when it restarts", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const { a, b } = yield* twoBrokers(store)
      const mine = queuesOf(yield* heldKeys(a.leases))
      yield* a.stop
      yield* b.leases.reconcile
      expect(queuesOf(yield* heldKeys(b.leases)).sort()).toEqual(allQueues)
      const again = yield* start("a", store)
      yield* b.leases.reconcile
      yield* again.leases.reconcile
      expect(queuesOf(yield* heldKeys(again.leases))).toEqual(mine)
      expect((yield* heldKeys(again.leases)).every((key) => key.endsWith("@3"))).toBe(true)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a killed broker's restart takes over its earlier registration at once instead of waiting for the old lease", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const paused = pausable(store)
      // the first run is never stopped: it is as good as killed once its calls stall
      const first = yield* start("a", paused.view)
      yield* createOrders
      yield* first.leases.reconcile
      yield* paused.pause
      const second = yield* start("a", store)
      yield* second.leases.reconcile
      expect(queuesOf(yield* heldKeys(second.leases)).sort()).toEqual(allQueues)
      expect((yield* heldKeys(second.leases)).every((key) => key.endsWith("@2"))).toBe(true)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("deleting a topic lets its queues go", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const a = yield* start("a", store)
      yield* createOrders
      yield* a.leases.reconcile
      expect((yield* a.leases.held).length).toBe(8)
      expect(yield* Catalog.deleteTopic("orders")).toBe(true)
      yield* a.leases.reconcile
      expect(yield* a.leases.held).toEqual([])
      expect((yield* Catalog.owners).size).toBe(0)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it("rendezvous spreads queues over brokers and moves only the dead broker's queues", () => {
    const brokers = ["a", "b", "c"]
    const keys = Array.from({ length: 300 }, (_, q) => `t/${q}`)
    const before = keys.map((key) => PartitionLeases.rendezvous(key, brokers))
    for (const broker of brokers) expect(before.filter((owner) => owner === broker).length).toBeGreaterThan(60)
    const after = keys.map((key) => PartitionLeases.rendezvous(key, ["a", "c"]))
    keys.forEach((_, i) => {
      if (before[i] !== "b") expect(after[i]).toBe(before[i])
    })
  })
})
