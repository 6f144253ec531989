// A real etcd for the specifications: started on free loopback ports with a temporary data
// directory, stopped (and its directory removed) when the tests end. `.ci/run` installs it
// (Debian's etcd-server).
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

export interface RunningEtcd {
  readonly endpoint: string
  readonly stop: () => Promise<void>
}

export const startEtcd = async (): Promise<RunningEtcd> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "strait-etcd-"))
  const clientPort = await freePort()
  const peerPort = await freePort()
  const endpoint = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const child = spawn("etcd", [
    "--name", "test",
    "--data-dir", dataDir,
    "--listen-client-urls", endpoint,
    "--advertise-client-urls", endpoint,
    "--listen-peer-urls", peer,
    "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `test=${peer}`,
    "--log-level", "error"
  ], { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr.on("data", (chunk) => (stderr += String(chunk)))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`etcd did not start (is etcd-server installed?): ${error.message}`)))
    child.once("spawn", () => resolve())
  })
  await spawned
  for (let tries = 0; ; tries++) {
    const healthy = await fetch(`${endpoint}/health`).then((response) => response.ok, () => false)
    if (healthy) break
    if (child.exitCode !== null || tries > 200) throw new Error(`etcd did not become healthy: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    endpoint,
    stop: async () => {
      child.kill("SIGTERM")
      await exited
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
