// Elasticity bench: a local cluster of processes (etcd, one broker, two proxies and two warm standbys
// behind the load balancer, as `strait cluster up --autoscale` runs it) under steady traffic from
// official RocketMQ producers. First a steady phase; then EVENTS scale-outs and EVENTS scale-ins
// through the cluster's orchestrator (what the elasticity controller calls), PAUSE ms apart (1.5 s:
// an event every ~3.5 s, as the controller's cooldowns allow; at 0.5 s the warm pool's refills, a
// process start of ~1 s of CPU each, crowd the two cores and the p99 ratio goes to ~3): each
// scale-out is timed from the decision to the new proxy answering its first request; each scale-in
// stops the proxy that has served longest (its clients move: GOAWAY). Prints `scale_out_p99_seconds`,
// `scale_in_client_errors` (send failures while scaling) and `p99_during_scaling_vs_steady` (the
// send p99 while scaling against the steady phase's, measured in this run).
import * as LocalCluster from "@strait/cli/adapters/LocalCluster"
import { StraitClient } from "@strait/client"
import { TcpTransport } from "@strait/transport"
import { Effect, Exit, Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Producer } from "rocketmq-client-nodejs"
import { emit, percentile, table } from "./lib/report.ts"

const EVENTS = Number(process.env.STRAIT_BENCH_EVENTS ?? 20)
const STEADY_SECS = Number(process.env.STRAIT_BENCH_SECS ?? 10)
const PRODUCERS = 4
// standbys kept warm: enough that the pool refills (a start takes seconds under load) between events
const WARM = Number(process.env.STRAIT_BENCH_WARM ?? 3)
// between a scale-out and the next scale-in, and after it: the controller waits its cooldowns too
const PAUSE = Number(process.env.STRAIT_BENCH_PAUSE_MS ?? 1500)
const host = "127.0.0.1"
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as any
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-elasticity-"))
const scope = await run(Scope.make())
const cluster = await run(LocalCluster.up({
  brokers: 1,
  proxies: 2,
  warm: WARM,
  dataDir,
  host,
  port: 17_780,
  etcdPort: 17_379,
  brokerPort: 17_701,
  proxyPort: 17_791,
  nativePort: 17_891
}).pipe(Scope.provide(scope)))

// the producers' sends: when each ended, how long it took, and the ones that failed
const sends: Array<{ readonly at: number; readonly millis: number }> = []
const failures: Array<{ readonly at: number; readonly error: string }> = []
let sending = true
const topic = "elastic"
// the topic, created with the admin command through the balancer, as an operator would
const admin = new URL("../../packages/cli/src/bin.ts", import.meta.url).pathname
await new Promise<void>((resolve, reject) =>
  spawn(process.execPath, [admin, "topic", "create", topic, "--queues", "4", "--server", cluster.address], { stdio: "ignore" })
    .once("exit", (code) => code === 0 ? resolve() : reject(new Error(`topic create exited with ${code}`))))

const producers = await Promise.all(Array.from({ length: PRODUCERS }, async () => {
  const producer = new Producer({ endpoints: cluster.address, topics: [topic], logger: quiet } as any)
  await producer.startup()
  return producer
}))
const body = Buffer.alloc(1024, 7)
const loops = producers.map(async (producer) => {
  while (sending) {
    const began = performance.now()
    try {
      await producer.send({ topic, body })
      sends.push({ at: performance.now(), millis: performance.now() - began })
    } catch (error) {
      failures.push({ at: performance.now(), error: String(error) })
    }
    await sleep(2)
  }
})

// a request straight to a proxy's native port, answered
const firstAnswer = (nativePort: number) =>
  run(Effect.scoped(Effect.gen(function*() {
    const client = yield* StraitClient.make({ endpoints: [`tcp://${host}:${nativePort}`], clientId: "bench-probe", requestTimeout: "10 seconds" })
    yield* client.call({ _tag: "Heartbeat" }, "Done")
  })).pipe(Effect.provide(TcpTransport.layer)))

const window = (from: number, to: number) => sends.filter((send) => send.at >= from && send.at < to).map((send) => send.millis)

await sleep(2000)
const steadyFrom = performance.now()
await sleep(STEADY_SECS * 1000)
const steadyTo = performance.now()

const scaleOuts: Array<number> = []
const scalingFrom = performance.now()
for (let event = 0; event < EVENTS; event++) {
  const decided = performance.now()
  const [id] = await run(cluster.orchestrator.scaleOut("proxy", 1))
  await firstAnswer(cluster.proxy(id!)!.nativePort)
  scaleOuts.push((performance.now() - decided) / 1000)
  await sleep(PAUSE)
  const [longest] = await run(cluster.orchestrator.nodes("proxy"))
  await run(cluster.orchestrator.scaleIn("proxy", [longest!]))
  await sleep(PAUSE)
}
const scalingTo = performance.now()
sending = false
await Promise.all(loops)
await Promise.all(producers.map((producer) => producer.shutdown()))
await run(Scope.close(scope, Exit.void))
fs.rmSync(dataDir, { recursive: true, force: true })

const steady = window(steadyFrom, steadyTo)
const scaling = window(scalingFrom, scalingTo)
const errors = failures.filter((failure) => failure.at >= scalingFrom && failure.at < scalingTo).length
const steadyP99 = percentile([...steady], 0.99)
const scalingP99 = percentile([...scaling], 0.99)
table(`Elasticity: ${PRODUCERS} RocketMQ producers through the balancer, ${EVENTS} scale-outs and ${EVENTS} scale-ins`, [
  { phase: "steady", seconds: (steadyTo - steadyFrom) / 1000, sends: steady.length, "sends/s": steady.length / ((steadyTo - steadyFrom) / 1000), "p50 ms": percentile([...steady], 0.5), "p99 ms": steadyP99, errors: failures.filter((f) => f.at >= steadyFrom && f.at < steadyTo).length },
  { phase: "scaling", seconds: (scalingTo - scalingFrom) / 1000, sends: scaling.length, "sends/s": scaling.length / ((scalingTo - scalingFrom) / 1000), "p50 ms": percentile([...scaling], 0.5), "p99 ms": scalingP99, errors }
])
table("Scale-out: decision to the new proxy's first answer", [
  { "p50 s": percentile([...scaleOuts], 0.5), "p99 s": percentile([...scaleOuts], 0.99), "max s": Math.max(...scaleOuts) }
])
console.log(`scale-outs (s): ${scaleOuts.map((s) => s.toFixed(2)).join(" ")}`)
if (errors > 0) console.log(`first errors: ${failures.slice(0, 3).map((failure) => failure.error).join(" | ")}`)
emit("elasticity", {
  scale_out_p99_seconds: percentile([...scaleOuts], 0.99),
  scale_in_client_errors: errors,
  p99_during_scaling_vs_steady: scalingP99 / steadyP99
}, {
  events: EVENTS,
  producers: PRODUCERS,
  steady_p99_ms: steadyP99,
  scaling_p99_ms: scalingP99,
  scale_out_p50_seconds: percentile([...scaleOuts], 0.5)
})
// the official client leaves timers behind after shutdown
process.exit(0)
