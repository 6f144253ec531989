// A broker in a cluster: it writes only the queues it holds a lease on, and mirrors the catalog.
import { assert, describe, expect, it } from "@effect/vitest"
import { Catalog, EmbeddedStore, MetadataStore, PartitionLeases } from "@strait/control"
import { ConsumerGroup, Topic } from "@strait/core"
import { SimDisk } from "@strait/storage"
import { Context, Effect, Latch, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import { Broker, CatalogMirror } from "../src/index.ts"
import { message, text } from "./fixtures.ts"

type Store = MetadataStore.MetadataStore["Service"]

// a broker of the cluster on a disk of its own; `pause` stalls its calls to the store
const member = (id: string, store: Store) =>
  Effect.gen(function*() {
    const gate = Latch.makeUnsafe(true)
    const gated: Store = {
      ...store,
      keepAlive: (lease) => Effect.andThen(gate.await, store.keepAlive(lease))
    }
    const leases = yield* PartitionLeases.make({ brokerId: id, address: `mem://${id}`, ttl: "3 seconds", reconcileInterval: "1 second" }).pipe(
      Effect.provideService(MetadataStore.MetadataStore, gated)
    )
    const disk = yield* Layer.build(SimDisk.layer())
    const context = yield* Layer.build(Broker.Broker.layer({ directory: `/data/${id}`, ownership: leases })).pipe(Effect.provideContext(disk))
    const broker = Context.get(context, Broker.Broker)
    const mirror = yield* CatalogMirror.run().pipe(
      Effect.provideService(Broker.Broker, broker),
      Effect.provideService(MetadataStore.MetadataStore, store)
    )
    return { broker, leases, mirror, pause: gate.close }
  })

const orders = { name: "orders", kind: "NORMAL", queues: 4, flush: "async" } as const
const fifo = { name: "fifo", kind: "FIFO", queues: 4, flush: "async" } as const

describe("Broker in a cluster", () => {
  it.effect("a topic created in the catalog appears in every broker, and its deletion reaches them", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const a = yield* member("a", store)
      yield* Catalog.createTopic(orders)
      yield* a.mirror.apply
      expect((yield* a.broker.topics).map((topic) => topic.name)).toEqual(["orders"])
      yield* Catalog.deleteTopic("orders")
      yield* TestClock.adjust("1 second")
      expect(yield* a.broker.topics).toEqual([])
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a broker stores messages only on the queues it holds, and refuses a message group whose queue another broker holds", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const a = yield* member("a", store)
      const b = yield* member("b", store)
      yield* Catalog.createTopic(orders)
      yield* Catalog.createTopic(fifo)
      yield* a.mirror.apply
      yield* b.mirror.apply
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      const heldByA = (yield* a.leases.held).filter((queue) => queue.topic === "orders").map((queue) => queue.queueId)
      const receipts = yield* a.broker.send(Array.from({ length: 8 }, (_, i) => message("orders", `m${i}`)))
      for (const receipt of receipts) expect(heldByA).toContain(receipt.queueId)
      // a message group whose queue b holds
      const fifoOfA = (yield* a.leases.held).filter((queue) => queue.topic === "fifo").map((queue) => queue.queueId)
      const group = Array.from({ length: 64 }, (_, i) => `g${i}`).find((g) => !fifoOfA.includes(Topic.queueOfGroup(g, 4)))!
      const refused = yield* Effect.flip(a.broker.send([message("fifo", "grouped", { messageGroup: group })]))
      expect(refused._tag).toBe("NotQueueOwner")
      const [stored] = yield* b.broker.send([message("fifo", "grouped", { messageGroup: group })])
      expect(stored!.queueId).toBe(Topic.queueOfGroup(group, 4))
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a broker that cannot keep its lease alive stops writing once the lease can no longer be trusted", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const a = yield* member("a", store)
      yield* Catalog.createTopic(orders)
      yield* a.mirror.apply
      yield* a.leases.reconcile
      yield* a.broker.send([message("orders", "before")])
      // a 3 s ttl, kept alive every second, trusted for 2.4 s after the last keep-alive sent: at 1 s
      yield* TestClock.adjust("1 second")
      yield* a.pause
      yield* TestClock.adjust("2 seconds")
      yield* a.broker.send([message("orders", "still trusted")])
      yield* TestClock.adjust("1 second")
      const refused = yield* Effect.flip(a.broker.send([message("orders", "late")]))
      expect(refused._tag).toBe("NotQueueOwner")
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a send fenced at an epoch the broker no longer holds its queue at is refused; at the current epoch it is stored", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const a = yield* member("a", store)
      yield* Catalog.createTopic({ ...orders, queues: 1 })
      yield* a.mirror.apply
      yield* a.leases.reconcile
      const [held] = yield* a.leases.held
      assert.deepStrictEqual([held!.queueId, held!.epoch], [0, 1])
      const [late] = yield* a.broker.sendMany([{ messages: [message("orders", "from a stale view")], fence: [{ queueId: 0, epoch: 0 }] }])
      assert.isTrue(Result.isFailure(late!) && late.failure._tag === "NotQueueOwner")
      const [current] = yield* a.broker.sendMany([{ messages: [message("orders", "current")], fence: [{ queueId: 0, epoch: 1 }] }])
      assert.isTrue(Result.isSuccess(current!))
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a dead-letter topic the broker creates is in the catalog as soon as the dead letter is stored, without waiting for a reconciliation", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      // the topic exists before the broker starts: no change is left for the mirror to reconcile
      yield* Catalog.createTopic({ ...orders, queues: 1 })
      const a = yield* member("a", store)
      yield* a.leases.reconcile
      yield* Effect.repeat(Effect.yieldNow, { times: 100 })
      yield* a.broker.send([message("orders", "poison")])
      const [received] = yield* a.broker.pop({ group: "g", topic: "orders", maxMessages: 1, invisibleDuration: "30 seconds" })
      yield* a.broker.forwardToDeadLetter("g", "orders", received!.receiptHandle)
      // the clock does not move: no interval reconciliation runs
      yield* Effect.repeat(Effect.andThen(Effect.yieldNow, Catalog.topic("%DLQ%g")), { until: (record) => record !== undefined, times: 100 })
      expect((yield* Catalog.topic("%DLQ%g"))?.queues).toBe(1)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("a FIFO queue moved to another broker: a message group's messages there wait until the old broker's of that group are consumed, other groups go at once", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      yield* Catalog.putGroup({ ...new ConsumerGroup.ConsumerGroup({ name: "g" as ConsumerGroup.ConsumerGroupName, fifo: true }) })
      yield* Catalog.createTopic({ ...fifo, queues: 1 })
      const a = yield* member("a", store)
      yield* a.mirror.apply
      yield* a.leases.reconcile
      const b = yield* member("b", store)
      yield* b.mirror.apply
      const receive = (broker: Broker.Broker["Service"]) =>
        Effect.map(broker.pop({ group: "g", topic: "fifo", maxMessages: 32, invisibleDuration: "30 seconds" }), (received) =>
          received.map((r) => ({ body: text(r.message), handle: r.receiptHandle })))
      yield* a.broker.send([message("fifo", "x1", { messageGroup: "x" }), message("fifo", "x2", { messageGroup: "x" })])
      // g's first receive at a: x1 in flight, x2 behind it
      const [x1] = yield* receive(a.broker)
      expect(x1?.body).toBe("x1")
      yield* Catalog.moveQueue("fifo", 0, "b")
      yield* a.leases.reconcile
      yield* b.leases.reconcile
      expect((yield* b.leases.held).map((queue) => `${queue.topic}/${queue.queueId}@${queue.epoch}`)).toEqual(["fifo/0@2"])
      yield* b.broker.send([message("fifo", "x3", { messageGroup: "x" }), message("fifo", "y1", { messageGroup: "y" })])
      // at b, y goes at once; x waits for a's x1 and x2
      expect((yield* receive(b.broker)).map((r) => r.body)).toEqual(["y1"])
      expect([(yield* a.broker.holdings).unconsumed, (yield* a.broker.holdings).inFlight, (yield* a.broker.holdings).held]).toEqual([2, 1, 0])
      yield* a.broker.ack("g", "fifo", x1!.handle)
      const [x2] = yield* receive(a.broker)
      expect(x2?.body).toBe("x2")
      // x2 is still a's: x3 keeps waiting
      yield* TestClock.adjust("1 second")
      yield* b.leases.reconcile
      expect(yield* receive(b.broker)).toEqual([])
      yield* a.broker.ack("g", "fifo", x2!.handle)
      // a's handoff record empties at its next update; then x3 goes
      yield* TestClock.adjust("1 second")
      yield* b.leases.reconcile
      expect(yield* Catalog.handoffs).toEqual([])
      expect((yield* receive(b.broker)).map((r) => r.body)).toEqual(["x3"])
      expect([(yield* a.broker.holdings).unconsumed, (yield* a.broker.holdings).inFlight]).toEqual([0, 0])
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))
})
