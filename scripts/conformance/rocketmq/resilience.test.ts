// Conformance: what happens around failures — a consumer process dying while it holds a message, and
// the node restarting under a running producer and push consumer (rocketmq-grpc.md §5, 15 and 24).
import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs"
import { afterAll, describe, expect, test } from "vitest"
import { codeOf, eventually, freePort, logger, receiveSome, rejection, restartablePort, type RunningNode, startBalancer, startNode, startServerProcess, steadyTraffic, strait } from "./harness.ts"

const nodes: Array<RunningNode> = []

// stopped gently: a node killed outright resets the streams that clients just closed, and the client
// (1.0.8) has already removed its error listeners from those, so the reset would crash its process
afterAll(async () => {
  for (const code of await Promise.all(nodes.map((node) => node.stop("SIGTERM")))) expect(code).toBe(0)
}, 60_000)

describe.concurrent("failures", () => {
  test("15. a push consumer that dies holding a message loses it: another consumer of the group gets it soon after", async () => {
    const node = await startNode({ topics: [{ name: "held", kind: "NORMAL" }], tuning: { clientTimeoutMillis: 2000 } })
    nodes.push(node)
    const producer = new Producer({ endpoints: node.endpoints, topics: ["held"], logger } as any)
    await producer.startup()
    const { messageId } = await producer.send({ topic: "held", body: Buffer.from("hold me") })
    const holder = spawn(process.execPath, [fileURLToPath(new URL("./holder.ts", import.meta.url)), node.endpoints, "g-held", "held"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    holder.stdout.on("data", (chunk) => (out += chunk))
    await eventually(() => out.includes(`holding ${messageId}`), 20_000)
    const other = new SimpleConsumer({ endpoints: node.endpoints, consumerGroup: "g-held", subscriptions: new Map([["held", "*"]]), awaitDuration: 2000, logger } as any)
    await other.startup()
    // alive (its stream is open): nobody else gets the message
    expect((await other.receive(1, 20_000)).length).toBe(0)
    holder.kill("SIGKILL")
    const killedAt = Date.now()
    const [again] = await receiveSome(other, 1, 20_000, 20_000)
    expect(again!.messageId).toBe(messageId)
    expect(again!.deliveryAttempt).toBe(2)
    // the client timeout (2 s) plus the proxy's check interval (5 s) plus the release delay (1 s)
    expect(Date.now() - killedAt).toBeLessThan(12_000)
    await other.shutdown()
    await producer.shutdown()
  }, 60_000)

  test("25. when too many receives long-poll at once, one more gets TOO_MANY_REQUESTS; after they end receives work again", async () => {
    const node = await startNode({ topics: [{ name: "busy", kind: "NORMAL" }], tuning: { maxParkedReceives: 1 } })
    nodes.push(node)
    const consumer = (group: string) =>
      new SimpleConsumer({ endpoints: node.endpoints, consumerGroup: group, subscriptions: new Map([["busy", "*"]]), awaitDuration: 3000, logger } as any)
    const first = consumer("g-busy-1")
    const second = consumer("g-busy-2")
    await Promise.all([first.startup(), second.startup()])
    const parked = first.receive(1, 20_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(codeOf(await rejection(second.receive(1, 20_000)))).toBe(42900)
    expect((await parked).length).toBe(0)
    expect((await second.receive(1, 20_000)).length).toBe(0)
    await Promise.all([first.shutdown(), second.shutdown()])
  }, 60_000)

  test("24. a rolling restart of two proxies behind one address, under a producer and a push consumer: no application error, nothing lost", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "strait-rolling-"))
    const brokerPort = await freePort()
    // the proxies start again on their ports, which no outgoing connection may take meanwhile
    const proxyPorts = [await restartablePort(), await restartablePort()]
    const broker = await startServerProcess("brokerServer", [dataDir, String(brokerPort)])
    const proxies = await Promise.all(proxyPorts.map((port) => startServerProcess("proxyServer", [String(brokerPort), String(port), "5000"])))
    const balancer = await startBalancer(proxyPorts)
    const endpoints = `127.0.0.1:${balancer.port}`
    try {
      await strait(["topic", "create", "rolling", "--flush", "sync", "--server", `127.0.0.1:${proxyPorts[0]}`])
      const traffic = await steadyTraffic(endpoints, "rolling", "g-rolling")
      const acknowledged = traffic.acknowledged
      await eventually(() => acknowledged.length >= 30, 20_000)
      // each proxy in turn: drained (GOAWAY) and started again, the other one serving meanwhile
      for (const [i, port] of proxyPorts.entries()) {
        expect(await proxies[i]!.stop()).toBe(0)
        const before = acknowledged.length
        await eventually(() => acknowledged.length >= before + 30, 20_000)
        proxies[i] = await startServerProcess("proxyServer", [String(brokerPort), String(port), "5000"])
      }
      const settled = acknowledged.length
      await eventually(() => acknowledged.length >= settled + 30, 20_000)
      await traffic.finish()
      expect(traffic.failures).toEqual([])
    } finally {
      // the proxies first, gently: they end the clients' streams in order (see afterAll)
      for (const proxy of proxies) await proxy.stop()
      await balancer.close()
      await broker.stop()
    }
  }, 120_000)

  test("24b. the node restarts under a running producer and push consumer: nothing acknowledged is lost, consumption resumes", async () => {
    const node = await startNode({ topics: [{ name: "steady", kind: "NORMAL", flush: "sync" }], tuning: { drainTimeoutMillis: 2000 } })
    nodes.push(node)
    // sends made while the node is down fail: a single node has no other proxy to go to (the
    // rolling restart of two proxies above sees no such failure)
    const traffic = await steadyTraffic(node.endpoints, "steady", "g-steady")
    const acknowledged = traffic.acknowledged
    await eventually(() => acknowledged.length >= 50, 20_000)
    expect(await node.stop("SIGTERM")).toBe(0)
    await node.restart()
    // sends succeed again once the node is back
    const sentBeforeRestart = acknowledged.length
    await eventually(() => acknowledged.length >= sentBeforeRestart + 50, 30_000)
    await traffic.finish()
    expect(acknowledged.length).toBeGreaterThanOrEqual(100)
  }, 120_000)
})
