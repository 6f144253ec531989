// Broker bench: 1 KiB messages produced and Pop-consumed + acknowledged end to end through the
// broker's client over TCP, with the broker in its own process; 1 and 256 messages in flight (a
// message leaves the window once it is both acknowledged to the producer and consumed), `sync` and
// `async` flush. In the same run, the same workload against NATS (core, JetStream), Redis Streams and
// RabbitMQ quorum queues through ../shared/bench/peers. Prints msgs/s, end-to-end p50/p99, broker CPU per
// message, and the ratios.
import { Client } from "@strait/broker"
import { EventLoopScheduler, Message, Transport } from "@strait/core"
import { TcpTransport } from "@strait/transport"
import { Deferred, Effect, Fiber, FiberSet, Layer } from "effect"
import { startScript, stopProcess } from "./lib/processes.ts"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cpuSeconds, peerBench, type PeerResult, preparePeers, startNats, startRabbit, startRedis } from "./lib/peers.ts"
import { emit, median, percentile, table } from "./lib/report.ts"

const SECS = Number(process.env.STRAIT_BENCH_SECS ?? 5)
const SIZE = 1024
// consumers, each with one receive of up to 32 messages out at a time
const CONSUMERS = 8
const PORT = 17800
const work = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-broker-"))
const scheduler = EventLoopScheduler.make()

interface RunResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly cpuMicrosPerMessage: number
  /** The bench process's own CPU (producers and consumers, through the client). */
  readonly clientCpuMicrosPerMessage: number
}

let ids = 0
// Made as the peers' driver (peer_bench.js) makes its payloads, from Node's buffer pool, and as a
// producer builds its own messages (`Message.fromFields`, no parse of fields the compiler checked):
// a zero-filled `Uint8Array` and the class constructor's parse cost this process 12% of its CPU
// (3.9 µs a message), on the two cores it shares with the broker.
const messageOf = (topic: string, seq: number) => {
  const body = Buffer.allocUnsafe(SIZE).fill(0x61, 16)
  const view = new DataView(body.buffer, body.byteOffset)
  view.setUint32(0, seq, true)
  view.setFloat64(8, performance.now(), true)
  return Message.fromFields({
    topic,
    body,
    keys: [],
    userProperties: {},
    bornTimestamp: 0,
    bornHost: "bench",
    messageId: `01${(++ids).toString(16).toUpperCase().padStart(32, "0")}`
  })
}

// STRAIT_BENCH_PROFILE=DIR writes the broker's CPU profile there (lib/processes.ts); STRAIT_BENCH_RUNS=async-256,sync-1
// runs only those Strait runs and no peers (for profiling and quick comparisons)
const ONLY = process.env.STRAIT_BENCH_RUNS?.split(",")

const startBroker = (directory: string) =>
  startScript(new URL("./lib/brokerServer.ts", import.meta.url).pathname, [directory, String(PORT)], "listening")

/** `window` producers each keep one message in flight; eight consumers pop, measure, acknowledge. */
const straitRun = (pid: number, policy: "sync" | "async", window: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const client = yield* Client.make(yield* transport.connect(`tcp://127.0.0.1:${PORT}`))
    const topic = `${policy}-${window}`
    yield* client.createTopic({ name: topic, kind: "NORMAL", queues: 8, flush: policy })
    const waiting = new Map<number, Deferred.Deferred<void>>()
    const latencies: Array<number> = []
    let seq = 0
    let consumed = 0
    let stop = false
    // acknowledgements go out without holding up the next receive (the peers' clients ack the same
    // way: NATS `m.ack()`, AMQP `ack`); they are all answered before the run ends
    const acks = yield* FiberSet.make<void, unknown>()
    const consumers = yield* Effect.forEach(Array.from({ length: CONSUMERS }), () =>
      Effect.forkChild(Effect.gen(function*() {
        while (!stop || waiting.size > 0) {
          const received = yield* client.pop({ group: "bench", topic, maxMessages: 32, invisibleDuration: "30 seconds", pollTimeout: "200 millis" })
          const now = performance.now()
          for (const r of received) {
            const view = new DataView(r.message.body.buffer, r.message.body.byteOffset)
            latencies.push((now - view.getFloat64(8, true)) * 1000)
            consumed++
            const done = waiting.get(view.getUint32(0, true))
            if (done !== undefined) Deferred.doneUnsafe(done, Effect.void)
          }
          for (const r of received) yield* FiberSet.run(acks, client.ack("bench", topic, r.receiptHandle))
        }
      })))
    const cpuBefore = cpuSeconds(pid)
    const clientBefore = process.cpuUsage()
    const start = performance.now()
    const deadline = start + SECS * 1000
    yield* Effect.forEach(Array.from({ length: window }), () =>
      Effect.gen(function*() {
        while (performance.now() < deadline) {
          const n = seq++
          const done = Deferred.makeUnsafe<void>()
          waiting.set(n, done)
          yield* client.send([messageOf(topic, n)])
          yield* Deferred.await(done)
          waiting.delete(n)
        }
      }), { concurrency: "unbounded", discard: true })
    const seconds = (performance.now() - start) / 1000
    const cpu = cpuSeconds(pid) - cpuBefore
    const clientCpu = process.cpuUsage(clientBefore)
    stop = true
    yield* Effect.forEach(consumers, Fiber.join, { discard: true })
    yield* FiberSet.awaitEmpty(acks)
    return {
      perSecond: consumed / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      cpuMicrosPerMessage: (cpu * 1e6) / Math.max(1, consumed),
      clientCpuMicrosPerMessage: (clientCpu.user + clientCpu.system) / Math.max(1, consumed)
    } satisfies RunResult
  })).pipe(Effect.provide(Layer.fresh(TcpTransport.layer))), { scheduler })

// STRAIT_BENCH_ROUNDS=N runs everything N times, alternating Strait and the peers, and reports each
// figure's median: this machine is shared and noisy
const ROUNDS = Number(process.env.STRAIT_BENCH_ROUNDS ?? 1)
const straitRounds = new Map<string, Array<RunResult>>()
const peerRounds = new Map<string, Array<PeerResult>>()
const record = <A>(rounds: Map<string, Array<A>>, run: string, result: A) => {
  const list = rounds.get(run)
  if (list === undefined) rounds.set(run, [result])
  else list.push(result)
}
const missing = ONLY === undefined
  ? preparePeers(["nats-server", "redis-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"])
  : "STRAIT_BENCH_RUNS names Strait runs only"
for (let round = 0; round < ROUNDS; round++) {
  const broker = await startBroker(path.join(work, `broker-${round}`))
  try {
    for (const policy of ["async", "sync"] as const) {
      for (const window of [1, 256]) {
        if (ONLY === undefined || ONLY.includes(`${policy}-${window}`)) record(straitRounds, `${policy}-${window}`, await straitRun(broker.pid!, policy, window))
      }
    }
  } finally {
    await stopProcess(broker)
  }
  if (missing !== undefined) continue
  const nats = await startNats(work)
  try {
    record(peerRounds, "nats-core-1", peerBench("nats-core", { port: 17422, spid: nats.pid, secs: SECS, window: 1, size: SIZE }))
    record(peerRounds, "nats-js-256", peerBench("nats-js", { port: 17422, spid: nats.pid, secs: SECS, window: 256, size: SIZE }))
  } finally {
    nats.stop()
  }
  const redis = await startRedis(work)
  try {
    record(peerRounds, "redis-stream-256", peerBench("redis-stream", { port: 17379, spid: redis.pid, secs: SECS, window: 256, size: SIZE }))
  } finally {
    redis.stop()
  }
  const rabbit = await startRabbit(work)
  try {
    record(peerRounds, "rabbit-quorum-256", peerBench("rabbit-quorum", { port: 17672, spid: rabbit.pid, secs: SECS, window: 256, size: SIZE }))
  } finally {
    rabbit.stop()
  }
}
if (missing !== undefined) console.log(`peers skipped: ${missing}`)
const strait = new Map([...straitRounds].map(([run, results]): [string, RunResult] => [run, {
  perSecond: median(results.map((r) => r.perSecond)),
  p50: median(results.map((r) => r.p50)),
  p99: median(results.map((r) => r.p99)),
  cpuMicrosPerMessage: median(results.map((r) => r.cpuMicrosPerMessage)),
  clientCpuMicrosPerMessage: median(results.map((r) => r.clientCpuMicrosPerMessage))
}]))
const peers = new Map([...peerRounds].map(([run, results]): [string, PeerResult] => [run, {
  ...results[0]!,
  e2e_per_s: median(results.map((r) => r.e2e_per_s)),
  e2e_us: { ...results[0]!.e2e_us, p50: median(results.map((r) => r.e2e_us.p50)), p99: median(results.map((r) => r.e2e_us.p99)) },
  server_cpu_us_per_msg: median(results.map((r) => r.server_cpu_us_per_msg ?? Number.NaN))
}]))
fs.rmSync(work, { recursive: true, force: true })

table(`Strait, 1 KiB end to end over TCP (${SECS} s per run, median of ${ROUNDS} rounds)`, [...strait].map(([run, r]) => ({
  run,
  "msgs/s": r.perSecond,
  "p50 µs": r.p50,
  "p99 µs": r.p99,
  "broker CPU µs/msg": r.cpuMicrosPerMessage,
  "client CPU µs/msg": r.clientCpuMicrosPerMessage
})))
table("peers, same workload", [...peers].map(([run, r]) => ({
  run,
  "msgs/s": r.e2e_per_s,
  "p50 µs": r.e2e_us.p50,
  "p99 µs": r.e2e_us.p99,
  "server CPU µs/msg": r.server_cpu_us_per_msg ?? Number.NaN
})))

const ours = (run: string) => strait.get(run) ?? { perSecond: Number.NaN, cpuMicrosPerMessage: Number.NaN, clientCpuMicrosPerMessage: Number.NaN, p50: Number.NaN }
const peer = (run: string) => peers.get(run)
emit("broker", {
  sync_vs_rabbitmq_quorum: ours("sync-256").perSecond / (peer("rabbit-quorum-256")?.e2e_per_s ?? Number.NaN),
  async_vs_nats_jetstream: ours("async-256").perSecond / (peer("nats-js-256")?.e2e_per_s ?? Number.NaN),
  cpu_per_msg_vs_rabbitmq_quorum: ours("sync-256").cpuMicrosPerMessage / (peer("rabbit-quorum-256")?.server_cpu_us_per_msg ?? Number.NaN),
  p50_vs_nats_core: ours("async-1").p50 / (peer("nats-core-1")?.e2e_us.p50 ?? Number.NaN)
}, {
  node: process.version,
  ...Object.fromEntries([...strait].flatMap(([run, r]) => [[`strait_${run}_msgs_per_s`, r.perSecond], [`strait_${run}_p50_us`, r.p50], [`strait_${run}_cpu_us`, r.cpuMicrosPerMessage]])),
  ...Object.fromEntries([...peers].flatMap(([run, r]) => [[`${run}_msgs_per_s`, r.e2e_per_s], [`${run}_p50_us`, r.e2e_us.p50], [`${run}_cpu_us`, r.server_cpu_us_per_msg ?? Number.NaN]]))
})
