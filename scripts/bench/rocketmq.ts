// RocketMQ bench: the official rocketmq-client-nodejs Producer sending 1 KiB messages and
// SimpleConsumers receiving and acknowledging them through a Strait proxy (its own process) in
// front of a broker (its own process), next to the same workload on the broker's own client straight
// to the broker: what the proxy costs. Prints msgs/s, end-to-end p50/p99, and proxy and broker CPU
// per message; the ratios are the proxy's CPU per message against the broker's, and through-proxy
// throughput against direct.
import { Client } from "@strait/broker"
import { EventLoopScheduler, Message, Transport } from "@strait/core"
import { TcpTransport } from "@strait/transport"
import { Effect, FiberSet, Layer } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs"
import { cpuSeconds } from "./lib/peers.ts"
import { emit, percentile, table } from "./lib/report.ts"

const SECS = Number(process.env.STRAIT_BENCH_SECS ?? 5)
const SIZE = 1024
// messages in flight end to end (each producer waits until its message was consumed): unloaded (1)
// and loaded; consumers each with one receive of up to 32 out at a time
const WINDOWS = [1, 64] as const
const CONSUMERS = 4
const BROKER_PORT = 17900
const PROXY_PORT = 17981
const work = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-rocketmq-"))
const scheduler = EventLoopScheduler.make()
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as any

interface RunResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly brokerCpu: number
  readonly proxyCpu: number
  readonly clientCpu: number
}

// STRAIT_BENCH_PROFILE=DIR writes the proxy's and the broker's CPU profiles there
const PROFILE = process.env.STRAIT_BENCH_PROFILE
const start = async (script: string, args: ReadonlyArray<string>) => {
  const flags = PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`]
  const child = spawn(process.execPath, [...flags, new URL(script, import.meta.url).pathname, ...args], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("listening") && resolve())
    child.on("exit", () => reject(new Error(`${script} exited`)))
  })
  return child
}
const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.removeAllListeners("exit")
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

// a message's body carries its sequence number and when it was sent
let seq = 0
const body = () => {
  const bytes = Buffer.alloc(SIZE, 0x61)
  bytes.writeUInt32LE(seq++, 0)
  bytes.writeDoubleLE(performance.now(), 8)
  return bytes
}
const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset)

/**
 * `window` producers each keep one message in flight until it was consumed (as the broker bench does),
 * until the time is up; consumers receive, note each message's latency, and acknowledge.
 */
const measure = async (
  pids: { readonly broker: number; readonly proxy?: number },
  window: number,
  send: (bytes: Buffer) => Promise<void>,
  receive: () => Promise<ReadonlyArray<Uint8Array>>
): Promise<RunResult> => {
  const latencies: Array<number> = []
  const waiting = new Map<number, () => void>()
  let consumed = 0
  let stopped = false
  const consumers = Array.from({ length: CONSUMERS }, async () => {
    while (!stopped || waiting.size > 0) {
      const bodies = await receive()
      const now = performance.now()
      for (const bytes of bodies) {
        latencies.push((now - view(bytes).getFloat64(8, true)) * 1000)
        consumed++
        waiting.get(view(bytes).getUint32(0, true))?.()
      }
    }
  })
  const brokerBefore = cpuSeconds(pids.broker)
  const proxyBefore = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy)
  const clientBefore = process.cpuUsage()
  const began = performance.now()
  const deadline = began + SECS * 1000
  await Promise.all(Array.from({ length: window }, async () => {
    while (performance.now() < deadline) {
      const bytes = body()
      const n = view(bytes).getUint32(0, true)
      const done = new Promise<void>((resolve) => waiting.set(n, resolve))
      await send(bytes)
      await done
      waiting.delete(n)
    }
  }))
  const seconds = (performance.now() - began) / 1000
  const brokerCpu = cpuSeconds(pids.broker) - brokerBefore
  const proxyCpu = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy) - proxyBefore
  const client = process.cpuUsage(clientBefore)
  const perSecond = consumed / seconds
  stopped = true
  await Promise.all(consumers)
  const perMessage = (cpu: number) => (cpu * 1e6) / Math.max(1, consumed)
  return {
    perSecond,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    brokerCpu: perMessage(brokerCpu),
    proxyCpu: perMessage(proxyCpu),
    clientCpu: (client.user + client.system) / Math.max(1, consumed)
  }
}

const throughProxy = async (pids: { readonly broker: number; readonly proxy: number }, window: number) => {
  const endpoints = `127.0.0.1:${PROXY_PORT}`
  const producer = new Producer({ endpoints, topics: ["via-proxy"], logger: quiet, maxAttempts: 1 } as any)
  await producer.startup()
  const consumers = await Promise.all(Array.from({ length: CONSUMERS }, async () => {
    const consumer = new SimpleConsumer({ endpoints, consumerGroup: "bench", subscriptions: new Map([["via-proxy", "*"]]), awaitDuration: 1000, logger: quiet } as any)
    await consumer.startup()
    return consumer
  }))
  let next = 0
  const result = await measure(
    pids,
    window,
    async (bytes) => void (await producer.send({ topic: "via-proxy", body: bytes })),
    async () => {
      const consumer = consumers[next++ % CONSUMERS]!
      const batch = await consumer.receive(32, 30_000)
      // acknowledged without holding up the next receive, as the broker bench does
      for (const m of batch) void consumer.ack(m).catch(() => undefined)
      return batch.map((m) => m.body)
    }
  )
  await Promise.all(consumers.map((consumer) => consumer.shutdown()))
  await producer.shutdown()
  return result
}

let ids = 0
const direct = (pids: { readonly broker: number }, window: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const client = yield* Client.make(yield* transport.connect(`tcp://127.0.0.1:${BROKER_PORT}`))
    const acks = yield* FiberSet.make<void, unknown>()
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect, { scheduler })
    const result = yield* Effect.promise(() =>
      measure(
        pids,
        window,
        (bytes) =>
          run(Effect.asVoid(client.send([
            new Message.Message({
              topic: "direct",
              body: bytes,
              keys: [],
              userProperties: {},
              bornTimestamp: 0,
              bornHost: "bench",
              messageId: `01${(++ids).toString(16).toUpperCase().padStart(32, "0")}`
            })
          ]))),
        () =>
          run(Effect.gen(function*() {
            const received = yield* client.pop({ group: "bench", topic: "direct", maxMessages: 32, invisibleDuration: "30 seconds", pollTimeout: "1 second" })
            for (const r of received) yield* FiberSet.run(acks, client.ack("bench", "direct", r.receiptHandle))
            return received.map((r) => r.message.body)
          }))
      )
    )
    yield* FiberSet.awaitEmpty(acks)
    return result
  })).pipe(Effect.provide(Layer.fresh(TcpTransport.layer))), { scheduler })

const broker = await start("./lib/brokerServer.ts", [path.join(work, "broker"), String(BROKER_PORT)])
let proxy: ChildProcess | undefined
const viaProxy = new Map<number, RunResult>()
const straight = new Map<number, RunResult>()
try {
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const client = yield* Client.make(yield* transport.connect(`tcp://127.0.0.1:${BROKER_PORT}`))
    yield* client.createTopic({ name: "via-proxy", kind: "NORMAL", queues: 8, flush: "async" })
    yield* client.createTopic({ name: "direct", kind: "NORMAL", queues: 8, flush: "async" })
  })).pipe(Effect.provide(Layer.fresh(TcpTransport.layer))), { scheduler })
  proxy = await start("./lib/proxyServer.ts", [String(BROKER_PORT), String(PROXY_PORT)])
  for (const window of WINDOWS) {
    viaProxy.set(window, await throughProxy({ broker: broker.pid!, proxy: proxy.pid! }, window))
    straight.set(window, await direct({ broker: broker.pid! }, window))
  }
} finally {
  if (proxy !== undefined) await stop(proxy)
  await stop(broker)
  fs.rmSync(work, { recursive: true, force: true })
}

const row = (run: string, r: RunResult) => ({
  run,
  "msgs/s": r.perSecond,
  "p50 µs": r.p50,
  "p99 µs": r.p99,
  "proxy CPU µs/msg": r.proxyCpu,
  "broker CPU µs/msg": r.brokerCpu,
  "client CPU µs/msg": r.clientCpu
})
table(`1 KiB messages, ${CONSUMERS} consumers, async flush (${SECS} s per run)`, WINDOWS.flatMap((window) => [
  row(`rocketmq client → proxy → broker, ${window} in flight`, viaProxy.get(window)!),
  row(`broker client → broker, ${window} in flight`, straight.get(window)!)
]))
const loaded = WINDOWS[WINDOWS.length - 1]!
const proxied = viaProxy.get(loaded)!
const plain = straight.get(loaded)!
emit("rocketmq", {
  proxy_cpu_vs_broker_cpu: proxied.proxyCpu / proxied.brokerCpu,
  through_proxy_vs_direct: proxied.perSecond / plain.perSecond
}, {
  node: process.version,
  ...Object.fromEntries(WINDOWS.flatMap((window) => {
    const p = viaProxy.get(window)!
    const d = straight.get(window)!
    return [
      [`proxy_${window}_msgs_per_s`, p.perSecond], [`proxy_${window}_p50_us`, p.p50], [`proxy_${window}_p99_us`, p.p99],
      [`proxy_${window}_proxy_cpu_us`, p.proxyCpu], [`proxy_${window}_broker_cpu_us`, p.brokerCpu], [`proxy_${window}_client_cpu_us`, p.clientCpu],
      [`direct_${window}_msgs_per_s`, d.perSecond], [`direct_${window}_p50_us`, d.p50], [`direct_${window}_p99_us`, d.p99],
      [`direct_${window}_broker_cpu_us`, d.brokerCpu], [`direct_${window}_client_cpu_us`, d.clientCpu]
    ]
  }))
})
