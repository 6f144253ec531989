// The Transport contract: every Layer (memory, TCP, and later shared memory and RDMA) runs this
// suite unchanged. A Layer supplies how to listen and how to open a raw byte pipe to a listener, so
// the suite can crash a peer or send bytes that are not frames.
import { assert, describe, it } from "@effect/vitest"
import { Frame, Transport } from "@strait/core"
import { Cause, Effect, Exit, Fiber, Layer, Option, Queue, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Connection } from "../src/index.ts"

export interface ContractSubject<R> {
  readonly name: string
  readonly layer: Layer.Layer<Transport.Transport | R>
  /** An address to listen at; `n` makes it unique within one test. */
  readonly address: (n: number) => string
  /** A raw byte pipe to a listener's address, under the connection engine. */
  readonly rawPipe: (address: string) => Effect.Effect<Connection.Pipe, unknown, Scope.Scope | R>
  /** An address where nothing listens. */
  readonly unreachable: string
  /** Lets real I/O progress (TCP needs the event loop; memory needs nothing). */
  readonly settle: Effect.Effect<void>
}

const echo = Frame.Type.Echo
const reply = Frame.responseType(echo)

const payload = (n: number, size = 8) => {
  const bytes = new Uint8Array(Math.max(size, 4))
  new DataView(bytes.buffer).setUint32(0, n)
  for (let i = 4; i < bytes.length; i++) bytes[i] = (n + i) & 0xff
  return bytes
}
const request = (n: number, size?: number) => Frame.make(echo, n, payload(n, size))
const numberOf = (frame: Frame.Frame) => new DataView(frame.payload.buffer, frame.payload.byteOffset).getUint32(0)

/** Pumps a connection's single-consumer frame stream into a queue the test can take from precisely. */
const inbox = (connection: Transport.Connection) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Frame.Frame, Transport.ConnectionError | Cause.Done>()
    yield* Effect.forkScoped(
      Stream.runForEach(connection.frames, (frame) => Queue.offer(queue, frame)).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Exit.isSuccess(exit) ? Queue.end(queue) : Queue.failCause(queue, exit.cause))
      )
    )
    return queue
  })

/** Answers every request with the same payload, until the connection ends. */
const serveEcho = (connection: Transport.Connection) =>
  Stream.runForEach(connection.frames, (frame) =>
    Frame.isResponse(frame.type)
      ? Effect.void
      : connection.send([Frame.make(reply, frame.correlation, frame.payload)])).pipe(Effect.ignore)

const firstConnection = (listener: Transport.Listener) =>
  Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))

const settledState = <R>(subject: ContractSubject<R>, connection: Transport.Connection, wanted: Transport.ConnectionState) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      if ((yield* connection.state) === wanted) return
      yield* subject.settle
    }
    assert.strictEqual(yield* connection.state, wanted)
  })

export const transportContract = <R>(subject: ContractSubject<R>) =>
  describe(`Transport contract: ${subject.name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, Transport.Transport | R | Scope.Scope>) =>
      body.pipe(Effect.provide(Layer.fresh(subject.layer)))

    const pair = (n = 0) =>
      Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(n))
        const client = yield* transport.connect(listener.address)
        const server = yield* firstConnection(listener)
        return { transport, listener, client, server }
      })

    it.effect("frames arrive in order, whole, in both directions", () =>
      run(Effect.gen(function*() {
        const { client, server } = yield* pair()
        const atServer = yield* inbox(server)
        const atClient = yield* inbox(client)
        const sizes = [0, 1, 7, 100, 4096, 70_000]
        for (let batch = 0; batch < 50; batch++) {
          const frames = Array.from({ length: (batch % 7) + 1 }, (_, i) => request(batch * 10 + i, sizes[(batch + i) % sizes.length]))
          yield* client.send(frames)
          yield* server.send(frames.map((f) => Frame.make(reply, f.correlation, f.payload)))
        }
        const expected = Array.from({ length: 50 }, (_, batch) => Array.from({ length: (batch % 7) + 1 }, (_, i) => batch * 10 + i)).flat()
        const gotServer = yield* Queue.takeN(atServer, expected.length)
        const gotClient = yield* Queue.takeN(atClient, expected.length)
        assert.deepStrictEqual(gotServer.map((f) => f.correlation), expected)
        assert.deepStrictEqual(gotClient.map((f) => f.correlation), expected)
        assert.deepStrictEqual(gotServer.map(numberOf), expected)
        assert.deepStrictEqual(gotServer.map((f) => f.payload.length), gotClient.map((f) => f.payload.length))
      })))

    it.effect("a slow reader suspends the writer, and nothing is dropped", () =>
      run(Effect.gen(function*() {
        // a small inbox, so the buffers between writer and reader are the transport's, not the engine's
        const { client, server } = yield* pair()
        const total = 3_000
        let sent = 0
        const sender = yield* Effect.forkScoped(Effect.gen(function*() {
          for (let i = 0; i < total; i++) {
            yield* client.send([request(i, 16 * 1024)])
            sent++
          }
        }))
        // nobody reads: the sender must stall long before 3,000 × 16 KiB (48 MiB) is out
        let previous = -1
        let stable = 0
        while (stable < 50) {
          yield* subject.settle
          stable = sent === previous ? stable + 1 : 0
          previous = sent
        }
        assert.isBelow(sent, total, "the writer kept going with nobody reading")
        assert.isUndefined(sender.pollUnsafe())
        const received = yield* server.frames.pipe(Stream.take(total), Stream.map((f) => f.correlation), Stream.runCollect)
        yield* Fiber.join(sender)
        assert.deepStrictEqual(received, Array.from({ length: total }, (_, i) => i))
      }).pipe(Effect.provideService(Connection.ConnectionSettings, { ...Connection.ConnectionSettings.defaultValue(), inboxFrames: 64 }))))

    it.effect("16 MiB frames pass in both directions", () =>
      run(Effect.gen(function*() {
        const { client, server } = yield* pair()
        const big = payload(7, 16 * 1024 * 1024)
        const atServer = yield* inbox(server)
        const atClient = yield* inbox(client)
        yield* client.send([Frame.make(echo, 1, big), Frame.make(echo, 2, big)])
        const [first, second] = yield* Queue.takeN(atServer, 2)
        yield* server.send([Frame.make(reply, 3, first!.payload)])
        const [back] = yield* Queue.takeN(atClient, 1)
        for (const frame of [first!, second!, back!]) {
          assert.strictEqual(frame.payload.length, big.length)
          assert.strictEqual(frame.payload[12_345_678], big[12_345_678])
          assert.strictEqual(frame.payload[big.length - 1], big[big.length - 1])
        }
      })))

    it.effect("many concurrent connections each get their own replies", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(0))
        yield* Effect.forkScoped(Stream.runForEach(listener.connections, (c) => Effect.forkScoped(serveEcho(c))))
        const clients = 64
        const answers = yield* Effect.forEach(Array.from({ length: clients }, (_, i) => i), (c) =>
          Effect.gen(function*() {
            const connection = yield* transport.connect(listener.address)
            const replies = yield* inbox(connection)
            yield* connection.send(Array.from({ length: 20 }, (_, i) => request(c * 1000 + i)))
            const got = yield* Queue.takeN(replies, 20)
            return got.map(numberOf)
          }), { concurrency: "unbounded" })
        answers.forEach((got, c) => assert.deepStrictEqual(got, Array.from({ length: 20 }, (_, i) => c * 1000 + i)))
      })))

    it.effect("GOAWAY: the peer sees draining, opens no new requests, finishes in-flight ones, and the drain ends when it closes", () =>
      run(Effect.gen(function*() {
        const { client, server } = yield* pair()
        const atServer = yield* inbox(server)
        const atClient = yield* inbox(client)
        yield* client.send([request(1)]) // in flight when the drain starts
        const inFlight = yield* Queue.take(atServer)
        const draining = yield* Effect.forkScoped(server.drain("10 seconds"))
        yield* settledState(subject, client, "draining")
        const refused = yield* Effect.flip(client.send([request(2)]))
        assert.strictEqual(refused._tag, "ConnectionDraining")
        yield* server.send([Frame.make(reply, inFlight.correlation, inFlight.payload)])
        assert.strictEqual((yield* Queue.take(atClient)).correlation, 1)
        yield* client.send([Frame.make(reply, 9, payload(9))]) // responses still flow
        assert.strictEqual((yield* Queue.take(atServer)).correlation, 9)
        yield* client.close
        yield* Fiber.join(draining)
        assert.strictEqual(yield* server.state, "closed")
        assert.strictEqual(yield* client.state, "closed")
      })))

    it.effect("GOAWAY: at the deadline the drainer closes the connection in order", () =>
      run(Effect.gen(function*() {
        const { client, server } = yield* pair()
        const atClient = yield* inbox(client)
        const draining = yield* Effect.forkScoped(server.drain("5 seconds"))
        yield* settledState(subject, client, "draining")
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(draining)
        assert.strictEqual(yield* server.state, "closed")
        yield* settledState(subject, client, "closed")
        const end = yield* Effect.exit(Queue.take(atClient))
        assert.isTrue(Exit.isFailure(end) && Cause.isDone(Cause.squash(end.cause)), "the client's frames end without an error")
      })))

    it.effect("an orderly close ends the peer's frames without an error", () =>
      run(Effect.gen(function*() {
        const { client, server } = yield* pair()
        yield* client.send([request(1)])
        yield* client.close
        const frames = yield* server.frames.pipe(Stream.runCollect)
        assert.deepStrictEqual(frames.map((f) => f.correlation), [1])
        assert.strictEqual(yield* server.state, "closed")
        const late = yield* Effect.flip(client.send([request(2)]))
        assert.strictEqual(late._tag, "ConnectionClosed")
      })))

    it.effect("a crashed peer is seen as peer-dead", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(0))
        const raw = yield* subject.rawPipe(listener.address)
        const server = yield* firstConnection(listener)
        yield* raw.write(Frame.encode([request(1)]))
        yield* raw.destroy
        const exit = yield* Effect.exit(server.frames.pipe(Stream.runCollect))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Transport.ConnectionError : undefined
        assert.strictEqual(error?._tag, "ConnectionClosed")
        assert.strictEqual(yield* server.state, "peer-dead")
      })))

    it.effect("a silent peer is declared dead after the missed heartbeats", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(0))
        yield* subject.rawPipe(listener.address) // connects, then never sends a byte
        const server = yield* firstConnection(listener)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* server.state, "open")
        yield* TestClock.adjust("2 seconds")
        yield* settledState(subject, server, "peer-dead")
      })))

    it.effect("a malformed frame closes only the offending connection", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(0))
        const accepted = yield* Queue.unbounded<Transport.Connection>()
        yield* Effect.forkScoped(Stream.runForEach(listener.connections, (c) => Queue.offer(accepted, c)))
        const good = yield* transport.connect(listener.address)
        const goodServer = yield* Queue.take(accepted)
        const raw = yield* subject.rawPipe(listener.address)
        const badServer = yield* Queue.take(accepted)
        const garbage = new Uint8Array([0, 0, 0, 6, 0x7e, 0xee, 0, 0, 0, 1]) // a well-formed header of an unknown type
        yield* raw.write([garbage])
        const exit = yield* Effect.exit(badServer.frames.pipe(Stream.runCollect))
        const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) as Transport.ConnectionError : undefined
        assert.strictEqual(error?._tag, "MalformedInput")
        assert.strictEqual(yield* badServer.state, "peer-dead")
        yield* Effect.forkScoped(serveEcho(goodServer))
        const replies = yield* inbox(good)
        yield* good.send([request(5)])
        assert.strictEqual(numberOf(yield* Queue.take(replies)), 5)
      })))

    it.effect("listening twice at one address fails, and connecting where nothing listens fails", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(subject.address(0))
        const twice = yield* Effect.flip(transport.listen(listener.address))
        assert.strictEqual(twice._tag, "AddressInUse")
        const invalid = yield* Effect.flip(transport.connect("nonsense"))
        assert.strictEqual(invalid._tag, "InvalidAddress")
        const nobody = yield* Effect.flip(transport.connect(subject.unreachable))
        assert.strictEqual(nobody._tag, "ConnectFailed")
      })))

    it.effect("closing a listener closes the connections it accepted", () =>
      run(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listenerScope = yield* Scope.make()
        const listener = yield* transport.listen(subject.address(0)).pipe(Scope.provide(listenerScope))
        const client = yield* transport.connect(listener.address)
        const server = yield* firstConnection(listener)
        yield* Scope.close(listenerScope, Exit.void)
        assert.strictEqual(yield* server.state, "closed")
        yield* settledState(subject, client, "closed")
      })))
  })
