// Transport bench: ping-pong RTT (p50, p99) and 1 KiB streaming throughput with CPU per message for
// the memory and TCP Transports, next to raw `node:net` measured in the same run; the message-batch
// codec next to msgpackr; the simulator next to a plain-JS event loop.
import { EventLoopScheduler, Frame, Transport } from "@strait/core"
import { MemoryTransport, TcpTransport } from "@strait/transport"
import { Deferred, Effect, Layer, Option, type Scope, Stream } from "effect"
import { measureCodec } from "./lib/codec.ts"
import { rawRtt, rawStream } from "./lib/rawNet.ts"
import { emit, table } from "./lib/report.ts"
import { measureSim } from "./lib/sim.ts"

const ROUNDS = 20_000
const STREAM = 200_000
const BATCH = 64
const now = () => performance.now()
// what a Strait process runs on (see EventLoopScheduler)
const scheduler = EventLoopScheduler.make()
const payload = new Uint8Array(1024).map((_, i) => i & 0xff)

const percentile = (samples: Float64Array, p: number) => {
  const sorted = Float64Array.from(samples).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! * 1000 // µs
}

const pair = (address: string) =>
  Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const listener = yield* transport.listen(address)
    const client = yield* transport.connect(listener.address)
    const server = yield* Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))
    return { client, server }
  })

const run = <A>(layer: Layer.Layer<Transport.Transport>, body: Effect.Effect<A, unknown, Transport.Transport | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(body).pipe(Effect.provide(Layer.fresh(layer))), { scheduler })

const rtt = (layer: Layer.Layer<Transport.Transport>, address: string) =>
  run(layer, Effect.gen(function*() {
    const { client, server } = yield* pair(address)
    const reply = Frame.responseType(Frame.Type.Echo)
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(server.receive, (frames) =>
      server.send(frames.map((f) => Frame.make(reply, f.correlation, f.payload))))))
    const samples = new Float64Array(ROUNDS)
    for (let i = 0; i < ROUNDS; i++) {
      const start = now()
      yield* client.send([Frame.make(Frame.Type.Echo, i, payload)])
      yield* client.receive
      samples[i] = now() - start
    }
    return { samples }
  }))

const stream = (layer: Layer.Layer<Transport.Transport>, address: string) =>
  run(layer, Effect.gen(function*() {
    const { client, server } = yield* pair(address)
    const done = yield* Deferred.make<void>()
    let received = 0
    yield* Effect.forkScoped(Stream.runForEach(server.frames, () =>
      ++received === STREAM ? Deferred.succeed(done, undefined) : Effect.void))
    const batch = Array.from({ length: BATCH }, (_, i) => Frame.make(Frame.Type.Echo, i, payload))
    const cpu = process.cpuUsage()
    const start = now()
    for (let sent = 0; sent < STREAM; sent += BATCH) yield* client.send(batch)
    yield* Deferred.await(done)
    const seconds = (now() - start) / 1000
    const used = process.cpuUsage(cpu)
    return { seconds, cpuMicros: used.user + used.system }
  }))

const best = async <T>(runs: number, measure: () => Promise<T>, key: (t: T) => number) => {
  await measure()
  let fastest: T | undefined
  for (let i = 0; i < runs; i++) {
    const result = await measure()
    if (fastest === undefined || key(result) < key(fastest)) fastest = result
  }
  return fastest!
}

const p50 = (r: { samples: Float64Array }) => percentile(r.samples, 0.5)
const seconds = (r: { seconds: number }) => r.seconds

const rawRound = await best(3, () => rawRtt(ROUNDS, payload, now), p50)
const tcpRound = await best(3, () => rtt(TcpTransport.layer, "tcp://127.0.0.1:0"), p50)
const memRound = await best(3, () => rtt(MemoryTransport.layerLocal, "mem://bench"), p50)
const rawFlow = await best(3, () => rawStream(STREAM, BATCH, payload, now), seconds)
const tcpFlow = await best(3, () => stream(TcpTransport.layer, "tcp://127.0.0.1:0"), seconds)
const memFlow = await best(3, () => stream(MemoryTransport.layerLocal, "mem://bench"), seconds)
const codec = measureCodec()
const sim = measureSim()

const rttRow = (name: string, r: { samples: Float64Array }) => ({
  transport: name,
  "p50 µs": percentile(r.samples, 0.5),
  "p99 µs": percentile(r.samples, 0.99)
})
const flowRow = (name: string, r: { seconds: number; cpuMicros: number }) => ({
  transport: name,
  "msgs/s": STREAM / r.seconds,
  "MiB/s": (STREAM * 1024) / r.seconds / (1 << 20),
  "CPU ns/msg": (r.cpuMicros * 1000) / STREAM
})

table(`ping-pong RTT, 1 KiB, ${ROUNDS.toLocaleString("en-US")} rounds (best p50 of 3)`, [
  rttRow("raw node:net", rawRound),
  rttRow("Strait TCP", tcpRound),
  rttRow("Strait memory", memRound)
])
table(`streaming 1 KiB frames, ${STREAM.toLocaleString("en-US")} in batches of ${BATCH} (best of 3)`, [
  flowRow("raw node:net, corked", rawFlow),
  flowRow("Strait TCP", tcpFlow),
  flowRow("Strait memory", memFlow)
])
table("message-batch codec, encode + decode of a 1 KiB message", [
  { codec: "msgpackr pack/unpack", "ns/msg (1)": codec.msgpackr1, "ns/msg (64)": codec.msgpackr64 },
  { codec: "Strait MessageBatch", "ns/msg (1)": codec.ours1, "ns/msg (64)": codec.ours64 }
])
table("simulation", [
  { loop: "plain-JS event loop", "events/s": sim.plainEventsPerSecond },
  { loop: "Strait simulator", "events/s": sim.simEventsPerSecond }
])

emit("transport", {
  tcp_rtt_vs_raw: p50(tcpRound) / p50(rawRound),
  tcp_throughput_vs_raw_corked: rawFlow.seconds / tcpFlow.seconds,
  codec_vs_msgpackr: codec.ours1 / codec.msgpackr1,
  sim_vs_plain_loop: sim.simEventsPerSecond / sim.plainEventsPerSecond
}, {
  node: process.version,
  raw_rtt_p50_us: p50(rawRound),
  raw_rtt_p99_us: percentile(rawRound.samples, 0.99),
  tcp_rtt_p50_us: p50(tcpRound),
  tcp_rtt_p99_us: percentile(tcpRound.samples, 0.99),
  mem_rtt_p50_us: p50(memRound),
  mem_rtt_p99_us: percentile(memRound.samples, 0.99),
  raw_msgs_per_s: STREAM / rawFlow.seconds,
  tcp_msgs_per_s: STREAM / tcpFlow.seconds,
  mem_msgs_per_s: STREAM / memFlow.seconds,
  raw_cpu_ns_per_msg: (rawFlow.cpuMicros * 1000) / STREAM,
  tcp_cpu_ns_per_msg: (tcpFlow.cpuMicros * 1000) / STREAM,
  mem_cpu_ns_per_msg: (memFlow.cpuMicros * 1000) / STREAM,
  codec_ours_ns_1: codec.ours1,
  codec_msgpackr_ns_1: codec.msgpackr1,
  codec_ours_ns_64: codec.ours64,
  codec_msgpackr_ns_64: codec.msgpackr64,
  sim_events_per_s: sim.simEventsPerSecond,
  plain_loop_events_per_s: sim.plainEventsPerSecond
})

