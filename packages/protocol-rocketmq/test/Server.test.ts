import { assert, describe, it } from "@effect/vitest"
import * as Grpc from "@grpc/grpc-js"
import { Broker, Server as BrokerServer } from "@strait/broker"
import { Proxy } from "@strait/proxy"
import { SimDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { Protos, Server } from "../src/index.ts"

/** A broker on a simulated disk behind a proxy and the RocketMQ server on a free port, in `scope`. */
const serve = (scope: Scope.Scope) =>
  Effect.gen(function*() {
    const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
    const network = yield* Layer.build(Layer.fresh(MemoryTransport.layerLocal))
    const broker = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory: "/data/broker" }))).pipe(Effect.provideContext(disk))
    yield* Layer.build(BrokerServer.layer("mem://broker")).pipe(Effect.provideContext(Context.merge(broker, network)))
    yield* Context.get(broker, Broker.Broker).createTopic({ name: "t", kind: "NORMAL", queues: 1 })
    const proxy = yield* Layer.build(Layer.fresh(Proxy.Proxy.layer({ broker: "mem://broker" }))).pipe(Effect.provideContext(network))
    const server = yield* Layer.build(Server.RocketMQServer.layer({ host: "127.0.0.1", port: 0 })).pipe(
      Effect.provideContext(proxy),
      Scope.provide(scope)
    )
    return { ...Context.get(server, Server.RocketMQServer), proxy: Context.get(proxy, Proxy.Proxy) }
  })

const clientOf = (port: number) => {
  const Client = Grpc.makeGenericClientConstructor(Protos.messagingService(), "MessagingService")
  return new Client(`127.0.0.1:${port}`, Grpc.credentials.createInsecure()) as any
}

const metadata = () => {
  const m = new Grpc.Metadata()
  m.set("x-mq-client-id", "test-client")
  return m
}

/** Every response of a server stream, and how it ended. */
const collect = (stream: any, responses: Array<any> = []) =>
  Effect.callback<{ readonly responses: Array<any>; readonly error?: Grpc.ServiceError }>((resume) => {
    stream.on("data", (response: any) => responses.push(response))
    stream.on("error", (error: Grpc.ServiceError) => resume(Effect.succeed({ responses, error })))
    stream.on("end", () => resume(Effect.succeed({ responses })))
  })

describe("the RocketMQ gRPC server", () => {
  it.effect("a drain answers a parked long poll at once and ends telemetry streams", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { port, proxy } = yield* serve(scope)
      const client = clientOf(port)
      const telemetry = client.Telemetry(metadata())
      const commands: Array<any> = []
      const telemetryEnded = yield* Effect.forkChild(collect(telemetry, commands))
      telemetry.write({ settings: { client_type: "PRODUCER", publishing: { topics: [{ name: "t" }] } } })
      const ioTurn = Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      while (commands.length === 0) yield* ioTurn
      assert.strictEqual(commands[0]?.settings?.publishing?.max_body_size, 4 * 1024 * 1024 - 17 * 1024)
      const poll = client.ReceiveMessage({
        group: { name: "g" },
        message_queue: { topic: { name: "t" } },
        batch_size: 32,
        invisible_duration: { seconds: 30 },
        long_polling_timeout: { seconds: 20 }
      }, metadata(), { deadline: Date.now() + 60_000 })
      const polled = yield* Effect.forkChild(collect(poll))
      // wait (on I/O, not on time) until the poll is parked; the test clock never moves, so only
      // the drain can end it
      while ((yield* proxy.parkedReceives) === 0) yield* ioTurn
      yield* Scope.close(scope, Exit.void)
      const answer = yield* Fiber.join(polled)
      assert.isUndefined(answer.error)
      assert.strictEqual(answer.responses.find((r: any) => r.status !== undefined && r.status !== null)?.status.code, "MESSAGE_NOT_FOUND")
      // the stream ends in order (the client opens another one elsewhere), without an error
      const stream = yield* Fiber.join(telemetryEnded)
      assert.isUndefined(stream.error)
      client.close()
    }))

  it.effect("a call without a client id is answered CLIENT_ID_REQUIRED; an unknown topic TOPIC_NOT_FOUND", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { port } = yield* serve(scope)
      const client = clientOf(port)
      const call = (request: object, headers: Grpc.Metadata) =>
        Effect.callback<any>((resume) => {
          client.QueryRoute(request, headers, (error: Grpc.ServiceError | null, response: any) => resume(error === null ? Effect.succeed(response) : Effect.die(error)))
        })
      const anonymous = yield* call({ topic: { name: "t" } }, new Grpc.Metadata())
      assert.strictEqual(anonymous.status.code, "CLIENT_ID_REQUIRED")
      const missing = yield* call({ topic: { name: "nowhere" } }, metadata())
      assert.strictEqual(missing.status.code, "TOPIC_NOT_FOUND")
      const found = yield* call({ topic: { name: "t" }, endpoints: { addresses: [{ host: "127.0.0.1", port }] } }, metadata())
      assert.strictEqual(found.status.code, "OK")
      assert.deepStrictEqual(found.message_queues.map((q: any) => [q.id, q.permission, q.accept_message_types]), [[0, "READ_WRITE", ["NORMAL"]]])
      client.close()
      yield* Scope.close(scope, Exit.void)
    }))
})
