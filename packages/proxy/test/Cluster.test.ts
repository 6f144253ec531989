// The proxy of a cluster: brokers registered in the control plane, routes from its catalog.
import { assert, describe, it } from "@effect/vitest"
import { Broker, Member } from "@strait/broker"
import { Catalog, EmbeddedStore } from "@strait/control"
import { type Disk, SimDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Context, Effect, Exit, Fiber, Layer, Redacted, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import { AccessControl, Proxy } from "../src/index.ts"
import { caller, message, text } from "./fixtures.ts"


/** Brokers `ids` (each on a disk of its own, restartable), one metadata store, one proxy. */
const withCluster = <A, E>(
  brokerIds: ReadonlyArray<string>,
  body: (cluster: {
    readonly proxy: Proxy.Proxy["Service"]
    readonly broker: (id: string) => Broker.Broker["Service"]
    readonly stop: (id: string) => Effect.Effect<void>
    readonly start: (id: string) => Effect.Effect<void, unknown>
    readonly settle: Effect.Effect<void>
    /** How many queues a broker serves now, as the store says. */
    readonly ownedBy: (id: string) => Effect.Effect<number, unknown>
  }) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const shared = yield* Layer.build(Layer.merge(Layer.fresh(MemoryTransport.layerLocal), Layer.fresh(EmbeddedStore.layerMemory)))
    const disks = new Map<string, Context.Context<SimDisk.SimDisk | Disk.Disk>>()
    const running = new Map<string, { readonly scope: Scope.Closeable; readonly broker: Broker.Broker["Service"] }>()
    const start = (id: string): Effect.Effect<void, unknown, Scope.Scope> =>
      Effect.gen(function*() {
        if (!disks.has(id)) disks.set(id, yield* Layer.build(Layer.fresh(SimDisk.layer())))
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          Layer.fresh(Member.layer({ brokerId: id, directory: `/data/${id}`, listen: `mem://${id}`, leaseTtl: "3 seconds" })),
          scope
        ).pipe(Effect.provideContext(Context.merge(shared, disks.get(id)!)))
        running.set(id, { scope, broker: Context.get(context, Broker.Broker) })
      })
    const stop = (id: string) =>
      Effect.suspend(() => {
        const member = running.get(id)
        running.delete(id)
        return member === undefined ? Effect.void : Scope.close(member.scope, Exit.void)
      })
    yield* Effect.addFinalizer(() => Effect.forEach([...running.keys()], stop, { discard: true }))
    for (const id of brokerIds) yield* start(id)
    const proxyContext = yield* Layer.build(Layer.fresh(Proxy.Proxy.layerCluster())).pipe(Effect.provideContext(shared))
    // the watches and reconciliations run: leases claimed, catalogs mirrored, routes read
    const settle = Effect.andThen(TestClock.adjust("1 second"), TestClock.adjust("1 second"))
    return yield* body({
      proxy: Context.get(proxyContext, Proxy.Proxy),
      broker: (id) => running.get(id)!.broker,
      stop,
      start: (id) => Effect.scoped(start(id)),
      settle,
      ownedBy: (id) =>
        Effect.map(
          Catalog.owners.pipe(Effect.provideContext(shared)),
          (owners) => [...owners.values()].filter((owner) => owner.broker === id).length
        )
    })
  })

const receiveAll = (proxy: Proxy.Proxy["Service"], topic: string, expected: number) =>
  Effect.gen(function*() {
    const bodies: Array<string> = []
    for (let round = 0; round < 20 && bodies.length < expected; round++) {
      const received = yield* proxy.receive(caller("consumer"), { group: "g", topic, maxMessages: 32, invisibleMillis: 60_000, pollMillis: 0 })
      const acked = yield* proxy.ack(caller("consumer"), "g", topic, received.map((r) => r.receiptHandle))
      assert.deepStrictEqual(acked, received.map(() => undefined), "every acknowledgement reaches the broker that issued the handle")
      bodies.push(...received.map((r) => text(r.message)))
    }
    return bodies.sort()
  })


describe("the proxy of a cluster", () => {
  it.effect("a topic created through the proxy is served by every broker: sends spread over them, and each message is received and acknowledged once", () =>
    withCluster(["a", "b"], ({ broker, ownedBy, proxy, settle }) =>
      Effect.gen(function*() {
        yield* proxy.createTopic(caller("admin"), { name: "orders", kind: "NORMAL", queues: 4, flush: "async" })
        yield* settle
        assert.isAbove(yield* ownedBy("a"), 0)
        assert.isAbove(yield* ownedBy("b"), 0)
        const bodies = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, "0")}`)
        const results = yield* proxy.send(caller("producer"), bodies.map((body) => message("orders", body)))
        assert.isTrue(results.every(Result.isSuccess))
        for (const id of ["a", "b"]) {
          const stored = (yield* broker(id).describeTopic("orders")).queues.reduce((sum, queue) => sum + queue.end - queue.start, 0)
          assert.isAbove(stored, 0, `broker ${id} stored some of the messages`)
        }
        assert.deepStrictEqual(yield* receiveAll(proxy, "orders", 20), bodies)
      })
    ))

  it.effect("a route asked for right after the topic's creation waits until brokers serve its queues, instead of answering with none", () =>
    withCluster(["a"], ({ proxy }) =>
      Effect.gen(function*() {
        yield* proxy.createTopic(caller("admin"), { name: "fresh", kind: "NORMAL", queues: 2, flush: "async" })
        const asked = yield* Effect.forkChild(proxy.route(caller("producer"), "fresh"))
        for (let i = 0; i < 30 && asked.pollUnsafe() === undefined; i++) yield* TestClock.adjust("100 millis")
        const route = yield* Fiber.join(asked)
        assert.deepStrictEqual(route.map((entry) => entry.queues), [2])
      })
    ))

  it.effect("when a broker stops, sends go on to the others; when it returns, the messages it stored are delivered too", () =>
    withCluster(["a", "b"], ({ ownedBy, proxy, settle, start, stop }) =>
      Effect.gen(function*() {
        yield* proxy.createTopic(caller("admin"), { name: "orders", kind: "NORMAL", queues: 4, flush: "async" })
        yield* settle
        const before = Array.from({ length: 10 }, (_, i) => `before-${i}`)
        assert.isTrue((yield* proxy.send(caller("producer"), before.map((body) => message("orders", body)))).every(Result.isSuccess))
        yield* stop("a")
        yield* settle
        assert.strictEqual(yield* ownedBy("b"), 4, "b serves every queue while a is away")
        const during = Array.from({ length: 10 }, (_, i) => `during-${i}`)
        assert.isTrue((yield* proxy.send(caller("producer"), during.map((body) => message("orders", body)))).every(Result.isSuccess))
        yield* start("a")
        yield* settle
        assert.isAbove(yield* ownedBy("a"), 0, "a got its queues back")
        assert.deepStrictEqual(yield* receiveAll(proxy, "orders", 20), [...before, ...during].sort())
      })
    ))

  it.effect("a message group goes to the broker serving its queue, and its messages arrive in order", () =>
    withCluster(["a", "b", "c"], ({ proxy, settle }) =>
      Effect.gen(function*() {
        yield* proxy.createTopic(caller("admin"), { name: "ledger", kind: "FIFO", queues: 6, flush: "async" })
        yield* proxy.setGroup(caller("admin"), { ...(yield* proxy.group(caller("admin"), "g")), fifo: true })
        yield* settle
        const groups = ["alice", "bob", "carol", "dave"]
        for (let i = 0; i < 5; i++) {
          const results = yield* proxy.send(caller("producer"), groups.map((group) => message("ledger", `${group}-${i}`, { messageGroup: group })))
          assert.isTrue(results.every(Result.isSuccess))
        }
        const seen = new Map<string, Array<number>>()
        for (let round = 0; round < 60; round++) {
          const received = yield* proxy.receive(caller("consumer"), { group: "g", topic: "ledger", maxMessages: 32, invisibleMillis: 60_000, pollMillis: 0 })
          for (const { message: m } of received) {
            const [group, index] = text(m).split("-")
            seen.set(group!, [...(seen.get(group!) ?? []), Number(index)])
          }
          yield* proxy.ack(caller("consumer"), "g", "ledger", received.map((r) => r.receiptHandle))
        }
        for (const group of groups) assert.deepStrictEqual(seen.get(group), [0, 1, 2, 3, 4], `group ${group} in order`)
      })
    ))

  it.effect("access settings stored through one proxy are the cluster's: unsigned requests are refused once accounts exist", () =>
    withCluster(["a"], ({ proxy }) =>
      Effect.gen(function*() {
        assert.isTrue(Exit.isSuccess(yield* Effect.exit(proxy.authenticate({}))), "open before any account")
        const stored = yield* proxy.setAccess(caller("admin"), {
          accounts: [{ accessKey: "app", secretKey: Redacted.make("s3cret"), grants: [{ resource: "topic:*", actions: ["pub"] }] }],
          anonymous: []
        })
        assert.isTrue(stored)
        const refused = yield* Effect.flip(proxy.authenticate({}))
        assert.strictEqual(refused._tag, "Unauthorized")
        // the app account may publish, and nothing more
        const app = yield* proxy.authenticate({ authorization: AccessControl.authorization("app", "s3cret", "20261125T000000Z"), dateTime: "20261125T000000Z" })
        const forbidden = yield* Effect.flip(proxy.createTopic({ ...caller("admin"), principal: app }, { name: "t", kind: "NORMAL", queues: 1, flush: "async" }))
        assert.strictEqual(forbidden._tag, "Forbidden")
      })
    ))

  it.effect("a send right after its topic was created waits for a broker to serve the queue instead of failing", () =>
    withCluster(["a"], ({ proxy, settle }) =>
      Effect.gen(function*() {
        yield* proxy.createTopic(caller("admin"), { name: "fresh", kind: "NORMAL", queues: 2, flush: "async" })
        const sending = yield* Effect.forkChild(proxy.send(caller("producer"), [message("fresh", "first")]))
        yield* settle
        const [result] = yield* Fiber.join(sending)
        assert.isTrue(Result.isSuccess(result!))
      })
    ))
})
