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

// a FIFO topic of one queue, served by a; b starts after it
const fifoOnA = Effect.gen(function*() {
  const store = yield* MetadataStore.MetadataStore
  const a = yield* start("a", store)
  yield* Catalog.createTopic({ name: "fifo", kind: "FIFO", queues: 1, flush: "async" })
  yield* a.leases.reconcile
  const b = yield* start("b", store)
  return { a, b, store }
})

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
  it.effect("a broker registers where proxies reach it: its address, and its shared-memory and RDMA listeners when it serves them", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      yield* PartitionLeases.make({
        brokerId: "native",
        address: "tcp://10.0.0.1:7001",
        shm: { address: "shm:///data/broker/shm.sock", host: "boot-1/net-1" },
        rdma: "rdma://10.0.0.1:7002"
      }).pipe(Scope.provide(scope))
      yield* PartitionLeases.make({ brokerId: "plain", address: "tcp://10.0.0.2:7001" }).pipe(Scope.provide(scope))
      const brokers = new Map((yield* Catalog.brokers).map((broker) => [broker.id, broker]))
      expect(brokers.get("native")).toEqual({
        id: "native",
        address: "tcp://10.0.0.1:7001",
        shm: { address: "shm:///data/broker/shm.sock", host: "boot-1/net-1" },
        rdma: "rdma://10.0.0.1:7002"
      })
      expect(brokers.get("plain")).toEqual({ id: "plain", address: "tcp://10.0.0.2:7001" })
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

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

  it.effect("a queue given a new home moves there at the next epoch; the old home keeps its other queues", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoBrokers(yield* MetadataStore.MetadataStore)
      const moved = queuesOf(yield* heldKeys(a.leases))[0]!
      const queueId = Number(moved.split("/")[1])
      expect(yield* Catalog.moveQueue("orders", queueId, "b")).toBe(true)
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      expect(queuesOf(yield* heldKeys(a.leases))).not.toContain(moved)
      expect(yield* heldKeys(b.leases)).toContain(`${moved}@2`)
      expect((yield* Catalog.epochs).get(moved)).toEqual({ epoch: 2, home: "b" })
      expect((yield* heldKeys(a.leases)).length).toBeGreaterThan(0)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a leaving broker hands back every queue it holds and takes none, not even a dead broker's", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const { a, b } = yield* twoBrokers(store)
      const c = yield* start("c", store)
      yield* Catalog.setRetiring("b", true)
      yield* b.leases.reconcile
      expect(yield* b.leases.held).toEqual([])
      expect(yield* b.leases.retiring).toBe(true)
      yield* a.leases.reconcile
      yield* c.leases.reconcile
      yield* a.stop
      yield* b.leases.reconcile
      yield* c.leases.reconcile
      // with a gone, c serves everything; b, still live but leaving, nothing
      expect(queuesOf(yield* heldKeys(c.leases)).sort()).toEqual(allQueues)
      expect(yield* b.leases.held).toEqual([])
      // staying after all, b takes its own queues back
      yield* Catalog.setRetiring("b", false)
      yield* c.leases.reconcile
      yield* b.leases.reconcile
      expect((yield* b.leases.held).length).toBeGreaterThan(0)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a FIFO queue given up with messages unconsumed leaves a handoff: the new owner holds those message groups back until the old owner has none left", () =>
    Effect.gen(function*() {
      const { a, b } = yield* fifoOnA
      // what a still holds of fifo/0: consumer group g has m1 and m2 to consume, h nothing
      let pending: Record<string, ReadonlyArray<string>> = { g: ["m2", "m1"], h: [] }
      let changes = 0
      a.leases.attach({ pending: () => Effect.succeed(pending), handoffsChanged: () => undefined })
      b.leases.attach({ pending: () => Effect.succeed({}), handoffsChanged: () => void changes++ })
      yield* Catalog.moveQueue("fifo", 0, "b")
      yield* a.leases.reconcile
      expect((yield* Catalog.handoffs).map(({ broker, epoch, pending, queueId, topic }) => ({ broker, epoch, pending, queueId, topic }))).toEqual([
        { topic: "fifo", queueId: 0, broker: "a", epoch: 1, pending: { g: ["m1", "m2"] } }
      ])
      yield* b.leases.reconcile
      expect(yield* heldKeys(b.leases)).toEqual(["fifo/0@2"])
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(true)
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m3")).toBe(false)
      expect(b.leases.heldElsewhere("h", "fifo", 0, "m1")).toBe(false)
      // a's own record does not hold a back
      expect(a.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(false)
      expect(changes).toBe(1)
      // g consumes m1 at a: the record shrinks, and b lets m1 go
      pending = { g: ["m2"] }
      yield* TestClock.adjust("1 second")
      yield* b.leases.reconcile
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(false)
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m2")).toBe(true)
      // nothing left: the record goes
      pending = {}
      yield* TestClock.adjust("1 second")
      expect(yield* Catalog.handoffs).toEqual([])
      yield* b.leases.reconcile
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m2")).toBe(false)
      expect(changes).toBe(3)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a handoff goes with its broker's lease: a dead old owner holds nothing back", () =>
    Effect.gen(function*() {
      const { a, b } = yield* fifoOnA
      a.leases.attach({ pending: () => Effect.succeed({ g: ["m1"] }), handoffsChanged: () => undefined })
      yield* Catalog.moveQueue("fifo", 0, "b")
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(true)
      yield* a.stop
      yield* b.leases.reconcile
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(false)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a broker that cannot tell what it holds of a FIFO queue keeps the queue until it can", () =>
    Effect.gen(function*() {
      const { a, b } = yield* fifoOnA
      let known = false
      a.leases.attach({ pending: () => Effect.succeed(known ? {} : undefined), handoffsChanged: () => undefined })
      yield* Catalog.moveQueue("fifo", 0, "b")
      yield* a.leases.reconcile
      expect(yield* heldKeys(a.leases)).toEqual(["fifo/0@1"])
      known = true
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      expect(yield* heldKeys(a.leases)).toEqual([])
      expect(yield* heldKeys(b.leases)).toEqual(["fifo/0@2"])
      expect(yield* Catalog.handoffs).toEqual([])
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a FIFO queue moved twice before its first holder drained: each holder waits only on those before it, and a holder with messages left does not take the queue back", () =>
    Effect.gen(function*() {
      const { a, b, store } = yield* fifoOnA
      const c = yield* start("c", store)
      a.leases.attach({ pending: () => Effect.succeed({ g: ["m1"] }), handoffsChanged: () => undefined })
      b.leases.attach({ pending: () => Effect.succeed({ g: ["m1"] }), handoffsChanged: () => undefined })
      yield* Catalog.moveQueue("fifo", 0, "b")
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      expect(yield* heldKeys(b.leases)).toEqual(["fifo/0@2"])
      // b leaves: a, home of nothing but still holding m1 of the queue, is passed over for c
      yield* Catalog.setRetiring("b", true)
      yield* b.leases.reconcile
      yield* a.leases.reconcile
      yield* c.leases.reconcile
      expect(yield* heldKeys(a.leases)).toEqual([])
      expect(yield* heldKeys(c.leases)).toEqual(["fifo/0@3"])
      expect((yield* Catalog.handoffs).map((handoff) => `${handoff.broker}@${handoff.epoch}`).sort()).toEqual(["a@1", "b@2"])
      // a goes first, then b, then c
      expect(a.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(false)
      expect(b.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(true)
      expect(c.leases.heldElsewhere("g", "fifo", 0, "m1")).toBe(true)
      // even as the queue's home again, a waits until its own messages are gone
      yield* Catalog.moveQueue("fifo", 0, "a")
      yield* c.leases.reconcile
      yield* a.leases.reconcile
      expect(yield* heldKeys(c.leases)).toEqual(["fifo/0@3"])
      expect(yield* heldKeys(a.leases)).toEqual([])
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))
})
