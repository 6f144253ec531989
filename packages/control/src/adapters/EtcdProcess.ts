/**
 * A local etcd process (Debian's `etcd-server`): what `strait cluster up` starts when it is given no
 * etcd, and what the specifications run against.
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/**
 * A running etcd.
 *
 * @since 0.1.0
 */
export interface RunningEtcd {
  /** Its client URL. */
  readonly endpoint: string
  readonly process: ChildProcess
  /** Stops it (SIGTERM) and waits for it to exit; a temporary data directory is removed. */
  readonly stop: () => Promise<void>
}

const freePort = (host: string) =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

interface StartOptions {
  readonly host?: string
  readonly dataDir?: string
  readonly clientPort?: number
  readonly peerPort?: number
  /** Where its log lines go (default: dropped). */
  readonly onOutput?: (chunk: string) => void
}

/**
 * Starts etcd and waits until it is healthy. Without `dataDir` it keeps its data in a temporary
 * directory; without ports it takes free ones, and takes others when one was taken before etcd
 * bound it (another process may take a port between its probe and etcd's bind).
 *
 * @since 0.1.0
 */
export const start = async (options: StartOptions = {}): Promise<RunningEtcd> => {
  const chosen = options.clientPort === undefined || options.peerPort === undefined
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options)
    } catch (error) {
      if (!chosen || attempt >= 5 || !String(error).includes("address already in use")) throw error
    }
  }
}

const startOnce = async (options: StartOptions): Promise<RunningEtcd> => {
  const host = options.host ?? "127.0.0.1"
  const temporary = options.dataDir === undefined
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "strait-etcd-"))
  const endpoint = `http://${host}:${options.clientPort ?? await freePort(host)}`
  const peer = `http://${host}:${options.peerPort ?? await freePort(host)}`
  const child = spawn("etcd", [
    "--name", "strait",
    "--data-dir", dataDir,
    "--listen-client-urls", endpoint,
    "--advertise-client-urls", endpoint,
    "--listen-peer-urls", peer,
    "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `strait=${peer}`,
    "--logger", "zap",
    "--log-level", "error"
  ], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const collect = (chunk: unknown) => {
    output += String(chunk)
    options.onOutput?.(String(chunk))
  }
  child.stdout.on("data", collect)
  child.stderr.on("data", collect)
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  await new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`cannot start etcd (install Debian's etcd-server): ${error.message}`)))
    child.once("spawn", () => resolve())
  })
  for (let tries = 0; ; tries++) {
    const healthy = await fetch(`${endpoint}/health`).then((response) => response.ok, () => false)
    if (healthy) break
    if (child.exitCode !== null || tries > 600) {
      child.kill("SIGKILL")
      await exited
      if (temporary) fs.rmSync(dataDir, { recursive: true, force: true })
      throw new Error(`etcd did not become healthy: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    endpoint,
    process: child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await exited
      if (temporary) fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
