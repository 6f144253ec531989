/**
 * A Strait node assembled from its configuration: today the all-in-one node (`strait dev`), a broker
 * on local storage with a proxy in front serving RocketMQ gRPC, in one process.
 *
 * **Details**
 *
 * The broker keeps its data under `<dataDir>/broker`; the proxy reaches it over the in-process
 * transport (`mem://broker`), the same data-plane protocol a proxy on another machine speaks over TCP.
 * Topics and groups listed in the configuration are created at start when missing (existing ones are
 * left as they are), so a restart keeps everything.
 *
 * @since 0.1.0
 */
import { Broker, Server as BrokerServer } from "@strait/broker"
import { ConsumerGroup, Topic } from "@strait/core"
import { Server as RocketMQ } from "@strait/protocol-rocketmq"
import { AccessControl, Proxy } from "@strait/proxy"
import { RealDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Effect, Layer, Schema } from "effect"

/**
 * A topic the configuration asks for.
 *
 * @since 0.1.0
 */
export const TopicConfig = Schema.Struct({
  name: Schema.String,
  kind: Topic.TopicKind,
  queues: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 }))),
  flush: Schema.optionalKey(Schema.Literals(["sync", "async"]))
})

/**
 * A consumer group the configuration asks for.
 *
 * @since 0.1.0
 */
export const GroupConfig = Schema.Struct({
  name: Schema.String,
  maxDeliveryAttempts: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  fifo: Schema.optionalKey(Schema.Boolean)
})

/**
 * A node's configuration: where it keeps data, where it listens, what it starts with, who may use it.
 *
 * @since 0.1.0
 */
export const NodeConfig = Schema.Struct({
  dataDir: Schema.String,
  host: Schema.String,
  port: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })),
  topics: Schema.optionalKey(Schema.Array(TopicConfig)),
  groups: Schema.optionalKey(Schema.Array(GroupConfig)),
  access: Schema.optionalKey(AccessControl.AccessSettings)
})

/**
 * A node's configuration.
 *
 * @since 0.1.0
 */
export type NodeConfig = typeof NodeConfig.Type

/**
 * The defaults of `strait dev`.
 *
 * @since 0.1.0
 */
export const defaults = { dataDir: "./strait-data", host: "127.0.0.1", port: 8081 } as const

// topics and groups of the configuration, created when missing
const provision = (config: NodeConfig) =>
  Effect.gen(function*() {
    const broker = yield* Broker.Broker
    const existing = new Set<string>((yield* broker.topics).map((topic) => topic.name))
    for (const topic of config.topics ?? []) {
      if (existing.has(topic.name)) continue
      const name = yield* Topic.validateName(topic.name)
      yield* broker.createTopic({ name, kind: topic.kind, queues: topic.queues ?? 8, flush: topic.flush ?? "async" })
      yield* Effect.logInfo(`created topic ${topic.name} (${topic.kind})`)
    }
    for (const group of config.groups ?? []) {
      const name = yield* ConsumerGroup.validateName(group.name)
      const current = yield* broker.group(name)
      const wanted = new ConsumerGroup.ConsumerGroup({
        ...current,
        ...(group.maxDeliveryAttempts === undefined ? {} : { maxDeliveryAttempts: group.maxDeliveryAttempts }),
        ...(group.fifo === undefined ? {} : { fifo: group.fifo })
      })
      if (wanted.maxDeliveryAttempts !== current.maxDeliveryAttempts || wanted.fifo !== current.fifo) yield* broker.setGroup(wanted)
    }
  })

/**
 * The all-in-one node: broker, proxy and RocketMQ gRPC server, on local storage, while the layer
 * lives. Closing it drains the gRPC server (GOAWAY), then stops the proxy, then the broker.
 *
 * @since 0.1.0
 */
export const allInOne = (config: NodeConfig) => {
  const brokerAddress = "mem://broker"
  const broker = Broker.Broker.layer({ directory: `${config.dataDir}/broker` }).pipe(Layer.provide(RealDisk.layer))
  const transport = MemoryTransport.layerLocal
  const brokerSide = Layer.mergeAll(
    BrokerServer.layer(brokerAddress),
    Layer.effectDiscard(provision(config))
  ).pipe(Layer.provideMerge(broker), Layer.provideMerge(transport))
  const proxy = Proxy.Proxy.layer({ broker: brokerAddress, ...(config.access === undefined ? {} : { access: config.access }) })
  return RocketMQ.RocketMQServer.layer({ host: config.host, port: config.port }).pipe(
    Layer.provideMerge(proxy),
    Layer.provideMerge(brokerSide)
  )
}
