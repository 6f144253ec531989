import { assert, describe, it } from "@effect/vitest"
import { ConsumerGroup, Frame, ReceiptHandle, Transport, Wire } from "@strait/core"
import { SimDisk } from "@strait/storage"
import { MemoryTransport, Multiplex } from "@strait/transport"
import { Context, Deferred, Effect, Fiber, Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { Broker, Client, Consumption, Filter, Protocol, Server, Topics } from "../src/index.ts"
import { directory, message, text } from "./fixtures.ts"

/** A broker served at mem://broker, and a client connected to it. */
const overTheWire = <A, E>(body: (client: Client.BrokerClient, transport: Transport.Transport["Service"]) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function*() {
    const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
    const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
    const broker = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory }))).pipe(Effect.provideContext(disk))
    yield* Layer.build(Server.layer("mem://broker")).pipe(Effect.provideContext(Context.merge(broker, network)))
    const transport = Context.get(network, Transport.Transport)
    const client = yield* Client.make(yield* transport.connect("mem://broker"))
    return yield* body(client, transport)
  })

describe("the broker's data-plane protocol", () => {
  it.effect("topics, sends, receives and acknowledgements work over the wire", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        const described = yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
        assert.deepStrictEqual([described.name, described.queues], ["t", 2])
        const receipts = yield* client.send(["a", "b", "c"].map((body) => message("t", body)))
        assert.deepStrictEqual(receipts.map((r) => r.queueId), [0, 1, 0])
        const received = yield* client.pop({ group: "g", topic: "t", maxMessages: 32, invisibleDuration: "30 seconds" })
        assert.deepStrictEqual(received.map((r) => text(r.message)).sort(), ["a", "b", "c"])
        assert.isTrue(received.every((r) => r.message.deliveryAttempt === 1))
        yield* client.ack("g", "t", received[0]!.receiptHandle)
        const renewed = yield* client.changeInvisibility("g", "t", received[1]!.receiptHandle, "1 minute")
        assert.isString(renewed)
        const pulled = yield* client.pull({ topic: "t", queueId: 0, offset: 0, maxCount: 10 })
        assert.deepStrictEqual(pulled.messages.map(text), ["a", "c"])
        yield* client.commitOffset("g2", "t", 0, 2)
        assert.strictEqual(yield* client.queryOffset("g2", "t", 0), 2)
      })))

  it.effect("the broker's typed errors arrive as the same error classes", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        const missing = yield* Effect.flip(client.send([message("nowhere", "x")]))
        assert.isTrue(missing instanceof Topics.TopicNotFound)
        yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const garbage = yield* Effect.flip(client.ack("g", "t", "not-a-handle"))
        assert.isTrue(garbage instanceof ReceiptHandle.InvalidReceiptHandle)
        const badFilter = yield* Effect.flip(client.pop({
          group: "g",
          topic: "t",
          maxMessages: 1,
          invisibleDuration: "1 second",
          filter: { type: "SQL92", expression: "a >" }
        }))
        assert.isTrue(badFilter instanceof Filter.IllegalFilterExpression)
      })))

  it.effect("a request that does not decode is answered with BadRequest, and the connection goes on", () =>
    overTheWire((client, transport) =>
      Effect.gen(function*() {
        const raw = yield* Multiplex.requester(yield* transport.connect("mem://broker"))
        const answer = yield* raw.request(Frame.Type.Broker, new Uint8Array([0xff, 0x00, 0x13]), "10 seconds")
        const response = yield* Protocol.decodeResponse(answer.payload)
        assert.strictEqual(response._tag === "Failed" ? response.error._tag : response._tag, "BadRequest")
        const echo = yield* raw.request(Frame.Type.Echo, new Uint8Array([1]), "10 seconds")
        const notBroker = yield* Protocol.decodeResponse(echo.payload)
        assert.strictEqual(notBroker._tag === "Failed" ? notBroker.error._tag : notBroker._tag, "BadRequest")
        const topic = yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        assert.strictEqual(topic.name, "t")
      })))

  it.effect("with two Produce requests of a client unanswered, later sends wait and leave together as one request", () =>
    Effect.gen(function*() {
      const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
      const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
      const broker = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory }))).pipe(Effect.provideContext(disk))
      yield* Layer.build(Server.layer("mem://broker")).pipe(Effect.provideContext(Context.merge(broker, network)))
      const connection = yield* Context.get(network, Transport.Transport).connect("mem://broker")
      let requests = 0
      let holding = false
      const gate = Deferred.makeUnsafe<void>()
      // while holding, requests leave the client but reach the broker only when the gate opens
      const client = yield* Client.make({
        ...connection,
        send: (frames) =>
          Effect.suspend(() => {
            requests += frames.length
            return holding ? Effect.andThen(Deferred.await(gate), connection.send(frames)) : connection.send(frames)
          })
      })
      yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
      requests = 0
      holding = true
      const turns = (n: number) => Effect.repeat(Effect.yieldNow, { times: n })
      // each send in a turn of its own, so only the in-flight limit can make them share a request
      const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
      for (const body of ["a", "b", "c", "d", "e", "f", "g"]) {
        fibers.push(yield* Effect.forkChild(client.send([message("t", body)])))
        yield* turns(5)
      }
      assert.strictEqual(requests, 2, "two requests on the wire; five sends waiting")
      holding = false
      Deferred.doneUnsafe(gate, Effect.void)
      yield* Effect.forEach(fibers, Fiber.join, { discard: true })
      assert.strictEqual(requests, 3, "the five waiting sends left as one request")
      const received = yield* client.pop({ group: "g", topic: "t", maxMessages: 32, invisibleDuration: "30 seconds" })
      assert.deepStrictEqual(received.map((r) => text(r.message)), ["a", "b", "c", "d", "e", "f", "g"])
    }))

  it.effect("sends and acknowledgements made at the same time share one request, and a refused one fails alone", () =>
    Effect.gen(function*() {
      const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
      const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
      const broker = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory }))).pipe(Effect.provideContext(disk))
      yield* Layer.build(Server.layer("mem://broker")).pipe(Effect.provideContext(Context.merge(broker, network)))
      const connection = yield* Context.get(network, Transport.Transport).connect("mem://broker")
      let requests = 0
      const client = yield* Client.make({
        ...connection,
        send: (frames) => Effect.suspend(() => (requests += frames.length, connection.send(frames)))
      })
      yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 2 })
      requests = 0
      const sends = [message("t", "a"), message("nowhere", "x"), message("t", ""), message("t", "b")]
      const outcomes = yield* Effect.forEach(sends, (m) => Effect.result(client.send([m])), { concurrency: "unbounded" })
      assert.strictEqual(requests, 1, "four concurrent sends, one request")
      assert.deepStrictEqual(outcomes.map((o) => o._tag === "Success" ? "stored" : o.failure._tag), ["stored", "TopicNotFound", "MessageBodyEmpty", "stored"])
      const received = yield* client.pop({ group: "g", topic: "t", maxMessages: 32, invisibleDuration: "30 seconds" })
      assert.deepStrictEqual(received.map((r) => text(r.message)).sort(), ["a", "b"])
      requests = 0
      const handles = [received[0]!.receiptHandle, "not-a-handle", received[1]!.receiptHandle]
      const acked = yield* Effect.forEach(handles, (h) => Effect.result(client.ack("g", "t", h)), { concurrency: "unbounded" })
      assert.strictEqual(requests, 1, "three concurrent acknowledgements, one request")
      assert.deepStrictEqual(acked.map((o) => o._tag === "Success" ? "acked" : o.failure._tag), ["acked", "InvalidReceiptHandle", "acked"])
      assert.deepStrictEqual(
        (yield* client.ackMany("g", "t", [received[0]!.receiptHandle, "bad"])).map((failure) => failure?._tag),
        ["ReceiptHandleStale", "InvalidReceiptHandle"]
      )
    }))

  it.effect("the hand-written forms carry every field, and a truncated payload is refused, not misread", () =>
    Effect.gen(function*() {
      const error = new Topics.TopicNotFound({ topic: "nowhere" })
      const requests: ReadonlyArray<Protocol.Request> = [
        { _tag: "Produce", sends: [{ messages: new Uint8Array([1, 2, 3]), transactional: true }, { messages: new Uint8Array(0), transactional: false }] },
        {
          _tag: "Produce",
          sends: [
            { messages: new Uint8Array([4]), transactional: false, fence: [{ queueId: 0, epoch: 3 }, { queueId: 7, epoch: 2 ** 31 }] },
            { messages: new Uint8Array([5]), transactional: true, fence: [] }
          ]
        },
        { _tag: "Ack", group: "g", topic: "t", receiptHandles: ["h1", "h-é-2"] },
        { _tag: "Pop", group: "g", topic: "t", maxMessages: 3, invisibleMillis: 1000 },
        { _tag: "Pop", group: "g", topic: "t-ü", maxMessages: 32, invisibleMillis: 2.5, pollMillis: 0, filter: { type: "SQL92", expression: "a > 1 AND b = 'é'" }, attemptId: "at-1" },
        { _tag: "Pop", group: "g", topic: "t", maxMessages: 1, invisibleMillis: 0, filter: { type: "TAG", expression: "*" } }
      ]
      for (const request of requests) {
        assert.deepStrictEqual(yield* Protocol.decodeRequest(Protocol.encodeRequest(request)), request)
      }
      const responses: ReadonlyArray<Protocol.Response> = [
        {
          _tag: "Produced",
          results: [
            { _tag: "Sent", receipts: [{ messageId: "m", queueId: 2, offset: 2 ** 40, storeTimestamp: 1_700_000_000_000, recallHandle: "r" }] },
            { _tag: "Refused", error }
          ]
        },
        { _tag: "Popped", handles: [{ receiptHandle: "h", invisibleUntil: 5 }], messages: new Uint8Array([9, 9]) },
        { _tag: "Acked", failures: [{ index: 1, error }] },
        { _tag: "Done" }
      ]
      for (const response of responses) {
        const decoded = yield* Protocol.decodeResponse(Protocol.encodeResponse(response))
        assert.deepStrictEqual(decoded, response)
      }
      const refused = yield* Protocol.decodeResponse(Protocol.encodeResponse(responses[0]!))
      assert.isTrue(refused._tag === "Produced" && refused.results[1]!._tag === "Refused" && refused.results[1]!.error instanceof Topics.TopicNotFound)
      for (const message of requests.map(Protocol.encodeRequest)) {
        for (let cut = 1; cut < message.length; cut++) {
          const failed = yield* Effect.flip(Protocol.decodeRequest(message.subarray(0, cut)))
          assert.isString(failed.message)
        }
      }
      // an absurd handle count (after the form byte and the group's and topic's 5 bytes each)
      const huge = Protocol.encodeRequest(requests[1]!).slice()
      new DataView(huge.buffer).setUint32(11, 0xffff_ffff, true)
      assert.strictEqual((yield* Effect.flip(Protocol.decodeRequest(huge))).name, "Malformed")
      // a poll in the Pop's form missing its invisibility, or asking for a fraction of a message
      const popForm = Protocol.encodeRequest(requests[3]!)[0]!
      for (const poll of [{ group: "g", topic: "t", maxMessages: 3, pollMillis: 5 }, { group: "g", topic: "t", maxMessages: 1.5, invisibleMillis: 10 }]) {
        assert.strictEqual((yield* Effect.flip(Protocol.decodeRequest(Wire.writePoll(popForm, poll)))).name, "Malformed")
      }
    }))

  it.effect("a long poll over the wire is woken by a send", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const parked = yield* Effect.forkChild(client.pop({
          group: "g",
          topic: "t",
          maxMessages: 1,
          invisibleDuration: "30 seconds",
          pollTimeout: "20 seconds"
        }))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow
        assert.isUndefined(parked.pollUnsafe())
        yield* client.send([message("t", "wake")])
        assert.deepStrictEqual((yield* Fiber.join(parked)).map((r) => text(r.message)), ["wake"])
      })))

  it.effect("transactions and recalls work over the wire", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        yield* client.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* client.createTopic({ name: "d", kind: "DELAY", queues: 1 })
        const [half] = yield* client.send([message("tx", "half")], { transactional: true })
        yield* client.endTransaction("tx", half!.messageId, "COMMIT")
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const [delayed] = yield* client.send([message("d", "later", { deliveryTimestamp: now + 60_000 })])
        assert.strictEqual(yield* client.recall("d", delayed!.recallHandle!), delayed!.messageId)
        const received = yield* client.pop({ group: "g", topic: "tx", maxMessages: 1, invisibleDuration: "10 seconds" })
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["half"])
      })))

  it.effect("a message forwarded over the wire reaches %DLQ%<group> and is not delivered again; a stale handle fails typed", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        yield* client.createTopic({ name: "t", kind: "NORMAL", queues: 1 })
        const [sent] = yield* client.send([message("t", "poison")])
        const [received] = yield* client.pop({ group: "g", topic: "t", maxMessages: 1, invisibleDuration: "10 seconds" })
        yield* client.forwardToDeadLetter("g", "t", received!.receiptHandle)
        const dead = yield* client.pull({ topic: "%DLQ%g", queueId: 0, offset: 0, maxCount: 10 })
        assert.deepStrictEqual(dead.messages.map((m) => [m.messageId, m.userProperties.DLQ_ORIGIN_TOPIC, m.userProperties.DLQ_ORIGIN_MESSAGE_ID]), [
          [sent!.messageId, "t", sent!.messageId]
        ])
        const again = yield* Effect.flip(client.forwardToDeadLetter("g", "t", received!.receiptHandle))
        assert.isTrue(again instanceof Consumption.ReceiptHandleStale)
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* client.pop({ group: "g", topic: "t", maxMessages: 1, invisibleDuration: "10 seconds" }), [])
      })))

  it.effect("a group is described with the defaults until it is set, then with its settings; a bad name is IllegalConsumerGroup", () =>
    overTheWire((client, transport) =>
      Effect.gen(function*() {
        const defaults = yield* client.describeGroup("g")
        assert.isTrue(defaults instanceof ConsumerGroup.ConsumerGroup)
        assert.deepStrictEqual(
          [defaults.name, defaults.maxDeliveryAttempts, defaults.fifo, defaults.retryPolicy],
          ["g", ConsumerGroup.defaultMaxDeliveryAttempts, false, ConsumerGroup.defaultRetryPolicy]
        )
        const settings = new ConsumerGroup.ConsumerGroup({
          name: "g" as ConsumerGroup.ConsumerGroupName,
          maxDeliveryAttempts: 3,
          fifo: true,
          retryPolicy: ConsumerGroup.defaultExponentialRetryPolicy
        })
        yield* client.setGroup(settings)
        assert.deepStrictEqual(yield* client.describeGroup("g"), settings)
        assert.isTrue((yield* Effect.flip(client.describeGroup("bad name!"))) instanceof ConsumerGroup.IllegalConsumerGroup)
        // a client of another build could send any name: the broker checks it
        const raw = yield* Multiplex.requester(yield* transport.connect("mem://broker"))
        const request = Protocol.encodeRequest({ _tag: "SetGroup", group: { ...settings, name: "bad name!" } })
        const answer = yield* Protocol.decodeResponse((yield* raw.request(Frame.Type.Broker, request, "10 seconds")).payload)
        assert.isTrue(answer._tag === "Failed" && answer.error instanceof ConsumerGroup.IllegalConsumerGroup)
      })))

  it.effect("groups and topics are listed, and topics updated and deleted, over the wire", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* client.listTopics, [])
        yield* client.createTopic({ name: "a", kind: "NORMAL", queues: 1 })
        yield* client.createTopic({ name: "b", kind: "FIFO", queues: 2, flush: "sync" })
        assert.deepStrictEqual(yield* client.listTopics, [
          { name: "a", kind: "NORMAL", queues: 1, flush: "async" },
          { name: "b", kind: "FIFO", queues: 2, flush: "sync" }
        ])
        const grown = yield* client.updateTopic("a", { queues: 3, flush: "sync" })
        assert.deepStrictEqual([grown.name, grown.queues, grown.flush, grown.bounds.length], ["a", 3, "sync", 3])
        assert.isTrue((yield* Effect.flip(client.updateTopic("a", { queues: 2 }))) instanceof Topics.IllegalTopicChange)
        yield* client.deleteTopic("b")
        assert.isTrue((yield* Effect.flip(client.deleteTopic("b"))) instanceof Topics.TopicNotFound)
        assert.deepStrictEqual((yield* client.listTopics).map((t) => [t.name, t.queues]), [["a", 3]])
        yield* client.setGroup(new ConsumerGroup.ConsumerGroup({ name: "configured" as ConsumerGroup.ConsumerGroupName, maxDeliveryAttempts: 5 }))
        yield* client.pop({ group: "used", topic: "a", maxMessages: 1, invisibleDuration: "1 second" })
        const groups = yield* client.listGroups
        assert.deepStrictEqual(groups.map((g) => [g.name, g.maxDeliveryAttempts]), [["configured", 5], ["used", ConsumerGroup.defaultMaxDeliveryAttempts]])
      })))

  it.effect("a long poll for transaction checks over the wire waits, and is woken by the check", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        yield* client.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [half] = yield* client.send([message("tx", "undecided")], { transactional: true })
        // longer than the request timeout (30 s): the client allows for the wait
        const waiting = yield* Effect.forkChild(client.awaitChecks(10, 60_000))
        yield* TestClock.adjust("5 seconds")
        assert.isUndefined(waiting.pollUnsafe(), "no check before the first delay")
        yield* TestClock.adjust("1 second")
        const checks = yield* Fiber.join(waiting)
        assert.deepStrictEqual(checks.map((c) => [c.transactionId, c.attempt, text(c.message)]), [[half!.messageId, 1, "undecided"]])
        yield* client.endTransaction("tx", half!.messageId, "ROLLBACK")
        const empty = yield* Effect.forkChild(client.awaitChecks(10, 40_000))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow // the request reaches the broker
        yield* TestClock.adjust("40 seconds")
        assert.deepStrictEqual(yield* Fiber.join(empty), [], "a poll that sees no check ends empty at its time, not timed out")
      })))

  it.effect("a check answered over the wire with a commit delivers the message", () =>
    overTheWire((client) =>
      Effect.gen(function*() {
        yield* client.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* client.send([message("tx", "checked")], { transactional: true })
        yield* TestClock.adjust("6 seconds")
        const [check] = yield* client.awaitChecks(1, 0)
        yield* client.endTransaction("tx", check!.transactionId, "COMMIT")
        const received = yield* client.pop({ group: "g", topic: "tx", maxMessages: 1, invisibleDuration: "10 seconds" })
        assert.deepStrictEqual(received.map((r) => text(r.message)), ["checked"])
      })))
})
