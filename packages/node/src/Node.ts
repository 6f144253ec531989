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
import { Broker, Server as BrokerServer, Transactions } from "@strait/broker"
import { ConsumerGroup, Topic } from "@strait/core"
import { Server as RocketMQ } from "@strait/protocol-rocketmq"
import { AccessControl, Proxy } from "@strait/proxy"
import { RealDisk } from "@strait/storage"
import { MemoryTransport, TcpTransport } from "@strait/transport"
import { Duration, Effect, Layer, Schema } from "effect"
import { readFileSync } from "node:fs"

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
 * Tunables a node may override (tests and demos make waits shorter).
 *
 * @since 0.1.0
 */
export const TuningConfig = Schema.Struct({
  /** The first transaction check-back of an unresolved half message, after this many milliseconds (default 6,000). */
  transactionFirstCheckMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Later check-backs, this many milliseconds apart (default 30,000). */
  transactionCheckIntervalMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Check-backs before an unresolved half message is discarded (default 15). */
  transactionMaxChecks: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** The shortest invisibility a RocketMQ receive may ask for (default 10,000 ms). */
  minInvisibleMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** A client with no telemetry stream open and not heard from for this long is gone (default 30,000 ms). */
  clientTimeoutMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Most receives long-polling at once in a proxy (default 10,000); one more gets TOO_MANY_REQUESTS. */
  maxParkedReceives: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** How long a drain lets calls in flight finish (default 10,000 ms). */
  drainTimeoutMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
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
  access: Schema.optionalKey(AccessControl.AccessSettings),
  tuning: Schema.optionalKey(TuningConfig),
  /** PEM files of the certificate chain and the private key: RocketMQ gRPC over TLS only. */
  tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String }))
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

type Tuning = typeof TuningConfig.Type

// the tunables of the configuration over the defaults, one layer per service they tune
const tuned = (tuning: Tuning) => ({
  transactions: Layer.effect(
    Transactions.TransactionSettings,
    Effect.map(Effect.service(Transactions.TransactionSettings), (defaults) => ({
      ...defaults,
      ...(tuning.transactionFirstCheckMillis === undefined ? {} : { firstCheckAfter: Duration.millis(tuning.transactionFirstCheckMillis) }),
      ...(tuning.transactionCheckIntervalMillis === undefined ? {} : { checkInterval: Duration.millis(tuning.transactionCheckIntervalMillis) }),
      ...(tuning.transactionMaxChecks === undefined ? {} : { maxChecks: tuning.transactionMaxChecks })
    }))
  ),
  rocketmq: Layer.effect(
    RocketMQ.RocketMQSettings,
    Effect.map(Effect.service(RocketMQ.RocketMQSettings), (defaults) => ({
      ...defaults,
      ...(tuning.minInvisibleMillis === undefined ? {} : { minInvisibleMillis: tuning.minInvisibleMillis }),
      ...(tuning.drainTimeoutMillis === undefined ? {} : { drainTimeout: Duration.millis(tuning.drainTimeoutMillis) })
    }))
  ),
  proxy: Layer.effect(
    Proxy.ProxySettings,
    Effect.map(Effect.service(Proxy.ProxySettings), (defaults) => ({
      ...defaults,
      ...(tuning.clientTimeoutMillis === undefined ? {} : { clientTimeout: Duration.millis(tuning.clientTimeoutMillis) }),
      ...(tuning.maxParkedReceives === undefined ? {} : { maxParkedReceives: tuning.maxParkedReceives })
    }))
  )
})

/**
 * A TLS file could not be read.
 *
 * @since 0.1.0
 */
export class TlsFileUnreadable extends Schema.TaggedError<TlsFileUnreadable>()("TlsFileUnreadable", { path: Schema.String, reason: Schema.String }) {
  override get message() {
    return `cannot read ${this.path}: ${this.reason}`
  }
}

const readPem = (path: string) =>
  Effect.try({
    try: () => new Uint8Array(readFileSync(path)),
    catch: (error) => new TlsFileUnreadable({ path, reason: error instanceof Error ? error.message : String(error) })
  })

// a proxy in front of the broker at `broker`, serving RocketMQ gRPC
const proxyRole = (
  config: {
    readonly host: string
    readonly port: number
    readonly broker: string
    readonly access?: AccessControl.AccessSettings
    readonly tls?: { readonly certFile: string; readonly keyFile: string }
  },
  tuning: Tuning
) => {
  const settings = tuned(tuning)
  const proxy = Proxy.Proxy.layer({ broker: config.broker, ...(config.access === undefined ? {} : { access: config.access }) }).pipe(
    Layer.provide(settings.proxy)
  )
  const tls = config.tls
  const server = Layer.unwrap(Effect.map(
    tls === undefined ? Effect.succeed(undefined) : Effect.all({ certChain: readPem(tls.certFile), privateKey: readPem(tls.keyFile) }),
    (pem) => RocketMQ.RocketMQServer.layer({ host: config.host, port: config.port, ...(pem === undefined ? {} : { tls: pem }) })
  ))
  return server.pipe(
    Layer.provide(settings.rocketmq),
    Layer.provideMerge(proxy)
  )
}

/**
 * The all-in-one node: broker, proxy and RocketMQ gRPC server, on local storage, while the layer
 * lives. Closing it drains the gRPC server (GOAWAY), then stops the proxy, then the broker.
 *
 * @since 0.1.0
 */
export const allInOne = (config: NodeConfig) => {
  const brokerAddress = "mem://broker"
  const tuning = config.tuning ?? {}
  const broker = Broker.Broker.layer({ directory: `${config.dataDir}/broker` }).pipe(
    Layer.provide(RealDisk.layer),
    Layer.provide(tuned(tuning).transactions)
  )
  const brokerSide = Layer.mergeAll(
    BrokerServer.layer(brokerAddress),
    Layer.effectDiscard(provision(config))
  ).pipe(Layer.provideMerge(broker), Layer.provideMerge(MemoryTransport.layerLocal))
  return proxyRole({ ...config, broker: brokerAddress }, tuning).pipe(Layer.provideMerge(brokerSide))
}

/**
 * A proxy alone: RocketMQ gRPC at `host:port` in front of the broker at `broker` (`tcp://host:port`,
 * a broker's data-plane address), while the layer lives.
 *
 * @since 0.1.0
 */
export const proxyOnly = (config: {
  readonly host: string
  readonly port: number
  readonly broker: string
  readonly access?: AccessControl.AccessSettings
  readonly tuning?: Tuning
  readonly tls?: { readonly certFile: string; readonly keyFile: string }
}) => proxyRole(config, config.tuning ?? {}).pipe(Layer.provide(TcpTransport.layer))
