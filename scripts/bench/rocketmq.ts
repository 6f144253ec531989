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
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { CONSUMERS, measure, pulling, type RunResult, sending } from "./lib/endToEnd.ts"
import { type EmptyCalls, measureEmptyCalls } from "./lib/grpcEmpty.ts"
import { startScript, stopProcess } from "./lib/processes.ts"
import { rocketmqEndToEnd } from "./lib/rocketmqClient.ts"
import { emit, table } from "./lib/report.ts"

const SECS = Number(process.env.STRAIT_BENCH_SECS ?? 5)
// messages in flight end to end (each producer waits until its message was consumed): unloaded (1)
// and loaded; consumers each with one receive of up to 32 out at a time
const WINDOWS = [1, 64] as const
const BROKER_PORT = 17900
const PROXY_PORT = 17981
const EMPTY_PORT = 17990
const work = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-rocketmq-"))
const scheduler = EventLoopScheduler.make()

// STRAIT_BENCH_PROFILE=DIR writes the proxy's and the broker's CPU profiles there (lib/processes.ts)
const start = (script: string, args: ReadonlyArray<string>) => startScript(new URL(script, import.meta.url).pathname, args, "listening")

const throughProxy = (pids: { readonly broker: number; readonly proxy: number }, window: number) =>
  rocketmqEndToEnd(`127.0.0.1:${PROXY_PORT}`, "via-proxy", SECS, pids, window)

let ids = 0
const direct = (pids: { readonly broker: number }, window: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const client = yield* Client.make(yield* transport.connect(`tcp://127.0.0.1:${BROKER_PORT}`))
    const acks = yield* FiberSet.make<void, unknown>()
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect, { scheduler })
    const result = yield* Effect.promise(() =>
      measure(
        SECS,
        pids,
        window,
        sending((bytes) =>
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
          ])))
        ),
        pulling(() =>
          run(Effect.gen(function*() {
            const received = yield* client.pop({ group: "bench", topic: "direct", maxMessages: 32, invisibleDuration: "30 seconds", pollTimeout: "1 second" })
            for (const r of received) yield* FiberSet.run(acks, client.ack("bench", "direct", r.receiptHandle))
            return received.map((r) => r.message.body)
          }))
        )
      )
    )
    yield* FiberSet.awaitEmpty(acks)
    return result
  })).pipe(Effect.provide(Layer.fresh(TcpTransport.layer))), { scheduler })

const broker = await start("./lib/brokerServer.ts", [path.join(work, "broker"), String(BROKER_PORT)])
let proxy: ChildProcess | undefined
const viaProxy = new Map<number, RunResult>()
const straight = new Map<number, RunResult>()
let empty: EmptyCalls | undefined
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
  // the floor under the proxy's CPU: grpc-js answering a call of a message's size with nothing to do
  const emptyServer = await start("./lib/grpcEmptyServer.ts", [String(EMPTY_PORT)])
  try {
    empty = await measureEmptyCalls(`127.0.0.1:${EMPTY_PORT}`, emptyServer.pid!, WINDOWS[WINDOWS.length - 1]!, SECS)
  } finally {
    await stopProcess(emptyServer)
  }
} finally {
  if (proxy !== undefined) await stopProcess(proxy)
  await stopProcess(broker)
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
const floor = empty!
table(`grpc-js alone: a unary call of 1,100 bytes answered at once with 16, ${loaded} in flight`, [{
  "calls/s": floor.perSecond,
  "server CPU µs/call": floor.serverCpu,
  "client CPU µs/call": floor.clientCpu
}])
// what the goals' ratios can reach at best: the official client makes two unary calls a message
// (send, ack), so the proxy's CPU is at least two empty calls'; through the proxy, the client's own
// CPU a message bounds the rate one core can drive
emit("rocketmq", {
  proxy_cpu_vs_broker_cpu: proxied.proxyCpu / proxied.brokerCpu,
  through_proxy_vs_direct: proxied.perSecond / plain.perSecond,
  grpc_floor_vs_broker_cpu: (2 * floor.serverCpu) / proxied.brokerCpu,
  client_bound_vs_direct: 1e6 / proxied.clientCpu / plain.perSecond
}, {
  node: process.version,
  empty_call_server_cpu_us: floor.serverCpu,
  empty_call_client_cpu_us: floor.clientCpu,
  empty_calls_per_s: floor.perSecond,
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
