// Use Strait from an Effect service: an embedded node, a typed producer and a typed consumer.
// Run it with `node examples/effect-service.ts`; point the same code at a cluster by providing
// `StraitClient.layer({ endpoints: ["tcp://proxy:8082"] })` (over TcpTransport) instead of `Strait.embedded`.
import { Consumer, Producer } from "@strait/client"
import { Strait } from "@strait/node"
import { Deferred, Effect, Layer, Ref, Schema } from "effect"

const Order = Schema.Struct({ id: Schema.Int, item: Schema.String, quantity: Schema.Int })
const orders = Producer.schema(Order)

const program = Effect.gen(function*() {
  // send three orders; each send answers with the message's id once it is stored
  for (const [id, item] of [[1, "tea"], [2, "coffee"], [3, "cocoa"]] as const) {
    const receipt = yield* orders.send({ id, item, quantity: 2 }, { topic: "orders", tag: "created", keys: [`order-${id}`] })
    yield* Effect.log(`sent order ${id} as ${receipt.messageId}`)
  }
  // consume them as group "shipping": a handler's success acknowledges its message
  const shipped = yield* Ref.make(0)
  const allShipped = yield* Deferred.make<void>()
  const consumer = Consumer.schema(Order).run({ group: "shipping", topic: "orders" }, (order) =>
    Effect.gen(function*() {
      yield* Effect.log(`shipping ${order.quantity} × ${order.item} (order ${order.id})`)
      if ((yield* Ref.updateAndGet(shipped, (n) => n + 1)) === 3) yield* Deferred.succeed(allShipped, undefined)
    }))
  // the consumer runs until interrupted: here, once every order shipped
  yield* Effect.raceFirst(consumer, Deferred.await(allShipped))
  yield* Effect.log("all orders shipped")
})

program.pipe(
  Effect.provide(Producer.Producer.layer().pipe(Layer.provideMerge(Strait.embedded({ topics: [{ name: "orders", kind: "NORMAL" }] })))),
  Effect.runPromise
)
