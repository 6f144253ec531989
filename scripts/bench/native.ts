// Native transport bench (issue 11), in one run. First, between two Node processes on this host,
// 1 KiB frames: ping-pong RTT (p50, p99) and one-way streaming (throughput, CPU per message on each
// side, after an unmeasured warm-up stream) for Strait's shared-memory Transport and Strait's TCP
// Transport (the same connection engine over each), next to the transports alone with the same
// length-prefixed frames and no engine: the addon's rings through the ring pipe, and raw node:net
// over TCP and over a Unix domain socket. Then end to end: a client (@strait/client on the proxy's native port, or with
// STRAIT_BENCH_DRIVER=rocketmq the official RocketMQ client) through a proxy process to a broker
// process, the proxy's link to the broker on shared memory or on TCP (interleaved runs): broker and
// proxy CPU per message, and the proxy→broker round trip (a broker request from this process).
import { Client } from "@strait/broker"
import { EventLoopScheduler, Frame, Transport } from "@strait/core"
import { NativeTransport, ShmTransport } from "@strait/transport-native"
import * as Addon from "@strait/transport-native/adapters/Addon"
import * as ShmNet from "@strait/transport-native/adapters/ShmNet"
import { Effect, Layer, type Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import type { RunResult } from "./lib/endToEnd.ts"
import { cpuSeconds } from "./lib/peers.ts"
import { nativeEndToEnd } from "./lib/nativeClient.ts"
import { rocketmqEndToEnd } from "./lib/rocketmqClient.ts"
import { startScript, stopProcess } from "./lib/processes.ts"
import { frameOf, framer } from "./lib/rawNet.ts"
import { emit, table } from "./lib/report.ts"

const ROUNDS = 10_000
const STREAM = 300_000
// streamed first, unmeasured, in every run
const WARM = 200_000
const BATCH = 64
const RUNS = Number(process.env.STRAIT_BENCH_RUNS ?? 3)
// the raw shared-memory run's readers may spin this long (µs) before sleeping (default 0, as on
// machines with 2 CPUs or fewer)
const SHM_SPIN = Number(process.env.STRAIT_BENCH_SHM_SPIN ?? 0)
const now = () => performance.now()
const scheduler = EventLoopScheduler.make()
const payload = new Uint8Array(1024).map((_, i) => i & 0xff)
const serverScript = fileURLToPath(new URL("./lib/transportServer.ts", import.meta.url))
const rawScript = fileURLToPath(new URL("./lib/rawServer.ts", import.meta.url))
const rawShmScript = fileURLToPath(new URL("./lib/rawShmServer.ts", import.meta.url))

const shm = ShmTransport.available()
if (!shm.available) {
  console.error(`the shared-memory transport is not available here: ${shm.reason}`)
  process.exit(1)
}

interface Result {
  readonly rttP50: number
  readonly rttP99: number
  readonly perSecond: number
  readonly clientCpu: number // µs per message
  readonly serverCpu: number
}

const percentile = (samples: Float64Array, p: number) => {
  const sorted = Float64Array.from(samples).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! * 1000
}

// a run's figures, once its stream has arrived: the ping-pong samples, and the stream's time and CPU
const resultOf = (samples: Float64Array, began: number, clientBefore: NodeJS.CpuUsage, serverPid: number, serverBefore: number): Result => {
  const seconds = (now() - began) / 1000
  const client = process.cpuUsage(clientBefore)
  const server = cpuSeconds(serverPid) - serverBefore
  return {
    rttP50: percentile(samples, 0.5),
    rttP99: percentile(samples, 0.99),
    perSecond: STREAM / seconds,
    clientCpu: (client.user + client.system) / STREAM,
    serverCpu: (server * 1e6) / STREAM
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

// Strait's Transport to a transportServer process at `address`
const straitRun = async (address: string): Promise<Result> => {
  const child = await startScript(serverScript, [address], "listening")
  try {
    return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const transport = yield* Transport.Transport
      const connection = yield* transport.connect(address)
      const echo = (correlation: number) =>
        Effect.andThen(connection.send([Frame.make(Frame.Type.Echo, correlation, payload)]), connection.receive)
      for (let i = 0; i < 1000; i++) yield* echo(i)
      const samples = new Float64Array(ROUNDS)
      for (let i = 0; i < ROUNDS; i++) {
        const start = now()
        yield* echo(i)
        samples[i] = now() - start
      }
      // streaming: response frames the server only takes in, then one request whose answer says all arrived
      const batch = Array.from({ length: BATCH }, (_, i) => Frame.make(Frame.responseType(Frame.Type.Echo), i, payload))
      // a warm-up stream first (not measured): both processes' memory and code settle
      for (let sent = 0; sent < WARM; sent += BATCH) yield* connection.send(batch)
      yield* echo(-2 >>> 0)
      const serverBefore = cpuSeconds(child.pid!)
      const clientBefore = process.cpuUsage()
      const began = now()
      for (let sent = 0; sent < STREAM; sent += BATCH) yield* connection.send(batch)
      yield* echo(-1 >>> 0)
      return resultOf(samples, began, clientBefore, child.pid!, serverBefore)
    }) as Effect.Effect<Result, unknown, Transport.Transport | Scope.Scope>).pipe(Effect.provide(Layer.fresh(NativeTransport.layer))), { scheduler })
  } finally {
    await stopProcess(child)
  }
}

// the raw links' frames: a request (first payload byte 1) is echoed, a quiet frame only read
const request = frameOf(Uint8Array.from(payload, (byte, i) => (i === 0 ? 1 : byte)))
const quiet = frameOf(Uint8Array.from(payload, (byte, i) => (i === 0 ? 0 : byte)))

// a raw link's run: ping-pongs, then a warm-up stream and the measured one; `echo` sends a request
// and resolves on its answer, `send` writes one batch of BATCH quiet frames
const rawMeasure = async (pid: number, echo: () => Promise<void>, send: () => Promise<void>): Promise<Result> => {
  for (let i = 0; i < 1000; i++) await echo()
  const samples = new Float64Array(ROUNDS)
  for (let i = 0; i < ROUNDS; i++) {
    const start = now()
    await echo()
    samples[i] = now() - start
  }
  const stream = async (count: number) => {
    for (let sent = 0; sent < count; sent += BATCH) await send()
    await echo()
  }
  await stream(WARM)
  const serverBefore = cpuSeconds(pid)
  const clientBefore = process.cpuUsage()
  const began = now()
  await stream(STREAM)
  return resultOf(samples, began, clientBefore, pid, serverBefore)
}

// answers arrive as frames: each one resolves the echo waiting for it
const answers = () => {
  let answered: (() => void) | undefined
  const onChunk = framer(() => answered?.())
  const echo = (write: () => void) => () =>
    new Promise<void>((resolve) => {
      answered = resolve
      write()
    })
  return { onChunk, echo }
}

// raw node:net to a rawServer process (TCP port or Unix socket path)
const rawRun = async (where: string): Promise<Result> => {
  const child = await startScript(rawScript, [where], "listening")
  try {
    const socket = await new Promise<net.Socket>((resolve) => {
      const port = Number(where)
      const s = Number.isInteger(port) ? net.connect({ port, host: "127.0.0.1", noDelay: true }) : net.connect({ path: where })
      s.once("connect", () => resolve(s))
    })
    const { onChunk, echo } = answers()
    socket.on("data", onChunk)
    const result = await rawMeasure(child.pid!, echo(() => socket.write(request)), async () => {
      socket.cork()
      for (let i = 0; i < BATCH; i++) socket.write(quiet)
      socket.uncork()
      if (socket.writableNeedDrain) await new Promise((resolve) => socket.once("drain", resolve))
    })
    socket.destroy()
    return result
  } finally {
    await stopProcess(child)
  }
}

// raw shared memory to a rawShmServer process: the addon's rings through the ring pipe, the same
// frames and batches as rawRun (a batch is one vectored write, as a cork is)
const rawShmRun = async (where: string): Promise<Result> => {
  const child = await startScript(rawShmScript, [where], "listening")
  try {
    const addon = Addon.addon()
    if (typeof addon === "string") throw new Error(addon)
    const pipe = await Effect.runPromise(ShmNet.connect(addon, where, 4 * 1024 * 1024, SHM_SPIN))
    const { onChunk, echo } = answers()
    pipe.deliver({ data: (chunk) => (onChunk(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)), true), closed: () => undefined, copies: true })
    const batch = Array.from({ length: BATCH }, () => quiet)
    const result = await rawMeasure(child.pid!, echo(() => void Effect.runPromise(pipe.write([request]))), () => Effect.runPromise(pipe.write(batch)))
    await Effect.runPromise(pipe.destroy)
    return result
  } finally {
    await stopProcess(child)
  }
}

// the median of RUNS runs of each, interleaved, by total CPU per message
const median = (results: ReadonlyArray<Result>) => [...results].sort((a, b) => (a.clientCpu + a.serverCpu) - (b.clientCpu + b.serverCpu))[Math.floor(results.length / 2)]!
const runs: Record<string, Array<Result>> = { shm: [], tcp: [], rawShm: [], rawTcp: [], rawUds: [] }
for (let i = 0; i < RUNS; i++) {
  runs.shm!.push(await straitRun(`shm://${tmpdir()}/strait-bench-${process.pid}.sock`))
  runs.rawShm!.push(await rawShmRun(`${tmpdir()}/strait-bench-rawshm-${process.pid}-${i}.sock`))
  runs.tcp!.push(await straitRun(`tcp://127.0.0.1:${await freePort()}`))
  runs.rawTcp!.push(await rawRun(String(await freePort())))
  runs.rawUds!.push(await rawRun(`${tmpdir()}/strait-bench-raw-${process.pid}-${i}.sock`))
}
const shmResult = median(runs.shm!)
const tcpResult = median(runs.tcp!)
const rawShm = median(runs.rawShm!)
const rawTcp = median(runs.rawTcp!)
const rawUds = median(runs.rawUds!)

const row = (name: string, r: Result) => ({
  link: name,
  "RTT p50 µs": r.rttP50,
  "RTT p99 µs": r.rttP99,
  "msgs/s": r.perSecond,
  "client CPU µs/msg": r.clientCpu,
  "server CPU µs/msg": r.serverCpu,
  "total CPU µs/msg": r.clientCpu + r.serverCpu
})
table(`two processes, 1 KiB frames: ${ROUNDS.toLocaleString("en-US")} ping-pongs, ${STREAM.toLocaleString("en-US")} streamed in batches of ${BATCH} (median of ${RUNS})`, [
  row("Strait shared memory", shmResult),
  row("Strait TCP", tcpResult),
  row("raw shared memory (ring pipe)", rawShm),
  row("raw node:net TCP", rawTcp),
  row("raw node:net Unix socket", rawUds)
])

// end to end: a broker serving TCP and shared memory; a proxy per run, its link on one of them;
// STRAIT_BENCH_E2E=0 leaves it out (the transports alone)
const endToEndRuns = async () => {
  const SECS = Number(process.env.STRAIT_BENCH_SECS ?? 5)
  const WINDOW = 64
  // who drives the traffic: @strait/client through the proxy's native port (default: it costs least
  // per request, so the links' difference shows), or the official RocketMQ client through gRPC
  const DRIVER = process.env.STRAIT_BENCH_DRIVER === "rocketmq" ? "rocketmq" : "native"
  const work = mkdtempSync(path.join(tmpdir(), "strait-bench-native-"))
  const brokerScript = fileURLToPath(new URL("./lib/brokerServer.ts", import.meta.url))
  const proxyScript = fileURLToPath(new URL("./lib/proxyServer.ts", import.meta.url))
  const brokerPort = await freePort()
  const brokerLinks = { tcp: `tcp://127.0.0.1:${brokerPort}`, shm: `shm://${work}/broker.sock` } as const
  const broker = await startScript(brokerScript, [path.join(work, "broker"), String(brokerPort), `${work}/broker.sock`], "listening")

  // the proxy→broker round trip on a link: a cheap broker request from this process, sequentially
  const linkRtt = (address: string) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const client = yield* Client.make(yield* (yield* Transport.Transport).connect(address))
      for (let i = 0; i < 500; i++) yield* client.describeTopic("e2e")
      const samples = new Float64Array(5000)
      for (let i = 0; i < samples.length; i++) {
        const start = now()
        yield* client.describeTopic("e2e")
        samples[i] = now() - start
      }
      return percentile(samples, 0.5)
    }) as Effect.Effect<number, unknown, Transport.Transport | Scope.Scope>).pipe(Effect.provide(Layer.fresh(NativeTransport.layer))), { scheduler })

  const endToEnd: Record<"tcp" | "shm", Array<RunResult & { readonly rtt: number }>> = { tcp: [], shm: [] }
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const client = yield* Client.make(yield* (yield* Transport.Transport).connect(brokerLinks.tcp))
      yield* client.createTopic({ name: "e2e", kind: "NORMAL", queues: 8 })
    }) as Effect.Effect<void, unknown, Transport.Transport | Scope.Scope>).pipe(Effect.provide(Layer.fresh(NativeTransport.layer))), { scheduler })
    for (let i = 0; i < RUNS; i++) {
      for (const link of ["shm", "tcp"] as const) {
        const proxyPort = await freePort()
        const nativePort = await freePort()
        const proxy = await startScript(proxyScript, [brokerLinks[link], String(proxyPort), "0", String(nativePort)], "listening")
        try {
          const pids = { broker: broker.pid!, proxy: proxy.pid! }
          const run = DRIVER === "rocketmq"
            ? await rocketmqEndToEnd(`127.0.0.1:${proxyPort}`, "e2e", SECS, pids, WINDOW)
            : await nativeEndToEnd(`tcp://127.0.0.1:${nativePort}`, "e2e", SECS, pids, WINDOW)
          endToEnd[link].push({ ...run, rtt: await linkRtt(brokerLinks[link]) })
        } finally {
          await stopProcess(proxy)
        }
      }
    }
  } finally {
    await stopProcess(broker)
  }
  const byBrokerCpu = (runs: ReadonlyArray<RunResult & { readonly rtt: number }>) => [...runs].sort((a, b) => a.brokerCpu - b.brokerCpu)[Math.floor(runs.length / 2)]!
  const shmEnd = byBrokerCpu(endToEnd.shm)
  const tcpEnd = byBrokerCpu(endToEnd.tcp)
  const endRow = (name: string, r: RunResult & { readonly rtt: number }) => ({
    "proxy→broker link": name,
    "msgs/s": r.perSecond,
    "e2e p50 µs": r.p50,
    "broker CPU µs/msg": r.brokerCpu,
    "proxy CPU µs/msg": r.proxyCpu,
    "link RTT p50 µs": r.rtt
  })
  table(`end to end: ${DRIVER === "rocketmq" ? "the official RocketMQ client" : "@strait/client"} through a proxy to a broker, 1 KiB, window ${WINDOW}, ${SECS} s a run (median of ${RUNS} by broker CPU)`, [
    endRow("shared memory", shmEnd),
    endRow("TCP", tcpEnd)
  ])
  return {
    ratios: {
      broker_cpu_cut: 1 - shmEnd.brokerCpu / tcpEnd.brokerCpu,
      proxy_cpu_cut: 1 - shmEnd.proxyCpu / tcpEnd.proxyCpu,
      rtt_cut: 1 - shmEnd.rtt / tcpEnd.rtt
    },
    figures: {
      e2e_shm_msgs_per_s: shmEnd.perSecond,
      e2e_tcp_msgs_per_s: tcpEnd.perSecond,
      e2e_shm_broker_cpu_us: shmEnd.brokerCpu,
      e2e_tcp_broker_cpu_us: tcpEnd.brokerCpu,
      e2e_shm_proxy_cpu_us: shmEnd.proxyCpu,
      e2e_tcp_proxy_cpu_us: tcpEnd.proxyCpu,
      link_shm_rtt_p50_us: shmEnd.rtt,
      link_tcp_rtt_p50_us: tcpEnd.rtt
    }
  }
}
const e2e = process.env.STRAIT_BENCH_E2E === "0" ? { ratios: {}, figures: {} } : await endToEndRuns()

const total = (r: Result) => r.clientCpu + r.serverCpu
emit("native", {
  // the transport alone, as native.md measured it: the addon's rings vs Node's TCP, the same framing
  shm_cpu_vs_tcp: total(rawShm) / total(rawTcp),
  shm_rtt_vs_tcp: rawShm.rttP50 / rawTcp.rttP50,
  // through Strait's connection engine on both
  strait_shm_cpu_vs_strait_tcp: total(shmResult) / total(tcpResult),
  strait_shm_cpu_vs_node_tcp: total(shmResult) / total(rawTcp),
  strait_shm_rtt_vs_strait_tcp: shmResult.rttP50 / tcpResult.rttP50,
  ...e2e.ratios
}, {
  ...e2e.figures,
  node: process.version,
  shm_rtt_p50_us: shmResult.rttP50,
  shm_rtt_p99_us: shmResult.rttP99,
  tcp_rtt_p50_us: tcpResult.rttP50,
  tcp_rtt_p99_us: tcpResult.rttP99,
  raw_shm_rtt_p50_us: rawShm.rttP50,
  raw_shm_msgs_per_s: rawShm.perSecond,
  raw_shm_cpu_us_per_msg: total(rawShm),
  raw_tcp_rtt_p50_us: rawTcp.rttP50,
  raw_uds_rtt_p50_us: rawUds.rttP50,
  shm_msgs_per_s: shmResult.perSecond,
  tcp_msgs_per_s: tcpResult.perSecond,
  raw_tcp_msgs_per_s: rawTcp.perSecond,
  raw_uds_msgs_per_s: rawUds.perSecond,
  shm_cpu_us_per_msg: total(shmResult),
  tcp_cpu_us_per_msg: total(tcpResult),
  raw_tcp_cpu_us_per_msg: total(rawTcp),
  raw_uds_cpu_us_per_msg: total(rawUds)
})
