// The conformance harness: a real Strait node process (`strait dev`) on a fresh data directory, or a
// cluster of node processes on a real etcd, and what the official rocketmq-client-nodejs clients need
// to reach them.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Balancer from "@strait/cli/adapters/Balancer"
import * as EtcdProcess from "@strait/control/adapters/EtcdProcess"
import { createServer } from "node:net"
import { ConsumeResult, type MessageView, Producer, PushConsumer } from "rocketmq-client-nodejs"

const bin = fileURLToPath(new URL("../../../packages/cli/src/bin.ts", import.meta.url))

/** A logger that keeps the clients quiet (their default writes under ~/logs). */
export const logger = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as any

export interface RunningNode {
  readonly endpoints: string
  readonly port: number
  readonly dataDir: string
  /** Runs the strait CLI against this node; resolves with its output. */
  readonly admin: (...args: ReadonlyArray<string>) => Promise<string>
  /** Stops the node with a signal; resolves with its exit code once it exited. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Starts the node again on the same port and data directory. */
  readonly restart: () => Promise<void>
  readonly output: () => string
}

/** Runs the strait CLI; resolves with its output. */
export const strait = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } })
    let out = ""
    child.stdout.on("data", (chunk) => (out += chunk))
    child.stderr.on("data", (chunk) => (out += chunk))
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`strait ${args.join(" ")} exited ${code}: ${out}`))))
  })

/** Starts `strait dev` with `config` (topics, groups, access, tuning) on a free port. */
export const startNode = async (config: object = {}): Promise<RunningNode> => {
  const dataDir = mkdtempSync(join(tmpdir(), "strait-conformance-"))
  const configFile = join(dataDir, "config.json")
  writeFileSync(configFile, JSON.stringify({ dataDir: join(dataDir, "data"), ...config }))
  let child: ChildProcess | undefined
  let log = ""
  // a restart listens where the first start did, for the native protocol too (left to itself it
  // would take the gRPC port + 1, which another process may hold by then), on ports no outgoing
  // connection takes while the node is down
  const port = await restartablePort()
  const nativePort = await restartablePort()
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const args = [bin, "dev", "--config", configFile, "--port", String(port), "--native-port", String(nativePort)]
      const current = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
      child = current
      current.stdout!.on("data", (chunk) => {
        log += chunk
        if (/RocketMQ gRPC on [\d.]+:\d+, native protocol on tcp:\/\/[\d.]+:\d+/.test(log)) resolve()
      })
      current.stderr!.on("data", (chunk) => (log += chunk))
      current.on("exit", (code) => reject(new Error(`strait dev exited ${code} before listening: ${log}`)))
    })
  await launch()
  const stop = (signal: NodeJS.Signals = "SIGTERM") =>
    new Promise<number | null>((resolve) => {
      const current = child!
      if (current.exitCode !== null) return resolve(current.exitCode)
      current.removeAllListeners("exit")
      current.on("exit", (code) => resolve(code))
      current.kill(signal)
    })
  return {
    get endpoints() {
      return `127.0.0.1:${port}`
    },
    get port() {
      return port
    },
    dataDir,
    admin: (...args) => strait([...args, "--server", `127.0.0.1:${port}`]),
    stop,
    restart: async () => {
      log = ""
      await launch()
    },
    output: () => log
  }
}

/** Waits until `check` holds, looking every 50 ms, failing after `timeoutMillis`. */
export const eventually = async <A>(check: () => A | undefined | Promise<A | undefined>, timeoutMillis = 10_000): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value as A
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMillis} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The error a promise rejects with. */
export const rejection = async (promise: Promise<unknown>): Promise<any> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

/** The RocketMQ code of a client error, looking through its causes. */
export const codeOf = (error: any): number | undefined => {
  for (let current = error; current !== undefined && current !== null; current = current.cause) {
    if (typeof current.code === "number" && current.code >= 10000) return current.code
  }
  return undefined
}

/** Receives until something comes (`max` at most, invisible for `invisibleMillis`), failing after `timeoutMillis`. */
export const receiveSome = (
  consumer: { receive(max: number, invisibleMillis: number): Promise<Array<any>> },
  max: number,
  invisibleMillis: number,
  timeoutMillis: number
) =>
  eventually(async () => {
    const batch = await consumer.receive(max, invisibleMillis)
    return batch.length > 0 ? batch : undefined
  }, timeoutMillis)

/**
 * A TCP load balancer on a free port in front of `backends` (ports on 127.0.0.1): each client
 * connection goes to the next backend that accepts it, round robin, as a cloud load balancer in front
 * of several proxies would.
 */
export const startBalancer = (backends: ReadonlyArray<number>) =>
  Balancer.start({ host: "127.0.0.1", port: 0, backends: () => backends.map((port) => ({ host: "127.0.0.1", port })) })

/** Starts a bench server script (`../../bench/lib/NAME.ts ARGS`) and waits until it listens. */
export const startServerProcess = async (name: string, args: ReadonlyArray<string>) => {
  const script = fileURLToPath(new URL(`../../bench/lib/${name}.ts`, import.meta.url))
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("listening") && resolve())
    child.once("exit", (code) => reject(new Error(`${name} exited ${code} before listening`)))
  })
  return {
    child,
    stop: () =>
      new Promise<number | null>((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode)
        child.removeAllListeners("exit")
        child.once("exit", (code) => resolve(code))
        child.kill("SIGTERM")
      })
  }
}

/** A free port on 127.0.0.1. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

// The kernel gives outgoing connections their local ports from this range; a server restarted on a
// port in it can find the port taken by a connection made while it was down (EADDRINUSE).
const ephemeralLow = (() => {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 32_768
  } catch {
    return 32_768
  }
})()
let nextRestartable = 10_000 + (process.pid % 500) * 40

/** A free port below the ephemeral range: for a server stopped and started again on the same port. */
export const restartablePort = async (): Promise<number> => {
  for (;;) {
    const port = nextRestartable++
    if (nextRestartable >= ephemeralLow) nextRestartable = 10_000
    if (await portFree(port)) return port
  }
}

/** The first of `count` consecutive free ports (for commands that number their nodes' ports up from a base). */
export const freePorts = async (count: number): Promise<number> => {
  for (;;) {
    const base = await freePort()
    let free = base + count <= 65_535
    for (let i = 1; free && i < count; i++) free = await portFree(base + i)
    if (free) return base
  }
}

/**
 * Steady traffic through `endpoints`: a Producer sending to `topic` every 10 ms and a PushConsumer of
 * `group`. Sends that fail are kept apart from the acknowledged ones.
 */
export const steadyTraffic = async (endpoints: string, topic: string, group: string, intervalMillis = 10) => {
  const producer = new Producer({ endpoints, topics: [topic], logger } as any)
  await producer.startup()
  const consumed = new Set<string>()
  const push = new PushConsumer({
    endpoints,
    consumerGroup: group,
    subscriptions: new Map([[topic, "*"]]),
    messageListener: {
      consume: async (m: MessageView) => {
        consumed.add(m.body.toString())
        return ConsumeResult.SUCCESS
      }
    },
    logger
  } as any)
  await push.startup()
  const acknowledged: Array<string> = []
  const failures: Array<string> = []
  let sending = true
  const sender = (async () => {
    for (let i = 0; sending; i++) {
      try {
        await producer.send({ topic, body: Buffer.from(`m${i}`) })
        acknowledged.push(`m${i}`)
      } catch (error) {
        failures.push(String(error))
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMillis))
    }
  })()
  return {
    acknowledged,
    failures,
    consumed,
    /** Stops sending; waits until every acknowledged send was consumed; shuts the clients down. */
    finish: async () => {
      sending = false
      await sender
      await eventually(() => acknowledged.every((body) => consumed.has(body)), 60_000)
      await push.shutdown()
      await producer.shutdown()
    }
  }
}


/** A `strait` process: started, stopped with a signal, started again with the same arguments. */
export interface StraitProcess {
  readonly pid: () => number | undefined
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  readonly restart: () => Promise<void>
  readonly output: () => string
}

/** Runs `strait ARGS` until it prints a line matching `ready`. */
export const startStrait = async (args: ReadonlyArray<string>, ready: RegExp): Promise<StraitProcess> => {
  let child: ChildProcess | undefined
  let log = ""
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const current = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      child = current
      current.stdout!.on("data", (chunk) => {
        log += chunk
        if (ready.test(log)) resolve()
      })
      current.stderr!.on("data", (chunk) => (log += chunk))
      current.on("exit", (code) => reject(new Error(`strait ${args.join(" ")} exited ${code} before it was ready: ${log}`)))
    })
  await launch()
  return {
    pid: () => child?.pid,
    stop: (signal = "SIGTERM") =>
      new Promise<number | null>((resolve) => {
        const current = child!
        if (current.exitCode !== null || current.signalCode !== null) return resolve(current.exitCode)
        current.removeAllListeners("exit")
        current.on("exit", (code) => resolve(code))
        current.kill(signal)
      }),
    restart: () => {
      log = ""
      return launch()
    },
    output: () => log
  }
}

export interface RunningCluster {
  /** The load balancer in front of the proxies: the one address clients use. */
  readonly endpoints: string
  /** Each proxy's address for Strait's own client protocol. */
  readonly nativeEndpoints: ReadonlyArray<string>
  readonly brokers: ReadonlyArray<StraitProcess>
  readonly proxies: ReadonlyArray<StraitProcess>
  /** Runs the strait CLI against the first proxy. */
  readonly admin: (...args: ReadonlyArray<string>) => Promise<string>
  /** Stops everything: proxies (gently, see resilience), brokers, the balancer, etcd. */
  readonly stop: () => Promise<void>
}

/** A cluster of processes: a real etcd, `brokers` brokers and `proxies` proxies, a balancer in front. */
export const startCluster = async (options: { readonly brokers: number; readonly proxies: number; readonly config?: object }): Promise<RunningCluster> => {
  const etcd = await EtcdProcess.start()
  const dataDir = mkdtempSync(join(tmpdir(), "strait-cluster-"))
  const configFile = join(dataDir, "config.json")
  writeFileSync(configFile, JSON.stringify(options.config ?? {}))
  const common = ["--etcd", etcd.endpoint, "--config", configFile]
  const brokers = await Promise.all(Array.from({ length: options.brokers }, async (_, i) => {
    const port = await restartablePort()
    return startStrait(
      ["node", "--role", "broker", "--broker-id", `broker-${i + 1}`, "--broker-listen", `tcp://127.0.0.1:${port}`, "--data-dir", join(dataDir, `broker-${i + 1}`), ...common],
      /strait node \(broker\)/
    )
  }))
  // each proxy keeps its ports across restarts
  const proxyPorts = await Promise.all(Array.from({ length: options.proxies }, () => restartablePort()))
  const nativePorts = await Promise.all(proxyPorts.map(() => restartablePort()))
  const proxies = await Promise.all(proxyPorts.map((port, j) =>
    startStrait(
      ["node", "--role", "proxy", "--port", String(port), "--native-port", String(nativePorts[j]), "--data-dir", join(dataDir, `proxy-${j + 1}`), ...common],
      /RocketMQ gRPC on/
    )
  ))
  const balancer = await startBalancer(proxyPorts)
  return {
    endpoints: `127.0.0.1:${balancer.port}`,
    nativeEndpoints: nativePorts.map((port) => `tcp://127.0.0.1:${port}`),
    brokers,
    proxies,
    admin: (...args) => strait([...args, "--server", `127.0.0.1:${proxyPorts[0]}`]),
    stop: async () => {
      for (const proxy of proxies) await proxy.stop()
      await balancer.close()
      await Promise.all(brokers.map((broker) => broker.stop()))
      await etcd.stop()
    }
  }
}
