// Peer brokers for ratios measured in the same run: NATS (core and JetStream) and RabbitMQ (quorum
// queues), started on loopback 17xxx ports and driven by ../shared/bench/peers/node/peer_bench.js.
// The peers come from Debian (nats-server, rabbitmq-server) and peer_bench's clients from npm, in a
// copy of the peers folder outside the repository (STRAIT_PEERS, default /tmp/strait-peers).
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

export const peersDir = process.env.STRAIT_PEERS ?? "/tmp/strait-peers"
const shared = new URL("../../../../shared/bench/peers/", import.meta.url).pathname

/** Copies the peers folder out of the repository and installs its clients, once; checks the servers a bench needs. */
export const preparePeers = (
  servers: ReadonlyArray<string> = ["nats-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"]
): string | undefined => {
  if (!fs.existsSync(path.join(peersDir, "node", "node_modules", "nats"))) {
    fs.rmSync(peersDir, { recursive: true, force: true })
    fs.cpSync(shared, peersDir, { recursive: true })
    const install = spawnSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: path.join(peersDir, "node"), stdio: "ignore" })
    if (install.status !== 0) return "npm install of the peer clients failed"
  }
  for (const binary of servers) {
    if (spawnSync("sh", ["-c", `command -v ${binary}`]).status !== 0) {
      return `${binary} is missing: apt-get install -y ${servers.map((server) => path.basename(server)).join(" ")}`
    }
  }
  return undefined
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on("error", () => resolve(false))
  })

const waitForPort = async (port: number, seconds: number) => {
  for (let i = 0; i < seconds * 4; i++) {
    if (await portOpen(port)) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

export interface Running {
  /** The pid whose CPU counts as the server's. */
  readonly pid: number
  readonly stop: () => void
}

const stopAll = (children: ReadonlyArray<ChildProcess>, extra: ReadonlyArray<number> = []) => () => {
  for (const child of children) child.kill("SIGKILL")
  for (const pid of extra) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
}

/** nats-server with JetStream on 17422. */
export const startNats = async (work: string): Promise<Running> => {
  const dir = path.join(work, "nats")
  fs.mkdirSync(dir, { recursive: true })
  const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", "17422", "-js", "-sd", dir], { stdio: "ignore" })
  if (!(await waitForPort(17422, 30))) throw new Error("nats-server did not start")
  return { pid: child.pid!, stop: stopAll([child]) }
}

/** redis-server on 17379, without persistence (Streams kept in memory, as peer_bench measures them). */
export const startRedis = async (work: string): Promise<Running> => {
  const dir = path.join(work, "redis")
  fs.mkdirSync(dir, { recursive: true })
  const child = spawn("redis-server", ["--bind", "127.0.0.1", "--port", "17379", "--dir", dir, "--save", "", "--appendonly", "no"], { stdio: "ignore" })
  if (!(await waitForPort(17379, 30))) throw new Error("redis-server did not start")
  return { pid: child.pid!, stop: stopAll([child]) }
}

/** A RabbitMQ node on 17672 (quorum queues need no plugins). */
export const startRabbit = async (work: string): Promise<Running> => {
  const dir = path.join(work, "rmq")
  for (const sub of ["home", "mnesia", "log"]) fs.mkdirSync(path.join(dir, sub), { recursive: true })
  fs.writeFileSync(path.join(dir, "enabled_plugins"), "[].")
  fs.writeFileSync(path.join(dir, "env.conf"), "")
  fs.writeFileSync(path.join(dir, "rabbitmq.conf"), "listeners.tcp.1 = 127.0.0.1:17672\nloopback_users = none\n")
  const child = spawn("/usr/lib/rabbitmq/bin/rabbitmq-server", [], {
    stdio: "ignore",
    env: {
      ...process.env,
      HOME: path.join(dir, "home"),
      RABBITMQ_NODENAME: "straitbench@localhost",
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: "17672",
      RABBITMQ_DIST_PORT: "17673",
      ERL_EPMD_PORT: "17369",
      ERL_EPMD_ADDRESS: "127.0.0.1",
      RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(dir, "log"),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
      RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq.conf"),
      RABBITMQ_CONF_ENV_FILE: path.join(dir, "env.conf"),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}"
    }
  })
  if (!(await waitForPort(17672, 120))) throw new Error("rabbitmq-server did not start")
  // the Erlang VM that serves AMQP is the process to measure
  const listening = spawnSync("sh", ["-c", "ss -ltnp | grep '127.0.0.1:17672 ' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2"]).stdout.toString().trim()
  const epmd = spawnSync("sh", ["-c", "ss -ltnp | grep '127.0.0.1:17369 ' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2"]).stdout.toString().trim()
  const beam = Number(listening)
  return { pid: beam, stop: stopAll([child], [beam, Number(epmd)].filter((pid) => pid > 0)) }
}

export interface PeerResult {
  readonly e2e_per_s: number
  readonly e2e_us: { readonly p50: number; readonly p99: number }
  readonly server_cpu_us_per_msg: number | null
}

/** One bounded peer_bench run; its last output line is JSON. */
export const peerBench = (peer: string, args: Record<string, string | number>): PeerResult => {
  const run = spawnSync("node", [path.join(peersDir, "node", "peer_bench.js"), peer, ...Object.entries(args).map(([k, v]) => `${k}=${v}`)], {
    cwd: path.join(peersDir, "node"),
    encoding: "utf8",
    timeout: 120_000
  })
  const line = run.stdout.trim().split("\n").pop() ?? ""
  try {
    return JSON.parse(line) as PeerResult
  } catch {
    throw new Error(`peer_bench ${peer} failed: ${run.stderr.slice(0, 300)}`)
  }
}

/** CPU seconds a process has used (user + system), from /proc. */
export const cpuSeconds = (pid: number) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}
