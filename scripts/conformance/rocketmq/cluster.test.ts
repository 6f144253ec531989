// Conformance: a cluster of processes on a real etcd (brokers and proxies as `strait node`, a load
// balancer in front), under the official client: a broker killed outright and restarted, every proxy
// restarted in turn. Acknowledged messages are never lost; deliveries are at least once.
import { describe, expect, test } from "vitest"
import { eventually, startCluster, steadyTraffic } from "./harness.ts"

// short leases so that a dead broker's queues move within seconds; short drains
const config = { cluster: { leaseTtlMillis: 3000 }, tuning: { drainTimeoutMillis: 2000 } }

describe.concurrent("a cluster", () => {
  test("26. a broker killed with SIGKILL and restarted under a producer and a push consumer: sends go on, nothing acknowledged is lost", async () => {
    const cluster = await startCluster({ brokers: 3, proxies: 1, config })
    try {
      await cluster.admin("topic", "create", "failover", "--queues", "6", "--flush", "sync")
      await eventually(async () => /queues \(6, 0 unserved\)/.test(await cluster.admin("status")), 20_000)
      const traffic = await steadyTraffic(cluster.endpoints, "failover", "g-failover")
      const acknowledged = traffic.acknowledged
      await eventually(() => acknowledged.length >= 60, 30_000)
      expect(await cluster.brokers[0]!.stop("SIGKILL")).toBe(null)
      const atKill = acknowledged.length
      // the proxy sends to the brokers that answer; once the lease expires the others take the queues
      await eventually(() => acknowledged.length >= atKill + 60, 30_000)
      await eventually(async () => !/broker-1/.test((await cluster.admin("status")).split("proxies")[0]!), 20_000)
      // the broker comes back on its own data: the messages it stored are delivered after all
      await cluster.brokers[0]!.restart()
      await eventually(async () => /broker-1\t\S+\tqueues=[1-9]/.test(await cluster.admin("status")), 20_000)
      const atReturn = acknowledged.length
      await eventually(() => acknowledged.length >= atReturn + 60, 30_000)
      await traffic.finish()
      expect(traffic.failures).toEqual([])
    } finally {
      await cluster.stop()
    }
  }, 180_000)

  test("27. every proxy of a cluster restarted in turn under a producer and a push consumer: no application error, nothing lost", async () => {
    const cluster = await startCluster({ brokers: 2, proxies: 2, config })
    try {
      await cluster.admin("topic", "create", "proxies-rolling", "--queues", "4", "--flush", "sync")
      await eventually(async () => /queues \(4, 0 unserved\)/.test(await cluster.admin("status")), 20_000)
      const traffic = await steadyTraffic(cluster.endpoints, "proxies-rolling", "g-proxies-rolling")
      const acknowledged = traffic.acknowledged
      await eventually(() => acknowledged.length >= 30, 30_000)
      for (const proxy of cluster.proxies) {
        expect(await proxy.stop()).toBe(0)
        const before = acknowledged.length
        await eventually(() => acknowledged.length >= before + 30, 30_000)
        await proxy.restart()
      }
      const settled = acknowledged.length
      await eventually(() => acknowledged.length >= settled + 30, 30_000)
      await traffic.finish()
      expect(traffic.failures).toEqual([])
    } finally {
      await cluster.stop()
    }
  }, 180_000)
})
