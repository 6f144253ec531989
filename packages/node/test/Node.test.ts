import { assert, describe, it } from "@effect/vitest"
import { Broker } from "@strait/broker"
import { ConsumerGroup } from "@strait/core"
import { Proxy } from "@strait/proxy"
import { RealDisk } from "@strait/storage"
import { Server as RocketMQ } from "@strait/protocol-rocketmq"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Node } from "../src/index.ts"

const config = (dataDir: string): Node.NodeConfig => ({
  dataDir,
  host: "127.0.0.1",
  port: 0,
  topics: [{ name: "orders", kind: "FIFO", queues: 4 }, { name: "audit", kind: "NORMAL" }],
  groups: [{ name: "billing", maxDeliveryAttempts: 5, fifo: true }]
})

describe("the all-in-one node", () => {
  it.live("creates the topics and groups of its configuration, serves RocketMQ gRPC, and keeps them across a restart", () =>
    Effect.gen(function*() {
      const dataDir = mkdtempSync(join(tmpdir(), "strait-node-"))
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Node.allInOne(config(dataDir)))
        const broker = Context.get(context, Broker.Broker)
        const server = Context.get(context, RocketMQ.RocketMQServer)
        assert.isAbove(server.port, 0)
        const topics = yield* broker.topics
        return { topics: topics.map((t) => [t.name, t.kind, t.queues]), group: yield* broker.group("billing") }
      }))
      assert.deepStrictEqual(first.topics.sort(), [["audit", "NORMAL", 8], ["orders", "FIFO", 4]])
      assert.deepStrictEqual([first.group.maxDeliveryAttempts, first.group.fifo], [5, true])
      // restarted without topics in its configuration: what was created is still there
      const second = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Node.allInOne({ dataDir, host: "127.0.0.1", port: 0 }))
        const broker = Context.get(context, Broker.Broker)
        return { topics: (yield* broker.topics).map((t) => t.name), group: yield* broker.group("billing") }
      }))
      assert.deepStrictEqual([...second.topics].sort(), ["audit", "orders"])
      assert.strictEqual(second.group.maxDeliveryAttempts, 5)
    }))

  it.live("a data directory from before the catalog keeps its topics and group settings: the node publishes them and serves them", () =>
    Effect.gen(function*() {
      const dataDir = mkdtempSync(join(tmpdir(), "strait-node-"))
      // the broker alone wrote this directory, as nodes did before the control plane
      yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Broker.Broker.layer({ directory: `${dataDir}/broker` }).pipe(Layer.provide(RealDisk.layer)))
        const broker = Context.get(context, Broker.Broker)
        yield* broker.createTopic({ name: "legacy", kind: "FIFO", queues: 3 })
        yield* broker.setGroup(new ConsumerGroup.ConsumerGroup({ name: "old-group" as ConsumerGroup.ConsumerGroupName, fifo: true, maxDeliveryAttempts: 4 }))
      }))
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Node.allInOne({ dataDir, host: "127.0.0.1", port: 0 }))
        const proxy = Context.get(context, Proxy.Proxy)
        const caller = { clientId: "", namespace: "", principal: { account: undefined } }
        return { topic: yield* proxy.topic(caller, "legacy"), group: yield* proxy.group(caller, "old-group") }
      }))
      assert.deepStrictEqual([seen.topic.kind, seen.topic.queues], ["FIFO", 3])
      assert.deepStrictEqual([seen.group.fifo, seen.group.maxDeliveryAttempts], [true, 4])
    }))
})
