// A proxy's native server closing (GOAWAY): the requests its clients made before are answered, new
// connections go elsewhere, and the close ends as soon as its clients have their answers.
import { assert, describe, it } from "@effect/vitest"
import { Member } from "@strait/broker"
import { Producer, StraitClient } from "@strait/client"
import { EmbeddedStore } from "@strait/control"
import { MessageBatch, Transport } from "@strait/core"
import { Server as NativeServer } from "@strait/protocol-native"
import { Proxy } from "@strait/proxy"
import { SimDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Effect, Exit, Fiber, Layer, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Node } from "../src/index.ts"

// a broker and a proxy in memory, with no server of the client protocol yet
const cluster = Proxy.Proxy.layerCluster().pipe(
  Layer.provideMerge(Member.layer({ brokerId: "broker-0", directory: "/strait/broker", listen: "mem://broker", adoptTopics: true }).pipe(
    Layer.provide(SimDisk.layer()),
    Layer.provide(Layer.effectDiscard(Node.provision({ topics: [{ name: "orders", kind: "NORMAL", queues: 1 }] })))
  )),
  Layer.provideMerge(MemoryTransport.layerLocal),
  Layer.provideMerge(EmbeddedStore.layerMemory)
)

// runs `effect` while moving the clock in 10 ms steps; it must end within `millis` of that clock
const settle = <A, E, R>(effect: Effect.Effect<A, E, R>, millis = 5000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    for (let moved = 0; moved < millis && fiber.pollUnsafe() === undefined; moved += 10) yield* TestClock.adjust("10 millis")
    if (fiber.pollUnsafe() === undefined) return assert.fail(`not done within ${millis} ms`)
    return yield* Fiber.join(fiber)
  })

describe("the native server's drain", () => {
  it.effect("a receive parked when the server closes is answered (with a message sent meanwhile), a connection arriving during the drain is closed, and the close ends long before its deadline", () =>
    Effect.gen(function*() {
      const draining = yield* Scope.make()
      yield* Layer.buildWithScope(NativeServer.layer({ listen: "mem://draining", drainTimeout: "1 minute" }), draining)
      yield* Layer.build(NativeServer.layer({ listen: "mem://staying" }))
      const consumer = yield* StraitClient.make({ endpoints: ["mem://draining"], clientId: "consumer" })
      const producer = yield* Producer.make({}).pipe(
        Effect.provideService(StraitClient.StraitClient, yield* StraitClient.make({ endpoints: ["mem://staying"], clientId: "producer" }))
      )

      const receive = yield* Effect.forkChild(
        consumer.call({ _tag: "Receive", group: "g", topic: "orders", maxMessages: 8, pollMillis: 20_000 }, "Received", 20_000)
      )
      yield* TestClock.adjust("100 millis")
      const closing = yield* Effect.forkChild(Scope.close(draining, Exit.void))
      yield* TestClock.adjust("10 millis")

      const late = yield* (yield* Transport.Transport).connect("mem://draining")
      yield* settle(Effect.repeat(late.state, { until: (state) => state === "closed" }), 1000)

      yield* settle(producer.send({ topic: "orders", body: "during the drain" }))
      const answer = yield* settle(Fiber.join(receive))
      const messages = MessageBatch.decodeStored(answer.messages)
      assert.isTrue(Result.isSuccess(messages))
      if (Result.isSuccess(messages)) assert.deepStrictEqual(messages.success.map((m) => new TextDecoder().decode(m.body)), ["during the drain"])

      // the client closed the drained connection once answered: the close did not wait for its deadline
      yield* settle(Fiber.join(closing), 1000)
    }).pipe(Effect.scoped, Effect.provide(cluster)))
})
