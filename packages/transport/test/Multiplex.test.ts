import { assert, describe, it } from "@effect/vitest"
import { Frame, Transport } from "@strait/core"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { MemoryTransport, Multiplex } from "../src/index.ts"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (frame: Frame.Frame) => new TextDecoder().decode(frame.payload)

/** A listener whose first connection is served by `handle`, and a requester connected to it. */
const setup = <E>(handle: (request: Frame.Frame) => Effect.Effect<Uint8Array, E>) =>
  Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const listener = yield* transport.listen("mem://server")
    const connection = yield* transport.connect(listener.address)
    const server = yield* Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))
    yield* Effect.forkScoped(Multiplex.serve(server, handle, { concurrency: 16 }).pipe(Effect.ignore))
    return { requester: yield* Multiplex.requester(connection), server }
  })

/** Yields until `condition` holds; the memory network moves frames on other fibers. */
const until = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000 && !(yield* condition); i++) yield* Effect.yieldNow
    assert.isTrue(yield* condition)
  })

const run = <A, E>(body: Effect.Effect<A, E, Transport.Transport | import("effect").Scope.Scope>) =>
  body.pipe(Effect.provide(Layer.fresh(MemoryTransport.layerLocal)))

describe("Multiplex", () => {
  it.effect("concurrent requests each get their own reply, even when replies come back out of order", () =>
    run(Effect.gen(function*() {
      let arrived = 0
      const { requester } = yield* setup((request) =>
        // later requests answer sooner
        Effect.sync(() => arrived++).pipe(
          Effect.andThen(Effect.sleep(`${100 - request.payload.length} millis`)),
          Effect.as(request.payload)
        ))
      const fibers = yield* Effect.forEach(["a", "bb", "ccc", "dddd"], (p) =>
        Effect.forkChild(requester.request(Frame.Type.Echo, bytes(p), "1 second")))
      yield* until(Effect.sync(() => arrived === 4))
      yield* TestClock.adjust("100 millis")
      const replies = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(replies.map(text), ["a", "bb", "ccc", "dddd"])
      assert.isTrue(replies.every((r) => r.type === Frame.responseType(Frame.Type.Echo)))
      assert.strictEqual(yield* requester.inFlight, 0)
    })))

  it.effect("a request with no reply in time fails with RequestTimeout and forgets its slot", () =>
    run(Effect.gen(function*() {
      const { requester } = yield* setup(() => Effect.never)
      const fiber = yield* Effect.forkChild(Effect.flip(requester.request(Frame.Type.Echo, bytes("x"), "2 seconds")))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "RequestTimeout")
      assert.strictEqual(yield* requester.inFlight, 0)
    })))

  it.effect("a request times out on time behind answered requests and behind a later deadline", () =>
    run(Effect.gen(function*() {
      const { requester } = yield* setup((request) => text(request) === "answer" ? Effect.succeed(request.payload) : Effect.never)
      // answered requests leave their deadlines behind; a long one keeps the timer armed far away
      for (let i = 0; i < 3; i++) yield* requester.request(Frame.Type.Echo, bytes("answer"), "1 second")
      const long = yield* Effect.forkChild(Effect.flip(requester.request(Frame.Type.Echo, bytes("long"), "1 minute")))
      yield* TestClock.adjust("2 seconds")
      const short = yield* Effect.forkChild(Effect.flip(requester.request(Frame.Type.Echo, bytes("short"), "3 seconds")))
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(short.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(short))._tag, "RequestTimeout")
      assert.isUndefined(long.pollUnsafe())
      assert.strictEqual(yield* requester.inFlight, 1)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Fiber.join(long))._tag, "RequestTimeout")
      assert.strictEqual(yield* requester.inFlight, 0)
    })))

  it.effect("requests waiting when the connection dies fail with the connection's error", () =>
    run(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { requester, server } = yield* setup(() => Deferred.await(gate).pipe(Effect.as(new Uint8Array(0))))
      const fiber = yield* Effect.forkChild(Effect.flip(requester.request(Frame.Type.Echo, bytes("x"), "1 minute")))
      yield* Effect.yieldNow
      yield* server.close
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "ConnectionClosed")
      const late = yield* Effect.flip(requester.request(Frame.Type.Echo, bytes("y"), "1 minute"))
      assert.strictEqual(late._tag, "ConnectionClosed")
    })))

  it.effect("after the server's GOAWAY new requests fail with ConnectionDraining, in-flight ones are answered, and the requester then closes the connection", () =>
    run(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let arrived = 0
      const { requester, server } = yield* setup((request) =>
        Effect.sync(() => arrived++).pipe(Effect.andThen(Deferred.await(gate)), Effect.as(request.payload)))
      const inFlight = yield* Effect.forkChild(requester.request(Frame.Type.Echo, bytes("first"), "1 minute"))
      yield* until(Effect.sync(() => arrived === 1))
      const draining = yield* Effect.forkChild(server.drain("30 seconds"))
      yield* until(Effect.map(requester.connection.state, (state) => state === "draining"))
      const refused = yield* Effect.flip(requester.request(Frame.Type.Echo, bytes("second"), "1 minute"))
      assert.strictEqual(refused._tag, "ConnectionDraining")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(text(yield* Fiber.join(inFlight)), "first")
      // the server's drain ends with the last answer, long before its deadline (the clock never moves)
      yield* Fiber.join(draining)
      assert.strictEqual(yield* requester.connection.state, "closed")
    })))

  it.effect("a requester told GOAWAY with nothing waiting closes the connection at once", () =>
    run(Effect.gen(function*() {
      const { requester, server } = yield* setup((request) => Effect.succeed(request.payload))
      assert.strictEqual(text(yield* requester.request(Frame.Type.Echo, bytes("x"), "1 minute")), "x")
      yield* server.drain("30 seconds")
      assert.strictEqual(yield* requester.connection.state, "closed")
    })))

  it.effect("requests waiting when the requester's scope closes fail with ConnectionClosed rather than wait forever", () =>
    run(Effect.gen(function*() {
      const transport = yield* Transport.Transport
      const listener = yield* transport.listen("mem://server")
      const connection = yield* transport.connect(listener.address)
      const server = yield* Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))
      yield* Effect.forkScoped(Multiplex.serve(server, () => Effect.never, { concurrency: 16 }).pipe(Effect.ignore))
      const inner = yield* Scope.make()
      const requester = yield* Multiplex.requester(connection).pipe(Scope.provide(inner))
      const fiber = yield* Effect.forkChild(Effect.flip(requester.request(Frame.Type.Echo, bytes("x"), "1 minute")))
      yield* until(Effect.map(requester.inFlight, (n) => n === 1))
      yield* Scope.close(inner, Exit.void)
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "ConnectionClosed")
    })))
})
