/**
 * A cluster of local processes for `strait cluster up`: etcd (started here unless one is given),
 * N brokers and M proxies (each a `strait node` process of its own), and a load balancer in front of
 * the proxies so that clients have one address.
 *
 * **Details**
 *
 * Every process writes its log lines to this one's output, prefixed with its name. Closing the scope
 * stops the proxies first (each drains: GOAWAY), then the brokers (each revokes its lease), then
 * etcd, each with SIGTERM and a deadline before SIGKILL.
 *
 * @since 0.1.0
 */
import { EtcdProcess } from "@strait/control"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Balancer from "./Balancer.ts"

/**
 * What `strait cluster up` starts.
 *
 * @since 0.1.0
 */
export interface ClusterPlan {
  readonly brokers: number
  readonly proxies: number
  /** Where every process keeps its data: `<dataDir>/etcd`, `<dataDir>/broker-<i>`, `<dataDir>/proxy-<j>`. */
  readonly dataDir: string
  readonly host: string
  /** The load balancer's port: the one address clients use. */
  readonly port: number
  /** An etcd to use; without it one is started on `etcdPort` (and `etcdPort + 1` for its peers). */
  readonly etcd?: string
  readonly etcdPort: number
  /** The first broker's data-plane port (the next brokers count up from it). */
  readonly brokerPort: number
  /** The first proxy's port (the next proxies count up from it). */
  readonly proxyPort: number
  /** The first proxy's port for Strait's own client protocol (the next proxies count up from it). */
  readonly nativePort: number
  /** A node configuration file every node reads (topics, groups, access, tuning). */
  readonly config?: string
}

/**
 * A process of the cluster could not be started, or did not become ready.
 *
 * @since 0.1.0
 */
export class ClusterStartFailed extends Error {}

const prefixed = (name: string, stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream) => {
  if (stream === null) return
  let pending = ""
  stream.on("data", (chunk) => {
    pending += String(chunk)
    const lines = pending.split("\n")
    pending = lines.pop()!
    for (const line of lines) out.write(`[${name}] ${line}\n`)
  })
}

const stop = (child: ChildProcess, deadlineMillis: number) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), deadlineMillis)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

// a child process for as long as the scope lives
const process_ = (name: string, command: string, args: ReadonlyArray<string>, deadlineMillis = 20_000) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
          prefixed(name, child.stdout, process.stdout)
          prefixed(name, child.stderr, process.stderr)
          child.once("error", (error) => reject(new ClusterStartFailed(`cannot start ${name} (${command}): ${error.message}`)))
          child.once("spawn", () => resolve(child))
        }),
      catch: (error) => error instanceof ClusterStartFailed ? error : new ClusterStartFailed(String(error))
    }),
    (child) => Effect.promise(() => stop(child, deadlineMillis))
  )

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

// resolves once `check` holds, failing after `timeoutMillis` or when the child exits
const ready = (name: string, child: ChildProcess, check: () => Promise<boolean>, timeoutMillis = 30_000) =>
  Effect.tryPromise({
    try: async () => {
      for (let waited = 0; waited < timeoutMillis; waited += 100) {
        if (child.exitCode !== null) throw new ClusterStartFailed(`${name} exited with code ${child.exitCode}`)
        if (await check()) return
        await sleep(100)
      }
      throw new ClusterStartFailed(`${name} was not ready after ${timeoutMillis} ms`)
    },
    catch: (error) => error instanceof ClusterStartFailed ? error : new ClusterStartFailed(String(error))
  })

const accepts = (host: string, port: number) => () =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, host)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const straitBin = fileURLToPath(new URL("../bin.ts", import.meta.url))

/**
 * Starts the cluster; it runs until the scope closes. Returns the balancer's address and the etcd
 * endpoint.
 *
 * @since 0.1.0
 */
export const up = (plan: ClusterPlan) =>
  Effect.gen(function*() {
    mkdirSync(plan.dataDir, { recursive: true })
    let etcd = plan.etcd
    if (etcd === undefined) {
      const started = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            EtcdProcess.start({
              host: plan.host,
              dataDir: join(plan.dataDir, "etcd"),
              clientPort: plan.etcdPort,
              peerPort: plan.etcdPort + 1,
              onOutput: (chunk) => process.stderr.write(chunk.replace(/^(?=.)/gm, "[etcd] "))
            }),
          catch: (error) => new ClusterStartFailed(`${error instanceof Error ? error.message : String(error)}; or pass --etcd`)
        }),
        (running) => Effect.promise(() => running.stop())
      )
      etcd = started.endpoint
    }
    const common = ["--etcd", etcd, ...(plan.config === undefined ? [] : ["--config", plan.config])]
    const node = (name: string, args: ReadonlyArray<string>) => process_(name, process.execPath, [straitBin, "node", ...args, ...common])
    const brokers = yield* Effect.forEach(Array.from({ length: plan.brokers }, (_, i) => i + 1), (i) => {
      const listen = `tcp://${plan.host}:${plan.brokerPort + i - 1}`
      return Effect.map(
        node(`broker-${i}`, ["--role", "broker", "--broker-id", `broker-${i}`, "--broker-listen", listen, "--data-dir", join(plan.dataDir, `broker-${i}`)]),
        (child) => ({ name: `broker-${i}`, child, port: plan.brokerPort + i - 1 })
      )
    })
    const proxies = yield* Effect.forEach(Array.from({ length: plan.proxies }, (_, j) => j + 1), (j) =>
      Effect.map(
        node(`proxy-${j}`, [
          "--role", "proxy", "--host", plan.host, "--port", String(plan.proxyPort + j - 1), "--native-port", String(plan.nativePort + j - 1),
          "--data-dir", join(plan.dataDir, `proxy-${j}`)
        ]),
        (child) => ({ name: `proxy-${j}`, child, port: plan.proxyPort + j - 1 })
      ))
    yield* Effect.forEach([...brokers, ...proxies], ({ child, name, port }) => ready(name, child, accepts(plan.host, port)), { concurrency: "unbounded", discard: true })
    const balancer = yield* Balancer.scoped({
      host: plan.host,
      port: plan.port,
      backends: () => proxies.filter(({ child }) => child.exitCode === null).map(({ port }) => ({ host: plan.host, port }))
    })
    return {
      address: `${balancer.host}:${balancer.port}`,
      etcd,
      brokers: brokers.map(({ name, port }) => `${name} tcp://${plan.host}:${port}`),
      proxies: proxies.map(({ name, port }, j) => `${name} ${plan.host}:${port} (native protocol tcp://${plan.host}:${plan.nativePort + j})`)
    }
  })
