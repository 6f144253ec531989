// Client bench: 1 KiB messages produced and consumed end to end through one `strait dev` node (its own
// process) with @strait/client over TCP (Strait's own protocol), and with the official RocketMQ Node
// client through the gRPC adapter of the same node; next to nats.js against NATS JetStream and ioredis
// against Redis Streams (../shared/bench/peers, same run, same window). Prints msgs/s, p50/p99 and the
// client's CPU per message; the ratios: native against gRPC throughput, and the native client's CPU per
// message against nats.js's and ioredis's.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { CONSUMERS, type RunResult } from "./lib/endToEnd.ts"
import { peerBench, preparePeers, startNats, startRedis } from "./lib/peers.ts"
import { startScript, stopProcess } from "./lib/processes.ts"
import { nativeEndToEnd } from "./lib/nativeClient.ts"
import { rocketmqEndToEnd } from "./lib/rocketmqClient.ts"
import { emit, table } from "./lib/report.ts"

const SECS = Number(process.env.STRAIT_BENCH_SECS ?? 5)
const WINDOWS = [1, 64] as const
const LOADED = 64
const PORT = 17981
const NATIVE = 17982
const work = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-client-"))
const bin = new URL("../../packages/cli/src/bin.ts", import.meta.url).pathname

const startNode = () => {
  const config = path.join(work, "config.json")
  fs.writeFileSync(config, JSON.stringify({
    topics: [{ name: "via-native", kind: "NORMAL", queues: 8 }, { name: "via-grpc", kind: "NORMAL", queues: 8 }]
  }))
  return startScript(bin, ["dev", "--data-dir", path.join(work, "node"), "--port", String(PORT), "--native-port", String(NATIVE), "--config", config], "RocketMQ gRPC on")
}

const native = (pid: number, window: number) => nativeEndToEnd(`tcp://127.0.0.1:${NATIVE}`, "via-native", SECS, { broker: pid }, window)

// the official RocketMQ client through the gRPC adapter of the same node
const grpc = (pid: number, window: number) => rocketmqEndToEnd(`127.0.0.1:${PORT}`, "via-grpc", SECS, { broker: pid }, window)

const node = await startNode()
const nativeRuns = new Map<number, RunResult>()
const grpcRuns = new Map<number, RunResult>()
try {
  for (const window of WINDOWS) {
    nativeRuns.set(window, await native(node.pid!, window))
    grpcRuns.set(window, await grpc(node.pid!, window))
  }
} finally {
  await stopProcess(node)
}

// the peers' clients, same window (client CPU per message from their own process's CPU)
const problem = preparePeers(["nats-server", "redis-server"])
const peers: Record<string, { readonly perSecond: number; readonly p50: number; readonly p99: number; readonly clientCpu: number }> = {}
if (problem === undefined) {
  for (const [name, start, peer, port] of [["nats.js (JetStream)", startNats, "nats-js", 17422], ["ioredis (Streams)", startRedis, "redis-stream", 17379]] as const) {
    const server = await start(work)
    try {
      const result = peerBench(peer, { size: 1024, secs: SECS, window: LOADED, port, spid: server.pid }) as any
      peers[name] = { perSecond: result.e2e_per_s, p50: result.e2e_us.p50, p99: result.e2e_us.p99, clientCpu: (result.client_cpu_pct / 100) / result.e2e_per_s * 1e6 }
    } finally {
      server.stop()
    }
  }
} else {
  console.error(`peers skipped: ${problem}`)
}

const row = (client: string, window: number, result: { readonly perSecond: number; readonly p50: number; readonly p99: number; readonly clientCpu: number }) => ({
  client,
  window,
  "msgs/s": result.perSecond,
  "p50 µs": result.p50,
  "p99 µs": result.p99,
  "client CPU µs/msg": result.clientCpu
})
table(`1 KiB messages end to end, ${CONSUMERS} consumers, async flush (${SECS} s per run)`, [
  ...WINDOWS.flatMap((window) => [row("@strait/client (native, TCP)", window, nativeRuns.get(window)!), row("rocketmq-client-nodejs (gRPC)", window, grpcRuns.get(window)!)]),
  ...Object.entries(peers).map(([name, result]) => row(name, LOADED, result))
])

const loadedNative = nativeRuns.get(LOADED)!
const loadedGrpc = grpcRuns.get(LOADED)!
emit("client", {
  native_vs_grpc_throughput: loadedNative.perSecond / loadedGrpc.perSecond,
  ...(peers["nats.js (JetStream)"] === undefined ? {} : { client_cpu_vs_natsjs: loadedNative.clientCpu / peers["nats.js (JetStream)"].clientCpu }),
  ...(peers["ioredis (Streams)"] === undefined ? {} : { client_cpu_vs_ioredis: loadedNative.clientCpu / peers["ioredis (Streams)"].clientCpu })
}, {
  native_msgs_per_s: loadedNative.perSecond,
  grpc_msgs_per_s: loadedGrpc.perSecond,
  native_client_cpu_us: loadedNative.clientCpu,
  grpc_client_cpu_us: loadedGrpc.clientCpu,
  native_p50_us_unloaded: nativeRuns.get(1)!.p50,
  grpc_p50_us_unloaded: grpcRuns.get(1)!.p50
})
