import { assert, describe, it } from "@effect/vitest"
import { Broker, Server, Transactions } from "@strait/broker"
import { SimDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Context, Duration, Effect, Exit, Fiber, Layer, Queue, Redacted, Result, Scope, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { AccessControl, Proxy, Quotas } from "../src/index.ts"
import { caller, message, text } from "./fixtures.ts"


/** A broker at mem://broker on a simulated disk, and a proxy in front of it. */
const withProxy = <A, E>(
  body: (
    proxy: Proxy.Proxy["Service"],
    broker: Broker.Broker["Service"],
    restartProxy: () => Effect.Effect<Proxy.Proxy["Service"], never, Scope.Scope>
  ) => Effect.Effect<A, E, Scope.Scope>,
  options: { readonly access?: AccessControl.AccessSettings; readonly quotas?: Quotas.QuotaSettings } = {}
) =>
  Effect.gen(function*() {
    const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
    const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
    const brokerContext = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory: "/data/broker" }))).pipe(Effect.provideContext(disk))
    yield* Layer.build(Server.layer("mem://broker")).pipe(Effect.provideContext(Context.merge(brokerContext, network)))
    const startProxy = (scope: Scope.Scope) =>
      Layer.buildWithScope(Layer.fresh(Proxy.Proxy.layer({ broker: "mem://broker", ...options })), scope).pipe(
        Effect.provideContext(network),
        Effect.map((context) => Context.get(context, Proxy.Proxy))
      )
    let proxyScope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(proxyScope, Exit.void))
    const proxy = yield* startProxy(proxyScope)
    const broker = Context.get(brokerContext, Broker.Broker)
    yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
    return yield* body(proxy, broker, () =>
      Effect.gen(function*() {
        yield* Scope.close(proxyScope, Exit.void)
        proxyScope = yield* Scope.make()
        return yield* startProxy(proxyScope)
      }))
  })

const sent = <A>(results: ReadonlyArray<Result.Result<A, unknown>>) => results.map((result) => Result.getOrThrow(result))

describe("the proxy core", () => {
  it.effect("a namespace with all the clients it may have refuses one more at its first call; once one leaves, the next gets in; other namespaces are not counted", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        yield* proxy.heartbeat(caller("a1", "shop"))
        yield* proxy.heartbeat(caller("a2", "shop"))
        const refused = yield* Effect.flip(proxy.heartbeat(caller("a3", "shop")))
        assert.deepStrictEqual([refused._tag, refused.limit, refused.namespace], ["Throttled", "2 connections", "shop"])
        const [send] = yield* proxy.send(caller("a3", "shop"), [message("t", "y")]).pipe(Effect.orElseSucceed(() => []))
        assert.isTrue(send !== undefined && Result.isFailure(send) && send.failure._tag === "Throttled")
        // the clients already in go on, and another namespace has its own count
        yield* proxy.heartbeat(caller("a1", "shop"))
        yield* proxy.heartbeat(caller("b1"))
        yield* proxy.heartbeat(caller("b2"))
        yield* proxy.terminate(caller("a1", "shop"))
        yield* proxy.heartbeat(caller("a3", "shop"))
        assert.strictEqual((yield* proxy.meter).sessions, 4)
      }), { quotas: { namespaces: { shop: { connections: 2 } } } }))


  it.effect("its meter counts the messages and bytes sent and received through it, the clients and what they hold, and the p99 of the sends since the last reading", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        const empty = yield* proxy.meter
        assert.deepStrictEqual(empty, { messages: 0, bytes: 0, sessions: 0, holding: 0, parkedReceives: 0, p99Millis: 0 })
        sent(yield* proxy.send(caller("p1"), [message("t", "12345"), message("t", "678")]))
        // a receive with automatic renewal: the proxy holds what it took for its client
        const received = yield* proxy.receive(caller("c1"), { group: "g", topic: "t", maxMessages: 32, pollMillis: 0 })
        assert.strictEqual(received.length, 2)
        const reading = yield* proxy.meter
        assert.deepStrictEqual(reading, { messages: 4, bytes: 16, sessions: 2, holding: 2, parkedReceives: 0, p99Millis: 0 })
        // a send during which the clock moves 300 ms: its latency is in the next reading, and only there
        const slow = yield* Effect.forkChild(proxy.send(caller("p1"), [message("t", "x")]))
        yield* Effect.yieldNow
        yield* TestClock.adjust("300 millis")
        yield* Fiber.join(slow)
        const after = yield* proxy.meter
        assert.deepStrictEqual([after.messages, after.p99Millis], [5, 300])
        assert.strictEqual((yield* proxy.meter).p99Millis, 0)
      })))

  it.effect("a namespace sees only its own topics: the same name in two namespaces is two topics", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        for (const namespace of ["", "shop", "bank"]) {
          yield* proxy.createTopic(caller("admin", namespace), { name: "orders", kind: "NORMAL", queues: 1, flush: "async" })
        }
        sent(yield* proxy.send(caller("p1", "shop"), [message("orders", "for the shop")]))
        sent(yield* proxy.send(caller("p2", "bank"), [message("orders", "for the bank")]))
        const receive = (namespace: string) =>
          proxy.receive(caller("c", namespace), { group: "g", topic: "orders", maxMessages: 32, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual((yield* receive("shop")).map((r) => text(r.message)), ["for the shop"])
        assert.deepStrictEqual((yield* receive("bank")).map((r) => text(r.message)), ["for the bank"])
        assert.deepStrictEqual((yield* receive("")).length, 0)
        const listed = yield* proxy.topics(caller("admin", "shop"))
        assert.deepStrictEqual(listed.map((topic) => topic.name), ["orders"])
      })))

  it.effect("a message received with automatic renewal stays invisible while its client lives, and its first handle acks it", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        sent(yield* proxy.send(caller("p"), [message("t", "slow work")]))
        const [held] = yield* proxy.receive(caller("push-1"), { group: "g", topic: "t", maxMessages: 1, pollMillis: 0 })
        assert.isDefined(held)
        // three minutes of heartbeats: the 60 s window is renewed, nobody else gets the message
        for (let second = 0; second < 180; second += 10) {
          yield* TestClock.adjust(Duration.seconds(10))
          yield* proxy.heartbeat(caller("push-1"))
        }
        const other = yield* proxy.receive(caller("push-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.strictEqual(other.length, 0)
        const [problem] = yield* proxy.ack(caller("push-1"), "g", "t", [held!.receiptHandle])
        assert.isUndefined(problem)
      })))

  it.effect("a proxy that restarts loses only the renewal: the handle its client holds still acknowledges the message", () =>
    withProxy((proxy, _broker, restartProxy) =>
      Effect.gen(function*() {
        sent(yield* proxy.send(caller("p"), [message("t", "survivor")]))
        const [held] = yield* proxy.receive(caller("push-1"), { group: "g", topic: "t", maxMessages: 1, pollMillis: 0 })
        for (let second = 0; second < 70; second += 10) {
          yield* TestClock.adjust(Duration.seconds(10))
          yield* proxy.heartbeat(caller("push-1"))
        }
        // renewed past its first minute by the first proxy; then a second proxy takes over
        const second = yield* restartProxy()
        yield* TestClock.adjust(Duration.seconds(20))
        const [problem] = yield* second.ack(caller("push-1"), "g", "t", [held!.receiptHandle])
        assert.isUndefined(problem)
      })))

  it.effect("a client that goes silent loses what it holds: the message is delivered again soon after the client timeout", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        sent(yield* proxy.send(caller("p"), [message("t", "orphan")]))
        const [held] = yield* proxy.receive(caller("push-1"), { group: "g", topic: "t", maxMessages: 1, pollMillis: 0 })
        assert.isDefined(held)
        // no heartbeat: after 30 s the proxy gives the message back (visible 1 s later), well before 60 s
        yield* TestClock.adjust(Duration.seconds(42))
        const again = yield* proxy.receive(caller("push-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual(again.map((r) => [text(r.message), r.message.deliveryAttempt]), [["orphan", 2]])
      })))

  it.effect("a client whose telemetry stream is open stays alive without heartbeats; once it closes, the timeout counts", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        sent(yield* proxy.send(caller("p"), [message("t", "long job")]))
        const stream = yield* Scope.make()
        yield* proxy.register(caller("push-1"), { kind: "consumer", topics: ["t"], group: "g" }).pipe(Scope.provide(stream))
        yield* proxy.receive(caller("push-1"), { group: "g", topic: "t", maxMessages: 1, pollMillis: 0 })
        yield* TestClock.adjust(Duration.minutes(2))
        const whileOpen = yield* proxy.receive(caller("push-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.strictEqual(whileOpen.length, 0)
        yield* Scope.close(stream, Exit.void)
        yield* TestClock.adjust(Duration.seconds(42))
        const afterClose = yield* proxy.receive(caller("push-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual(afterClose.map((r) => text(r.message)), ["long job"])
      })))

  it.effect("a terminating client's held messages are visible again a second later", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        sent(yield* proxy.send(caller("p"), [message("t", "handed back")]))
        yield* proxy.receive(caller("push-1"), { group: "g", topic: "t", maxMessages: 1, pollMillis: 0 })
        yield* proxy.terminate(caller("push-1"))
        yield* TestClock.adjust(Duration.seconds(2))
        const again = yield* proxy.receive(caller("push-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual(again.map((r) => text(r.message)), ["handed back"])
      })))

  it.effect("a receive abandoned while parked gives back what its pop took", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        const parked = yield* Effect.forkChild(
          proxy.receive(caller("simple-1"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 300_000, pollMillis: 20_000 })
        )
        yield* TestClock.adjust(Duration.seconds(1))
        yield* Fiber.interrupt(parked)
        sent(yield* proxy.send(caller("p"), [message("t", "arrived too late")]))
        // without the release the message would stay invisible for five minutes
        yield* TestClock.adjust(Duration.seconds(3))
        const again = yield* proxy.receive(caller("simple-2"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual(again.map((r) => text(r.message)), ["arrived too late"])
      })))

  it.effect("receives long-polling at once are bounded: one more is refused with TooManyReceives until one ends", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        const poll = (clientId: string) =>
          proxy.receive(caller(clientId), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 5_000 })
        const first = yield* Effect.forkChild(poll("c1"))
        const second = yield* Effect.forkChild(poll("c2"))
        yield* TestClock.adjust(Duration.seconds(1))
        const refused = yield* Effect.flip(poll("c3"))
        assert.strictEqual(refused._tag, "TooManyReceives")
        // a receive that does not wait is never refused
        assert.deepStrictEqual(yield* proxy.receive(caller("c4"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 }), [])
        yield* TestClock.adjust(Duration.seconds(5))
        yield* Fiber.join(first)
        yield* Fiber.join(second)
        const third = yield* Effect.forkChild(poll("c3"))
        yield* TestClock.adjust(Duration.seconds(6))
        assert.deepStrictEqual(yield* Fiber.join(third), [])
      })).pipe(Effect.provideService(Proxy.ProxySettings, { ...Proxy.ProxySettings.defaultValue(), maxParkedReceives: 2 })))

  it.effect("a transaction check-back goes to the producer that sent the half message, under the topic name it knows", () =>
    withProxy((proxy, broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "shop%payments", kind: "TRANSACTION", queues: 1 })
        const checksOf = (clientId: string) =>
          Effect.gen(function*() {
            const checks = yield* Queue.unbounded<Proxy.CheckBack>()
            yield* proxy.register(caller(clientId, "shop"), { kind: "producer", topics: ["payments"], checks: (check) => Queue.offer(checks, check) })
            return checks
          })
        const sender = yield* checksOf("producer-1")
        const bystander = yield* checksOf("producer-2")
        const [receipt] = sent(yield* proxy.send(caller("producer-1", "shop"), [message("payments", "pay 10")], { transactional: true }))
        yield* TestClock.adjust(Duration.seconds(7))
        const check = yield* Queue.take(sender)
        assert.strictEqual(check.transactionId, receipt!.messageId)
        assert.strictEqual(check.message.topic, "payments")
        assert.strictEqual(yield* Queue.size(bystander), 0)
        yield* proxy.endTransaction(caller("producer-1", "shop"), "payments", check.transactionId, "COMMIT")
        const received = yield* proxy.receive(caller("c", "shop"), { group: "g", topic: "payments", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["pay 10"])
      }).pipe(Effect.provideService(Transactions.TransactionSettings, { firstCheckAfter: Duration.seconds(6), checkInterval: Duration.seconds(30), maxChecks: 15, maxDueChecks: 100 }))))

  it.effect("a message's way through the proxy is traced: its send span continues the producer's trace, receive and ack spans name it", () =>
    withProxy((proxy) =>
      Effect.gen(function*() {
        const spans: Array<Tracer.NativeSpan> = []
        const tracer = Tracer.make({
          span: (options) => {
            const span = new Tracer.NativeSpan(options)
            spans.push(span)
            return span
          }
        })
        const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
        const traced = message("t", "traced", { traceContext: `00-${traceId}-00f067aa0ba902b7-01` })
        yield* Effect.gen(function*() {
          sent(yield* proxy.send(caller("p"), [traced]))
          const [received] = yield* proxy.receive(caller("c"), { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 })
          yield* proxy.ack(caller("c"), "g", "t", [received!.receiptHandle])
        }).pipe(Effect.withTracer(tracer))
        const send = spans.find((span) => span.name === "strait.proxy.send")!
        assert.strictEqual(send.traceId, traceId)
        assert.strictEqual(send.attributes.get("messaging.message.id"), traced.messageId)
        const receive = spans.find((span) => span.name === "strait.proxy.receive")!
        assert.deepStrictEqual(receive.attributes.get("messaging.message.ids"), [traced.messageId])
        assert.isDefined(spans.find((span) => span.name === "strait.proxy.ack"))
      })))

  it.effect("the broker link reconnects: after the broker's server went away and came back, the next call works", () =>
    Effect.gen(function*() {
      const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
      const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
      const brokerContext = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory: "/data/broker" }))).pipe(Effect.provideContext(disk))
      const serve = (scope: Scope.Scope) =>
        Layer.buildWithScope(Layer.fresh(Server.layer("mem://broker")), scope).pipe(Effect.provideContext(Context.merge(brokerContext, network)))
      let serverScope = yield* Scope.make()
      yield* serve(serverScope)
      const proxy = Context.get(yield* Layer.build(Layer.fresh(Proxy.Proxy.layer({ broker: "mem://broker" }))).pipe(Effect.provideContext(network)), Proxy.Proxy)
      yield* Context.get(brokerContext, Broker.Broker).createTopic({ name: "t", kind: "NORMAL", queues: 1 })
      sent(yield* proxy.send(caller("p"), [message("t", "before")]))
      yield* Scope.close(serverScope, Exit.void)
      const [during] = yield* proxy.send(caller("p"), [message("t", "while away")])
      assert.isTrue(Result.isFailure(during!), "the broker is away")
      serverScope = yield* Scope.make()
      yield* serve(serverScope)
      sent(yield* proxy.send(caller("p"), [message("t", "after")]))
      const received = yield* proxy.receive(caller("c"), { group: "g", topic: "t", maxMessages: 32, invisibleMillis: 30_000, pollMillis: 0 })
      assert.deepStrictEqual(received.map((r) => text(r.message)), ["before", "after"])
      yield* Scope.close(serverScope, Exit.void)
    }))

  it.effect("with accounts configured, an account may do only what its grants allow", () => {
    const access: AccessControl.AccessSettings = {
      accounts: [{
        accessKey: "writer",
        secretKey: Redacted.make("s3cret"),
        grants: [{ resource: "topic:t", actions: ["pub"] }, { resource: "topic:*", actions: ["admin"], namespaces: ["shop"] }]
      }]
    }
    return withProxy((proxy) =>
      Effect.gen(function*() {
        const principal = yield* proxy.authenticate({ authorization: AccessControl.authorization("writer", "s3cret", "20261125T050000Z"), dateTime: "20261125T050000Z" })
        const writer: Proxy.CallerContext = { clientId: "w", namespace: "", principal }
        sent(yield* proxy.send(writer, [message("t", "allowed")]))
        const receive = yield* Effect.flip(proxy.receive(writer, { group: "g", topic: "t", maxMessages: 1, invisibleMillis: 30_000, pollMillis: 0 }))
        assert.strictEqual(receive._tag, "Forbidden")
        const elsewhere = yield* Effect.flip(proxy.createTopic(writer, { name: "x", kind: "NORMAL", queues: 1, flush: "async" }))
        assert.strictEqual(elsewhere._tag, "Forbidden")
        yield* proxy.createTopic({ ...writer, namespace: "shop" }, { name: "x", kind: "NORMAL", queues: 1, flush: "async" })
      }), { access })
  })
})
