// A small request/reply system on the memory transport, run whole under the simulator: a broker
// echoes, a client sends numbered requests through drops, latency jitter and a partition, and retries
// with jittered backoff until every request has its answer.
import { describe, expect, it } from "@effect/vitest"
import { Frame, Trace, Transport } from "@strait/core"
import { MemoryTransport, Multiplex, SimNetwork } from "@strait/transport"
import { Effect, Exit, Schedule, Scope, Stream } from "effect"
import { Sim } from "../src/index.ts"

const REQUESTS = 40
const number = (n: number) => new Uint8Array([n >> 8, n & 0xff])
const numberOf = (frame: Frame.Frame) => (frame.payload[0]! << 8) | frame.payload[1]!

const broker = Effect.gen(function*() {
  const transport = yield* Transport.Transport
  const listener = yield* transport.listen("mem://broker")
  yield* Stream.runForEach(listener.connections, (connection) =>
    Effect.forkScoped(Multiplex.serve(connection, (request) => Effect.succeed(request.payload), { concurrency: 8 }).pipe(Effect.ignore)))
}).pipe(Effect.provide(MemoryTransport.layer("broker")))

const client = Effect.gen(function*() {
  const transport = yield* Transport.Transport
  const trace = yield* Trace.Trace
  let link: { readonly requester: Multiplex.Requester; readonly scope: Scope.Closeable } | undefined

  const connect = Effect.gen(function*() {
    const scope = yield* Scope.make()
    const connection = yield* transport.connect("mem://broker").pipe(Scope.provide(scope))
    const requester = yield* Multiplex.requester(connection).pipe(Scope.provide(scope))
    return { requester, scope }
  })
  const forget = Effect.suspend(() => {
    const dead = link
    link = undefined
    return dead === undefined ? Effect.void : Scope.close(dead.scope, Exit.void)
  })
  const ask = (n: number) =>
    Effect.gen(function*() {
      link ??= yield* connect
      return yield* link.requester.request(Frame.Type.Echo, number(n), "200 millis")
    }).pipe(
      // a lost request is retried on the same link; a dead link is replaced
      Effect.tapError((error) => error._tag === "RequestTimeout" ? Effect.void : forget),
      Effect.retry(Schedule.min([Schedule.exponential("10 millis"), Schedule.spaced("500 millis")]).pipe(Schedule.jittered))
    )

  const answers: Array<number> = []
  for (let n = 0; n < REQUESTS; n++) {
    const reply = yield* ask(n)
    answers.push(numberOf(reply))
    trace.record("client.reply", String(numberOf(reply)))
  }
  yield* forget
  return answers
}).pipe(Effect.provide(MemoryTransport.layer("client")))

const faults = Effect.gen(function*() {
  const network = yield* SimNetwork.SimNetwork
  yield* Effect.sleep("300 millis")
  yield* network.partition(["client"], ["broker"])
  yield* Effect.sleep("5 seconds")
  yield* network.heal
})

const system = Effect.scoped(Effect.gen(function*() {
  yield* Effect.forkScoped(broker)
  yield* Effect.forkScoped(faults)
  const answers = yield* client
  const stats = yield* SimNetwork.SimNetwork.use((network) => network.stats)
  return { answers, stats }
})).pipe(Effect.provide(SimNetwork.SimNetwork.layer({ dropRate: 0.1, latency: "1 millis", jitter: "4 millis" })))

const simulate = (seed: number) => Sim.run(system, { seed, maxVirtualTime: "10 minutes" })

describe("request/reply over the memory transport under the simulator", () => {
  it("every request is answered, in order, despite drops and a partition", () => {
    const result = simulate(1)
    expect(Exit.isSuccess(result.exit)).toBe(true)
    const { answers, stats } = Exit.isSuccess(result.exit) ? result.exit.value : { answers: [], stats: undefined }
    expect(answers).toEqual(Array.from({ length: REQUESTS }, (_, n) => n))
    expect(stats?.dropped).toBeGreaterThan(0)
    expect(stats?.connections).toBeGreaterThan(1) // the partition killed the first link
    expect(result.virtualMillis).toBeGreaterThan(5_000)
  })

  it("the same seed replays the same run", () => {
    const first = simulate(7)
    const second = simulate(7)
    expect(second.traceHash).toBe(first.traceHash)
    expect(second.steps).toBe(first.steps)
    expect(second.virtualMillis).toBe(first.virtualMillis)
  })

  it("different seeds explore different runs", () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((seed) => simulate(seed).traceHash))
    expect(hashes.size).toBeGreaterThan(1)
  })
})

describe("partitions of the simulated network", () => {
  // the client connects to `a` and `b` while both are cut off, then after one partition's own heal
  const reach = Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const attempt = (name: string) => Effect.scoped(Effect.map(Effect.exit(transport.connect(`mem://${name}`)), Exit.isSuccess))
    return { a: yield* attempt("a"), b: yield* attempt("b") }
  }).pipe(Effect.provide(MemoryTransport.layer("client")))
  const listen = (name: string) =>
    Effect.forkScoped(Effect.flatMap(Effect.service(Transport.Transport), (transport) => Effect.andThen(transport.listen(`mem://${name}`), Effect.never)).pipe(
      Effect.provide(MemoryTransport.layer(name))
    ))

  it("healing one partition leaves the others in force", () => {
    const result = Sim.run(Effect.scoped(Effect.gen(function*() {
      const network = yield* SimNetwork.SimNetwork
      yield* listen("a")
      yield* listen("b")
      yield* Effect.sleep("10 millis")
      const healA = yield* network.partition(["client"], ["a"])
      yield* network.partition(["client"], ["b"])
      const cut = yield* reach
      yield* healA
      const afterOne = yield* reach
      yield* network.heal
      return { cut, afterOne, afterAll: yield* reach }
    })).pipe(Effect.provide(SimNetwork.SimNetwork.layer({}))), { seed: 1, maxVirtualTime: "1 minute" })
    expect(result.exit).toEqual(Exit.succeed({ cut: { a: false, b: false }, afterOne: { a: true, b: false }, afterAll: { a: true, b: true } }))
  })
})
