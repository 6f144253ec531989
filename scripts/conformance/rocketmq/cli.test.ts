// Conformance of the strait command for people: produce and consume through the official client,
// a group's lag and messages in flight, the cluster status, and one-line errors.
import { afterAll, describe, expect, test } from "vitest"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ShmTransport } from "@strait/transport-native"
import { eventually, freePort, freePorts, type RunningNode, startNode, startStrait, steadyTraffic, strait } from "./harness.ts"

const nodes: Array<RunningNode> = []
afterAll(async () => {
  for (const code of await Promise.all(nodes.map((node) => node.stop("SIGTERM")))) expect(code).toBe(0)
}, 60_000)

const failure = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  strait(args, env).then(
    () => Promise.reject(new Error(`strait ${args.join(" ")} succeeded`)),
    (error) => String(error)
  )

describe.concurrent("the strait command", () => {
  test("28. produce sends with tag and keys, consume prints and acknowledges them, a group shows its lag and messages in flight", async () => {
    const node = await startNode({ topics: [{ name: "cli", kind: "NORMAL", queues: 2 }] })
    nodes.push(node)
    expect(await node.admin("produce", "cli", "--body", "hello from the shell", "--tag", "greeting", "--key", "k1,k2")).toMatch(/^sent [0-9A-F]+ to cli\n$/)
    expect(await node.admin("produce", "cli", "--count", "40", "--size", "10")).toContain("sent 40 of 40")
    const consumed = await node.admin("consume", "cli", "--group", "g-cli", "--count", "11")
    expect(consumed).toMatch(/tag=greeting keys=k1,k2 attempt=1: hello from the shell/)
    expect(consumed).toContain("received 11")
    const described = await node.admin("group", "describe", "g-cli")
    expect(described).toMatch(/^g-cli\tmaxDeliveryAttempts=17\tfifo=false\tlag=30\tinFlight=0/)
    expect(described.match(/cli\/\d@broker-0\tend=\d+\tconsumed=\d+\tlag=\d+\tinFlight=0/g)?.length).toBe(2)
    expect(await node.admin("group", "list")).toContain("g-cli\tmaxDeliveryAttempts=17\tfifo=false\tlag=30")
    const status = await node.admin("status")
    expect(status).toContain("broker-0\tmem://broker\tqueues=2")
    expect(status).toContain(`127.0.0.1:${node.port}`)
    expect(status).toMatch(/cli\/0\tbroker-0 epoch=1/)
  }, 60_000)

  test("29. a node role that needs etcd says so in one line, and a bad configuration value is refused before anything starts", async () => {
    const missing = await failure(["node", "--role", "broker", "--data-dir", "/tmp/strait-cli-never"])
    expect(missing).toContain("role broker needs cluster.etcd")
    const fromEnvironment = await failure(["node", "--data-dir", "/tmp/strait-cli-never"], { STRAIT_ROLE: "proxy" })
    expect(fromEnvironment).toContain("role proxy needs cluster.etcd")
    const invalid = await failure(["node", "--role", "broker", "--broker-id", "no spaces allowed", "--etcd", "http://127.0.0.1:1"])
    expect(invalid).toContain("invalid configuration")
  }, 60_000)
})

// each starts a whole cluster of processes: one at a time, so that none starves the others (or the
// timing-free tests above) of this machine's CPU
describe("strait cluster up", () => {
  test("30. strait cluster up starts etcd, brokers and proxies behind one address, which serves admin, produce and consume; an interrupt stops them all", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "strait-cluster-up-"))
    // the proxies link to the brokers through shared memory where the addon is built (TCP otherwise)
    const config = join(dataDir, "config.json")
    writeFileSync(config, JSON.stringify({ cluster: { sharedMemory: true } }))
    // the command numbers each node's ports up from the bases given
    const [port, etcdPort, brokerPort, proxyPort] = [await freePort(), await freePorts(2), await freePorts(2), await freePorts(2)]
    const cluster = await startStrait([
      "cluster", "up", "--brokers", "2", "--proxies", "2", "--data-dir", dataDir, "--port", String(port), "--config", config,
      "--etcd-port", String(etcdPort), "--broker-port", String(brokerPort), "--proxy-port", String(proxyPort), "--native-port", String(await freePorts(2))
    ], /clients connect to/)
    try {
      const server = ["--server", `127.0.0.1:${port}`]
      await strait(["topic", "create", "up", "--queues", "4", ...server])
      await eventually(async () => /queues \(4, 0 unserved\)/.test(await strait(["status", ...server])), 20_000)
      const status = await strait(["status", ...server])
      expect(status).toContain("brokers (2):")
      expect(status).toContain("proxies (2):")
      expect(await strait(["produce", "up", "--count", "25", ...server])).toContain("sent 25 of 25")
      expect(await strait(["consume", "up", "--group", "g-up", "--count", "25", "--quiet", ...server])).toContain("received 25")
      expect(existsSync(join(dataDir, "broker-1", "broker", "shm.sock"))).toBe(ShmTransport.available().available)
    } finally {
      expect(await cluster.stop("SIGINT")).toBe(0)
    }
  }, 120_000)

  test("30b. strait cluster up --autoscale scales the proxies out under a burst (warm standbys first) and back in under light traffic, whose clients move off the stopped proxies with no error", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "strait-autoscale-"))
    // a proxy is meant to carry 20 messages/s here (sent and received), kept at half that: the burst
    // of one official client (some 35 a second) needs all three, the light traffic one
    const policy = join(dataDir, "policy.json")
    writeFileSync(policy, JSON.stringify({
      proxy: { min: 1, max: 3, target: 0.5, capacity: { messagesPerSecond: 20 }, model: { _tag: "PayAsYouGo" }, scaleOutCooldown: 1000, scaleInCooldown: 3000 }
    }))
    const [port, etcdPort, brokerPort, proxyPort, nativePort] = [await freePort(), await freePorts(2), await freePort(), await freePorts(5), await freePorts(5)]
    const cluster = await startStrait([
      "cluster", "up", "--brokers", "1", "--proxies", "1", "--autoscale", "--warm", "1", "--policy", policy, "--data-dir", dataDir, "--port", String(port),
      "--etcd-port", String(etcdPort), "--broker-port", String(brokerPort), "--proxy-port", String(proxyPort), "--native-port", String(nativePort)
    ], /clients connect to/)
    const server = ["--server", `127.0.0.1:${port}`]
    const status = () => strait(["status", ...server])
    try {
      expect(cluster.output()).toContain("proxy-2")
      expect(cluster.output()).toContain("standby")
      await strait(["topic", "create", "burst", "--queues", "2", ...server])
      await strait(["topic", "create", "light", "--queues", "2", ...server])
      expect(await status()).toContain("proxies (1):")

      const burst = await steadyTraffic(`127.0.0.1:${port}`, "burst", "g-burst")
      await eventually(async () => (await status()).includes("proxies (3):"), 60_000)
      // light traffic from new clients: the balancer spreads their connections over the three
      const light = await steadyTraffic(`127.0.0.1:${port}`, "light", "g-light", 500)
      await burst.finish()
      expect(burst.failures).toEqual([])

      await eventually(async () => (await status()).includes("proxies (1):"), 90_000)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await light.finish()
      expect(light.failures).toEqual([])
      expect(light.acknowledged.length).toBeGreaterThan(0)

      const shown = await status()
      expect(shown).toMatch(/elasticity \(last \d+ decisions\):/)
      expect(shown).toMatch(/proxies 1 → [23]\tstarted proxy-2/)
      expect(shown).toMatch(/proxies 2 → 1\tstopped proxy-\d/)
      expect(shown).not.toContain("FAILED")
    } catch (error) {
      // what the controller decided, and when, says why
      console.error("strait cluster up said:\n" + cluster.output().split("\n").filter((line) => !line.startsWith("[etcd]")).join("\n"))
      throw error
    } finally {
      expect(await cluster.stop("SIGINT")).toBe(0)
    }
  }, 240_000)

  test("30c. strait cluster up --autoscale --max-brokers adds a broker under a burst, whose queues take writes there, and retires it once drained under light traffic, with no client error and nothing lost", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "strait-autoscale-brokers-"))
    // a broker is meant to store 10 messages/s here, kept at half that: the burst of one official
    // client needs two, the light traffic one; the proxies stay at one
    const policy = join(dataDir, "policy.json")
    writeFileSync(policy, JSON.stringify({
      proxy: { min: 1, max: 1, target: 0.5, capacity: { messagesPerSecond: 1_000_000 }, model: { _tag: "PayAsYouGo" }, scaleOutCooldown: 1000, scaleInCooldown: 3000 },
      broker: { min: 1, max: 2, target: 0.5, capacity: { messagesPerSecond: 10 }, model: { _tag: "PayAsYouGo" }, scaleOutCooldown: 1000, scaleInCooldown: 3000 }
    }))
    const [port, etcdPort, brokerPort, proxyPort, nativePort] = [await freePort(), await freePorts(2), await freePorts(2), await freePorts(2), await freePorts(2)]
    const cluster = await startStrait([
      "cluster", "up", "--brokers", "1", "--max-brokers", "2", "--proxies", "1", "--autoscale", "--warm", "0", "--policy", policy, "--data-dir", dataDir,
      "--port", String(port), "--etcd-port", String(etcdPort), "--broker-port", String(brokerPort), "--proxy-port", String(proxyPort), "--native-port", String(nativePort)
    ], /clients connect to/)
    const server = ["--server", `127.0.0.1:${port}`]
    const status = () => strait(["status", ...server])
    try {
      await strait(["topic", "create", "grow", "--queues", "4", ...server])
      expect(await status()).toContain("brokers (1):")
      const burst = await steadyTraffic(`127.0.0.1:${port}`, "grow", "g-grow")
      // the new broker writes its share of the topic's queues
      await eventually(async () => /grow\/\d\tbroker-2 epoch=2/.test(await status()), 90_000)
      expect(await status()).toContain("brokers (2):")
      await burst.finish()
      expect(burst.failures).toEqual([])
      // light traffic (the same topic and group, so that what broker-2 still holds is consumed)
      const light = await steadyTraffic(`127.0.0.1:${port}`, "grow", "g-grow", 500)
      await eventually(async () => (await status()).includes("brokers (1):"), 120_000)
      await light.finish()
      expect(light.failures).toEqual([])
      const shown = await status()
      expect(shown).toMatch(/brokers 1 → 2\tstarted broker-2; \d+ queues moved/)
      expect(shown).toMatch(/brokers 2 → 1\tstopped broker-2 once drained/)
      expect(shown).not.toContain("FAILED")
      expect(shown).not.toContain("broker-2 epoch")
    } catch (error) {
      console.error("strait cluster up said:\n" + cluster.output().split("\n").filter((line) => !line.startsWith("[etcd]")).join("\n"))
      throw error
    } finally {
      expect(await cluster.stop("SIGINT")).toBe(0)
    }
  }, 300_000)
})
