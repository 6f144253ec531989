// The Effect-native client against an embedded node: producers, consumers and their rules.
import { assert, describe, it } from "@effect/vitest"
import { Admin, Consumer, Producer, PullConsumer, StraitClient } from "@strait/client"
import { Deferred, Effect, Exit, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Strait } from "../src/index.ts"

const node = (topics: ReadonlyArray<{ readonly name: string; readonly kind: "NORMAL" | "FIFO" | "TRANSACTION" }>) =>
  Producer.Producer.layer().pipe(Layer.provideMerge(Strait.embedded({ topics: topics.map((topic) => ({ ...topic, queues: 2 })), client: { clientId: "spec" } })))

const text = (body: Uint8Array) => new TextDecoder().decode(body)

// moves the clock in small steps until `done` holds (the consumer's receives and handlers run between)
const until = (done: Effect.Effect<boolean>, steps = 200) =>
  Effect.gen(function*() {
    for (let i = 0; i < steps; i++) {
      if (yield* done) return
      yield* TestClock.adjust("100 millis")
    }
    assert.fail("the condition did not hold in time")
  })

// runs `effect` while moving the clock in small steps (the in-process network delivers between steps)
const settle = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < 500 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("10 millis")
    return yield* Fiber.join(fiber)
  })

// A message whose first delivery is refused (`refuseFirst` sees each delivery attempt and says
// whether to refuse it) must come again after the retry delay (5 s), its attempt one higher, and
// only once more.
const comesBackOnce = (
  consume: (retryDelay: () => "5 seconds", attempt: (deliveryAttempt: number) => Effect.Effect<boolean>) => Effect.Effect<unknown, unknown, StraitClient.StraitClient>
) =>
  Effect.gen(function*() {
    const producer = yield* Producer.Producer
    yield* settle(producer.send({ topic: "orders", body: "flaky" }))
    const attempts = yield* Ref.make<ReadonlyArray<number>>([])
    const consumer = yield* Effect.forkChild(consume(() => "5 seconds", (deliveryAttempt) =>
      Effect.map(Ref.updateAndGet(attempts, (all) => [...all, deliveryAttempt]), (all) => all.length === 1)))
    yield* until(Effect.map(Ref.get(attempts), (all) => all.length === 1))
    yield* TestClock.adjust("3 seconds")
    assert.deepStrictEqual(yield* Ref.get(attempts), [1], "not before the retry delay")
    yield* until(Effect.map(Ref.get(attempts), (all) => all.length === 2))
    yield* TestClock.adjust("2 minutes")
    yield* settle(Fiber.interrupt(consumer))
    assert.deepStrictEqual(yield* Ref.get(attempts), [1, 2])
  }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }])))

describe("the client against an embedded node", () => {
  it.effect("a handler's success acknowledges: each message is handled once", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      for (const body of ["a", "b", "c"]) yield* settle(producer.send({ topic: "orders", body }))
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const consumer = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis" }, ({ message }) =>
        Ref.update(seen, (all) => [...all, text(message.body)])))
      yield* until(Effect.map(Ref.get(seen), (all) => all.length === 3))
      // nothing comes again, however long the consumer runs
      yield* TestClock.adjust("2 minutes")
      yield* settle(Fiber.interrupt(consumer))
      assert.deepStrictEqual([...(yield* Ref.get(seen))].sort(), ["a", "b", "c"])
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a handler's failure gives the message back: it comes again after the retry delay with its attempt one higher", () =>
    comesBackOnce((retryDelay, refuse) =>
      Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis", retryDelay }, ({ message }) =>
        Effect.flatMap(refuse(message.deliveryAttempt), (refused) => refused ? Effect.fail("not yet") : Effect.void))))

  it.effect("a consumer as a Stream: nack gives the message back, to come again after the retry delay with its attempt one higher", () =>
    comesBackOnce((retryDelay, refuse) =>
      Stream.runForEach(Consumer.stream({ group: "g", topic: "orders", pollTime: "200 millis", retryDelay }), (received) =>
        Effect.flatMap(refuse(received.message.deliveryAttempt), (refused) => refused ? received.nack : received.ack))))

  it.effect("a consumer as a Stream: each message once; an acknowledged message never comes again", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      for (const body of ["a", "b", "c"]) yield* settle(producer.send({ topic: "orders", body }))
      const options = { group: "g", topic: "orders", pollTime: "200 millis" } as const
      const first = yield* settle(Consumer.stream(options).pipe(
        Stream.take(3),
        Stream.mapEffect((received) => Effect.as(received.ack, text(received.message.body))),
        Stream.runCollect
      ))
      assert.deepStrictEqual([...first].sort(), ["a", "b", "c"])
      // a later stream of the group gets nothing, however long it runs
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const later = yield* Effect.forkChild(Stream.runForEach(Consumer.stream(options), (received) =>
        Effect.andThen(Ref.update(seen, (all) => [...all, text(received.message.body)]), received.ack)))
      yield* TestClock.adjust("2 minutes")
      yield* settle(Fiber.interrupt(later))
      assert.deepStrictEqual(yield* Ref.get(seen), [])
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a Stream that ends gives back at once what it received and did not settle: the next consumer gets it while the first client still lives", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      const bodies = Array.from({ length: 6 }, (_, i) => `m${i}`)
      for (const body of bodies) yield* settle(producer.send({ topic: "orders", body }))
      // two taken (the first acknowledged, the second not), the rest prefetched: then the stream ends
      let handed = 0
      const taken = yield* settle(Consumer.stream({ group: "g", topic: "orders", pollTime: "200 millis", prefetch: 10 }).pipe(
        Stream.take(2),
        Stream.mapEffect((received) => handed++ === 0 ? Effect.as(received.ack, received) : Effect.succeed(received)),
        Stream.runCollect
      ))
      const late = yield* settle(Effect.flip(taken[1]!.ack))
      assert.strictEqual(late._tag, "InvalidReceiptHandle", "settling after the end fails: the message went back")
      // the client lives on, so without a release its renewals would keep the rest invisible for good
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const next = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis" }, ({ message }) =>
        Ref.update(seen, (all) => [...all, text(message.body)])))
      yield* until(Effect.map(Ref.get(seen), (all) => all.length === 5))
      yield* settle(Fiber.interrupt(next))
      assert.deepStrictEqual([...(yield* Ref.get(seen))].sort(), bodies.filter((body) => body !== text(taken[0]!.message.body)).sort())
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a Stream whose receive fails for good fails with that error: a topic that does not exist", () =>
    Effect.gen(function*() {
      const failure = yield* settle(Effect.flip(Stream.runDrain(Consumer.stream({ group: "g", topic: "nowhere", pollTime: "200 millis" }))))
      assert.strictEqual(failure._tag, "TopicNotFound")
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a transaction commits when its body succeeds and rolls back when it fails: only committed messages are delivered", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      yield* settle(producer.transaction((send) => send({ topic: "payments", body: "committed" })))
      const failed = yield* settle(Effect.flip(producer.transaction((send) => Effect.andThen(send({ topic: "payments", body: "rolled back" }), Effect.fail("abort")))))
      assert.strictEqual(failed, "abort")
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const consumer = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "payments", pollTime: "200 millis" }, ({ message }) =>
        Ref.update(seen, (all) => [...all, text(message.body)])))
      yield* until(Effect.map(Ref.get(seen), (all) => all.length === 1))
      yield* TestClock.adjust("2 minutes")
      yield* settle(Fiber.interrupt(consumer))
      assert.deepStrictEqual(yield* Ref.get(seen), ["committed"])
    }).pipe(Effect.provide(node([{ name: "payments", kind: "TRANSACTION" }]))))

  it.effect("interrupting a consumer mid-batch loses nothing: what it had received but not handled goes to the next consumer", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`)
      for (const body of bodies) yield* settle(producer.send({ topic: "orders", body }))
      const handled = yield* Ref.make<ReadonlyArray<string>>([])
      // a slow handler, with the whole batch prefetched
      const first = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis", prefetch: 10 }, ({ message }) =>
        Effect.andThen(Effect.sleep("1 second"), Ref.update(handled, (all) => [...all, text(message.body)]))))
      yield* until(Effect.map(Ref.get(handled), (all) => all.length >= 2))
      yield* settle(Fiber.interrupt(first))
      const second = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis" }, ({ message }) =>
        Ref.update(handled, (all) => [...all, text(message.body)])))
      yield* until(Effect.map(Ref.get(handled), (all) => new Set(all).size === 10))
      yield* settle(Fiber.interrupt(second))
      assert.deepStrictEqual([...new Set(yield* Ref.get(handled))].sort(), [...bodies].sort())
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("sends and acknowledgements made together travel together: 8 messages in one Send and one Ack request", () =>
    Effect.gen(function*() {
      const requests = new Map<string, number>()
      // the client as the producer and the consumer see it, counting the requests it makes
      const counting = Layer.effect(
        StraitClient.StraitClient,
        Effect.map(StraitClient.StraitClient, (client) =>
          StraitClient.StraitClient.of({
            ...client,
            call: (request, expected, extra) => {
              requests.set(request._tag, (requests.get(request._tag) ?? 0) + 1)
              return client.call(request, expected, extra)
            }
          }))
      )
      const bodies = Array.from({ length: 8 }, (_, i) => `m${i}`)
      yield* settle(Effect.gen(function*() {
        const producer = yield* Producer.Producer
        yield* Effect.forEach(bodies, (body) => producer.send({ topic: "orders", body }), { concurrency: "unbounded" })
      }).pipe(Effect.provide(Producer.Producer.layer().pipe(Layer.provide(counting)))))
      assert.strictEqual(requests.get("Send"), 1)
      // every handler holds its message until all 8 are in hand, then all finish at once
      const handled = yield* Ref.make<ReadonlyArray<string>>([])
      const all = yield* Deferred.make<void>()
      const consumer = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis", concurrency: 8, prefetch: 8 }, ({ message }) =>
        Effect.gen(function*() {
          const now = yield* Ref.updateAndGet(handled, (seen) => [...seen, text(message.body)])
          if (now.length === 8) yield* Deferred.succeed(all, undefined)
          yield* Deferred.await(all)
        })).pipe(Effect.provide(counting)))
      yield* until(Effect.map(Ref.get(handled), (seen) => seen.length === 8))
      // nothing comes again: all 8 were acknowledged, in one request
      yield* TestClock.adjust("2 minutes")
      yield* settle(Fiber.interrupt(consumer))
      assert.deepStrictEqual([...(yield* Ref.get(handled))].sort(), bodies)
      assert.strictEqual(requests.get("Ack"), 1)
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("refusals are typed: a topic that does not exist, a message over the limits", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      const missing = yield* settle(Effect.flip(producer.send({ topic: "nowhere", body: "x" })))
      assert.strictEqual(missing._tag, "TopicNotFound")
      const empty = yield* settle(Effect.flip(producer.send({ topic: "orders", body: "" })))
      assert.strictEqual(empty._tag, "BadRequest")
      assert.strictEqual(empty.cause, "MessageBodyEmpty")
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a namespace over its quota gets Throttled, saying when to try again; within it, sends pass", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      // one send after another (each takes a few ms of the clock, which refills the bucket a little)
      let passed = 0
      let throttled: { readonly _tag: string; readonly reason: string } | undefined
      while (throttled === undefined && passed < 20) {
        const result = yield* settle(Effect.result(producer.send({ topic: "orders", body: `m${passed}` })))
        if (result._tag === "Success") passed++
        else throttled = result.failure
      }
      assert.isAtLeast(passed, 5)
      assert.isBelow(passed, 10)
      assert.strictEqual(throttled?._tag, "Throttled")
      assert.include(throttled?.reason, "over its quota of 5 messages/s")
      yield* TestClock.adjust("1 second")
      yield* settle(producer.send({ topic: "orders", body: "a second later" }))
    }).pipe(Effect.provide(Producer.Producer.layer().pipe(Layer.provideMerge(Strait.embedded({
      topics: [{ name: "orders", kind: "NORMAL", queues: 2 }],
      quotas: { default: { messagesPerSecond: 5 } },
      client: { clientId: "spec" }
    }))))))

  const Order = Schema.Struct({ id: Schema.Int, amount: Schema.Number })
  const orders = Producer.schema(Order)

  // the two ways to consume typed messages: a handler (`run`), and a stream whose elements are acknowledged once seen
  const typedConsumers = {
    run: (onDecodeError: Consumer.DecodeErrorPolicy, onValue: (value: typeof Order.Type) => Effect.Effect<void>) =>
      Consumer.schema(Order, { onDecodeError }).run({ group: "g", topic: "orders", pollTime: "200 millis" }, onValue),
    stream: (onDecodeError: Consumer.DecodeErrorPolicy, onValue: (value: typeof Order.Type) => Effect.Effect<void>) =>
      Stream.runForEach(Consumer.schema(Order, { onDecodeError }).stream({ group: "g", topic: "orders", pollTime: "200 millis" }), (received) =>
        Effect.andThen(onValue(received.value), received.ack))
  }

  for (const [way, consume] of Object.entries(typedConsumers)) {
    it.effect(`typed payloads (${way}): a schema's values go through as values; a body that does not decode goes to the dead-letter topic, never to the consumer`, () =>
      Effect.gen(function*() {
        const producer = yield* Producer.Producer
        yield* settle(orders.send({ id: 1, amount: 9.5 }, { topic: "orders" }))
        yield* settle(producer.send({ topic: "orders", body: "not json" }))
        const values = yield* Ref.make<ReadonlyArray<typeof Order.Type>>([])
        const consumer = yield* Effect.forkChild(consume("dead-letter", (value) => Ref.update(values, (all) => [...all, value])))
        yield* until(Effect.map(Ref.get(values), (all) => all.length === 1))
        // the dead-letter topic exists once the first message went there
        const client = yield* StraitClient.StraitClient
        yield* until(Effect.map(Effect.exit(client.call({ _tag: "DescribeTopic", name: "%DLQ%g" }, "Topic")), Exit.isSuccess))
        const dead = yield* Ref.make<ReadonlyArray<string>>([])
        const deadLetters = yield* Effect.forkChild(Consumer.run({ group: "dlq-reader", topic: "%DLQ%g", pollTime: "200 millis" }, ({ message }) =>
          Ref.update(dead, (all) => [...all, text(message.body)])))
        yield* until(Effect.map(Ref.get(dead), (all) => all.length === 1))
        yield* settle(Fiber.interrupt(consumer))
        yield* settle(Fiber.interrupt(deadLetters))
        assert.deepStrictEqual(yield* Ref.get(values), [{ id: 1, amount: 9.5 }])
        assert.deepStrictEqual(yield* Ref.get(dead), ["not json"])
      }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

    it.effect(`typed payloads with the fail policy (${way}): the consumer stops with BodyDecodeFailed and the message stays for another consumer`, () =>
      Effect.gen(function*() {
        const producer = yield* Producer.Producer
        yield* settle(producer.send({ topic: "orders", body: "{\"id\": \"not a number\"}" }))
        const failure = yield* settle(Effect.flip(consume("fail", () => Effect.void)))
        assert.strictEqual(failure._tag, "BodyDecodeFailed")
        const raw = yield* Ref.make<ReadonlyArray<string>>([])
        const reader = yield* Effect.forkChild(Consumer.run({ group: "g", topic: "orders", pollTime: "200 millis" }, ({ message }) =>
          Ref.update(raw, (all) => [...all, text(message.body)])))
        yield* until(Effect.map(Ref.get(raw), (all) => all.length === 1))
        yield* settle(Fiber.interrupt(reader))
      }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))
  }

  it.effect("administration from the client: topics created, listed and described; a group's lag falls as it consumes", () =>
    Effect.gen(function*() {
      const created = yield* settle(Admin.createTopic({ name: "audit", kind: "NORMAL", queues: 2 }))
      assert.deepStrictEqual(created, { name: "audit", kind: "NORMAL", queues: 2, flush: "async" })
      assert.deepStrictEqual((yield* settle(Admin.topics)).map((topic) => topic.name).sort(), ["audit", "orders"])
      const duplicate = yield* settle(Effect.flip(Admin.createTopic({ name: "audit", kind: "NORMAL" })))
      assert.strictEqual(duplicate._tag, "TopicAlreadyExists")
      yield* settle(Admin.setGroup({ name: "auditors", maxDeliveryAttempts: 3, fifo: false }))
      assert.strictEqual((yield* settle(Admin.describeGroup("auditors"))).maxDeliveryAttempts, 3)
      const producer = yield* Producer.Producer
      for (const body of ["a", "b", "c", "d"]) yield* settle(producer.send({ topic: "audit", body }))
      const lagOf = Effect.map(Admin.lag("auditors"), (queues) => queues.filter((queue) => queue.topic === "audit").reduce((sum, queue) => sum + queue.lag, 0))
      assert.strictEqual(yield* settle(lagOf), 4)
      const handled = yield* Ref.make(0)
      const consumer = yield* Effect.forkChild(Consumer.run({ group: "auditors", topic: "audit", pollTime: "200 millis" }, () => Ref.update(handled, (n) => n + 1)))
      yield* until(Effect.map(Ref.get(handled), (n) => n === 4))
      yield* settle(Fiber.interrupt(consumer))
      // acknowledged progress is committed every second
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* settle(lagOf), 0)
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))

  it.effect("a pull consumer reads each queue from its group's committed offset; after a commit, a new one starts where it left off", () =>
    Effect.gen(function*() {
      const producer = yield* Producer.Producer
      for (const body of ["a", "b", "c", "d", "e"]) yield* settle(producer.send({ topic: "orders", body }))
      const readAll = (consumer: PullConsumer.PullConsumer) =>
        Effect.gen(function*() {
          const bodies: Array<string> = []
          for (const queue of yield* settle(consumer.queues)) {
            bodies.push(...(yield* settle(consumer.pull(queue, 32))).map((message) => text(message.body)))
            yield* settle(consumer.commit(queue))
          }
          return bodies.sort()
        })
      const first = yield* settle(PullConsumer.make({ group: "reports", topic: "orders" }))
      assert.deepStrictEqual(yield* readAll(first), ["a", "b", "c", "d", "e"])
      assert.deepStrictEqual(yield* readAll(first), [], "its position moved past what it read")
      for (const body of ["f", "g"]) yield* settle(producer.send({ topic: "orders", body }))
      const second = yield* settle(PullConsumer.make({ group: "reports", topic: "orders" }))
      assert.deepStrictEqual(yield* readAll(second), ["f", "g"], "a new consumer of the group starts at the committed offsets")
      const other = yield* settle(PullConsumer.make({ group: "other", topic: "orders" }))
      assert.strictEqual((yield* readAll(other)).length, 7, "another group reads from the start")
    }).pipe(Effect.provide(node([{ name: "orders", kind: "NORMAL" }]))))
})
