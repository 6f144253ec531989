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
import { Broker, Member, Topics, Transactions } from "@strait/broker"
import { Catalog, EmbeddedStore, EtcdStore, LoadReports, NodeRegistration } from "@strait/control"
import { ConsumerGroup, Topic } from "@strait/core"
import { Server as NativeServer } from "@strait/protocol-native"
import { Server as RocketMQ } from "@strait/protocol-rocketmq"
import { AccessControl, Proxy, Quotas } from "@strait/proxy"
import { RealDisk } from "@strait/storage"
import { MemoryTransport, TcpTransport } from "@strait/transport"
import { hostId, NativeTransport, ShmTransport, VerbsTransport } from "@strait/transport-native"
import { Duration, Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { resolve } from "node:path"

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
  drainTimeoutMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** How long messages are kept, in hours, consumed or not (RocketMQ's `fileReservedTime`; default 72). */
  retentionHours: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThan(0))),
  /** Most bytes of messages each topic keeps, the oldest going first (default: no limit). */
  retentionBytesPerTopic: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})

/**
 * How a node joins a cluster.
 *
 * @since 0.1.0
 */
export const ClusterConfig = Schema.Struct({
  /** etcd client URLs (`http://host:2379`). Without them the metadata store is embedded in `<dataDir>/metadata`: one node only. */
  etcd: Schema.optionalKey(Schema.Array(Schema.String)),
  /** The key prefix of this cluster in etcd (default `/strait/`). */
  prefix: Schema.optionalKey(Schema.String),
  /** This broker's id, stable across restarts (default `broker-0`). */
  brokerId: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.-]{1,64}$/))),
  /** Where this broker's data plane listens (default `tcp://127.0.0.1:7001`). */
  brokerListen: Schema.optionalKey(Schema.String),
  /** Where proxies reach this broker, when not `brokerListen`. */
  brokerAdvertise: Schema.optionalKey(Schema.String),
  /** This proxy's id in the control plane (default `host:port`; set it where every proxy listens on the same address, as pods do). */
  proxyId: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_.:-]{1,128}$/))),
  /**
   * A proxy that starts warm (physical pre-elasticity): it serves its ports but registers, and so
   * gets traffic, only once the orchestrator activates it (`activate/proxy/<proxyId>`).
   */
  standby: Schema.optionalKey(Schema.Boolean),
  /** How long a dead broker's queues wait before they move to live brokers (default 10,000 ms). */
  leaseTtlMillis: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1000))),
  /**
   * Brokers also serve, and proxies link to brokers on their host, over shared memory where the
   * addon is available (default false: on the 2-vCPU machines measured so far a shared-memory link
   * shortens the proxy→broker round trip by 26–30 % but costs the same CPU per message as TCP, and
   * it has run in fewer cluster tests; see `packages/transport-native/README.md`).
   */
  sharedMemory: Schema.optionalKey(Schema.Boolean),
  /**
   * Where this broker also serves its data plane over RDMA (`rdma://host:port`: a TCP side channel
   * beside the RDMA device), for proxies whose hosts have RDMA too. Taken only where RDMA verbs are
   * available here (a device, and the addon built with the libibverbs headers); elsewhere the node
   * logs why and serves TCP alone. Proxies use it when their own host has RDMA, falling back to TCP.
   */
  rdmaListen: Schema.optionalKey(Schema.String),
  /** Where proxies reach this broker over RDMA, when not `rdmaListen`. */
  rdmaAdvertise: Schema.optionalKey(Schema.String)
})

/**
 * What a node runs: a broker, a proxy, or both.
 *
 * @since 0.1.0
 */
export const Role = Schema.Literals(["all", "broker", "proxy"])

/**
 * What a node runs.
 *
 * @since 0.1.0
 */
export type Role = typeof Role.Type

/**
 * A node's configuration: where it keeps data, where it listens, what it starts with, who may use it.
 *
 * @since 0.1.0
 */
export const NodeConfig = Schema.Struct({
  role: Schema.optionalKey(Role),
  cluster: Schema.optionalKey(ClusterConfig),
  dataDir: Schema.String,
  host: Schema.String,
  port: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })),
  topics: Schema.optionalKey(Schema.Array(TopicConfig)),
  groups: Schema.optionalKey(Schema.Array(GroupConfig)),
  access: Schema.optionalKey(AccessControl.AccessSettings),
  /** Per-namespace limits each proxy of this node enforces: `{ default?, namespaces? }` of `{ messagesPerSecond?, bytesPerSecond? }`. */
  quotas: Schema.optionalKey(Quotas.QuotaSettings),
  tuning: Schema.optionalKey(TuningConfig),
  /** PEM files of the certificate chain and the private key: RocketMQ gRPC over TLS only. */
  tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String })),
  /** The port of Strait's own client protocol (`@strait/client`) on `host`: default `port + 1`, any free port when `port` is 0. */
  nativePort: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 })))
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

/**
 * Creates the configuration's topics and groups in the catalog when missing, and writes its access
 * settings there.
 *
 * @since 0.1.0
 */
export const provision = (config: Pick<NodeConfig, "topics" | "groups" | "access">) =>
  Effect.gen(function*() {
    if (config.access !== undefined) yield* Catalog.putAccessSettings(encodeAccess(config.access))
    for (const topic of config.topics ?? []) {
      const spec = yield* Topics.decodeSpec({ name: topic.name, kind: topic.kind, queues: topic.queues ?? 8, flush: topic.flush ?? "async" })
      if (yield* Catalog.createTopic({ ...spec })) yield* Effect.logInfo(`created topic ${topic.name} (${topic.kind})`)
    }
    const existing = new Map((yield* Catalog.groups).map((group) => [group.name, group]))
    for (const group of config.groups ?? []) {
      const name = yield* ConsumerGroup.validateName(group.name)
      const current = new ConsumerGroup.ConsumerGroup({ ...existing.get(name), name })
      const wanted = new ConsumerGroup.ConsumerGroup({
        ...current,
        ...(group.maxDeliveryAttempts === undefined ? {} : { maxDeliveryAttempts: group.maxDeliveryAttempts }),
        ...(group.fifo === undefined ? {} : { fifo: group.fifo })
      })
      if (!existing.has(name) || wanted.maxDeliveryAttempts !== current.maxDeliveryAttempts || wanted.fifo !== current.fifo) {
        yield* Catalog.putGroup({ ...wanted })
      }
    }
  })

type Tuning = typeof TuningConfig.Type

const encodeAccess = Schema.encodeSync(AccessControl.AccessSettingsJson)

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
  broker: Layer.effect(
    Broker.BrokerSettings,
    Effect.map(Effect.service(Broker.BrokerSettings), (defaults) => ({
      ...defaults,
      retention: {
        ...defaults.retention,
        ...(tuning.retentionHours === undefined ? {} : { maxAgeMillis: Duration.toMillis(Duration.hours(tuning.retentionHours)) }),
        ...(tuning.retentionBytesPerTopic === undefined ? {} : { maxBytes: tuning.retentionBytesPerTopic })
      }
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

// a proxy serving RocketMQ gRPC, in front of the broker at `broker`, or of the cluster's brokers
const proxyRole = <R, A = never, E = never>(
  config: {
    readonly host: string
    readonly port: number
    readonly access?: AccessControl.AccessSettings
    readonly quotas?: Quotas.QuotaSettings
    readonly tls?: { readonly certFile: string; readonly keyFile: string }
  },
  tuning: Tuning,
  proxyLayer: (options: { readonly access?: AccessControl.AccessSettings; readonly quotas?: Quotas.QuotaSettings }) => Layer.Layer<Proxy.Proxy, never, R>,
  // more servers of the same proxy (the native protocol)
  beside: Layer.Layer<A, E, Proxy.Proxy>
) => {
  const settings = tuned(tuning)
  const proxy = proxyLayer({
    ...(config.access === undefined ? {} : { access: config.access }),
    ...(config.quotas === undefined ? {} : { quotas: config.quotas })
  }).pipe(Layer.provide(settings.proxy))
  const tls = config.tls
  const server = Layer.unwrap(Effect.map(
    tls === undefined ? Effect.succeed(undefined) : Effect.all({ certChain: readPem(tls.certFile), privateKey: readPem(tls.keyFile) }),
    (pem) => RocketMQ.RocketMQServer.layer({ host: config.host, port: config.port, ...(pem === undefined ? {} : { tls: pem }) })
  ))
  return Layer.merge(server, beside).pipe(
    Layer.provide(settings.rocketmq),
    Layer.provideMerge(proxy)
  )
}

/**
 * A role needs a cluster setting it was not given.
 *
 * @since 0.1.0
 */
export class ConfigurationInvalid extends Schema.TaggedError<ConfigurationInvalid>()("ConfigurationInvalid", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/**
 * The defaults of a cluster broker.
 *
 * @since 0.1.0
 */
export const clusterDefaults = { brokerId: "broker-0", brokerListen: "tcp://127.0.0.1:7001" } as const

// the metadata store: etcd when configured, else embedded in the data directory
const metadataOf = (config: NodeConfig) => {
  const etcd = config.cluster?.etcd ?? []
  return etcd.length > 0
    ? EtcdStore.layer({ endpoints: etcd, ...(config.cluster?.prefix === undefined ? {} : { prefix: config.cluster.prefix }) })
    : EmbeddedStore.layer(`${config.dataDir}/metadata`).pipe(Layer.provide(RealDisk.layer))
}

// shared memory for this node's links: its host id, when the config asks for it and the addon is here
const sharedMemoryHost = (config: NodeConfig) =>
  config.cluster?.sharedMemory === true && isClustered(config) && ShmTransport.available().available ? hostId() : undefined

// where a cluster broker also serves over shared memory: a socket in its data directory, or (a path
// too long for a Unix socket) one in the temporary directory named after it
const shmListenOf = (config: NodeConfig) => {
  const directory = resolve(config.dataDir, "broker")
  const inData = `${directory}/shm.sock`
  return `shm://${inData.length <= 100 ? inData : `${tmpdir()}/strait-${createHash("sha256").update(directory).digest("hex").slice(0, 16)}.sock`}`
}

// RDMA for this node's broker: where, when the config asks for it and verbs are available here
const rdmaOf = (config: NodeConfig) => {
  const listen = config.cluster?.rdmaListen
  if (listen === undefined || !VerbsTransport.available().available) return undefined
  return { listen, ...(config.cluster?.rdmaAdvertise === undefined ? {} : { advertise: config.cluster.rdmaAdvertise }) }
}

// a configured RDMA listener that cannot be served here: said once at start
const rdmaUnavailable = (config: NodeConfig) =>
  Layer.effectDiscard(Effect.suspend(() => {
    const state = VerbsTransport.available()
    return config.cluster?.rdmaListen === undefined || state.available
      ? Effect.void
      : Effect.logWarning(`RDMA is not available here (${state.reason}): the broker serves ${config.cluster.rdmaListen} on no RDMA link, only TCP`)
  }))

// a cluster broker of this node, listening at `listen`
const brokerRole = (config: NodeConfig, listen: string, adoptTopics: boolean) => {
  const cluster = config.cluster ?? {}
  const host = sharedMemoryHost(config)
  const rdma = rdmaOf(config)
  const settings = tuned(config.tuning ?? {})
  return Member.layer({
    brokerId: cluster.brokerId ?? clusterDefaults.brokerId,
    directory: `${config.dataDir}/broker`,
    listen,
    ...(host === undefined ? {} : { shm: { listen: shmListenOf(config), host } }),
    ...(rdma === undefined ? {} : { rdma }),
    ...(cluster.brokerAdvertise === undefined ? {} : { advertise: cluster.brokerAdvertise }),
    ...(cluster.leaseTtlMillis === undefined ? {} : { leaseTtl: Duration.millis(cluster.leaseTtlMillis) }),
    adoptTopics,
    reportLoad: { cpuMicros: processCpuMicros }
  }).pipe(
    Layer.provide(RealDisk.layer),
    Layer.provide(settings.transactions),
    Layer.provide(settings.broker),
    Layer.provideMerge(rdmaUnavailable(config))
  )
}

// the configured topics and groups are in the catalog before a broker starts mirroring it
const provisioned = (config: NodeConfig) => Layer.effectDiscard(provision(config))

// a cluster proxy, registered in the control plane (under its gRPC address) while it serves
// Strait's own client protocol beside RocketMQ gRPC, always on TCP (whatever reaches the brokers)
const nativeServer = (config: NodeConfig) =>
  NativeServer.layer({
    listen: `tcp://${config.host}:${config.nativePort ?? (config.port === 0 ? 0 : config.port + 1)}`,
    ...(config.tuning?.drainTimeoutMillis === undefined ? {} : { drainTimeout: Duration.millis(config.tuning.drainTimeoutMillis) })
  }).pipe(Layer.provide(TcpTransport.layer))

// and publishing its load every second; a standby proxy does both once it is activated
const clusterProxy = (config: NodeConfig) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const { host, port } = yield* RocketMQ.RocketMQServer
    const proxy = yield* Proxy.Proxy
    const id = config.cluster?.proxyId ?? `${host}:${port}`
    const serve = Effect.gen(function*() {
      yield* NodeRegistration.register({ kind: "proxy", id, address: `${host}:${port}` })
      yield* LoadReports.publish({ role: "proxy", id, sample: Proxy.loadSample(proxy, processCpuMicros) })
    })
    if (config.cluster?.standby !== true) return yield* serve
    yield* Effect.forkScoped(NodeRegistration.awaitActivation("proxy", id).pipe(
      Effect.andThen(Effect.logInfo(`proxy ${id} activated: registering`)),
      Effect.andThen(serve),
      Effect.catch((error) => Effect.logError(`proxy ${id} could not register once activated`, error))
    ))
  })).pipe(Layer.provideMerge(proxyRole(config, config.tuning ?? {}, (options) => {
    const host = sharedMemoryHost(config)
    return Proxy.Proxy.layerCluster({ ...options, ...(host === undefined ? {} : { hostId: host }) })
  }, nativeServer(config))))

// the process's CPU time so far, for the node's load report
const processCpuMicros = () => {
  const cpu = process.cpuUsage()
  return cpu.user + cpu.system
}

const isClustered = (config: NodeConfig) => (config.cluster?.etcd ?? []).length > 0

/**
 * Broker, proxy and RocketMQ gRPC server in one process, while the layer lives. Without
 * `cluster.etcd` this is the single node of `strait dev`: the metadata store is embedded in the data
 * directory and the proxy reaches the broker in memory; with it, the node is one of a cluster (its
 * broker on TCP at `cluster.brokerListen`). Closing it drains the gRPC server (GOAWAY), then stops the
 * proxy, then the broker, which revokes its lease so that its queues move at once.
 *
 * @since 0.1.0
 */
export const allInOne = (config: NodeConfig) => {
  const clustered = isClustered(config)
  const listen = clustered ? config.cluster?.brokerListen ?? clusterDefaults.brokerListen : "mem://broker"
  const transport = clustered ? NativeTransport.layer : MemoryTransport.layerLocal
  const broker = brokerRole(config, listen, !clustered).pipe(Layer.provide(provisioned(config)))
  return clusterProxy(config).pipe(Layer.provideMerge(broker), Layer.provideMerge(transport), Layer.provideMerge(metadataOf(config)))
}

const needsEtcd = (config: NodeConfig, role: Role) =>
  isClustered(config)
    ? Effect.void
    : Effect.fail(new ConfigurationInvalid({ reason: `role ${role} needs cluster.etcd (the etcd endpoints of the cluster)` }))

/**
 * A cluster broker alone (role `broker`; needs `cluster.etcd`), on TCP at `cluster.brokerListen`.
 *
 * @since 0.1.0
 */
export const brokerNode = (config: NodeConfig) =>
  brokerRole(config, config.cluster?.brokerListen ?? clusterDefaults.brokerListen, false).pipe(
    Layer.provide(provisioned(config)),
    Layer.provide(NativeTransport.layer),
    Layer.provideMerge(metadataOf(config)),
    Layer.provide(Layer.effectDiscard(needsEtcd(config, "broker")))
  )

/**
 * A cluster proxy alone (role `proxy`; needs `cluster.etcd`): RocketMQ gRPC at `host:port`, routes
 * from the control plane.
 *
 * @since 0.1.0
 */
export const proxyNode = (config: NodeConfig) =>
  clusterProxy(config).pipe(
    Layer.provide(NativeTransport.layer),
    Layer.provideMerge(metadataOf(config)),
    Layer.provide(Layer.effectDiscard(needsEtcd(config, "proxy")))
  )

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
  /** Also serve Strait's own client protocol on TCP at this port. */
  readonly nativePort?: number
}) =>
  proxyRole(
    config,
    config.tuning ?? {},
    (options) => Proxy.Proxy.layer({ broker: config.broker, ...options }),
    config.nativePort === undefined
      ? Layer.empty
      : NativeServer.layer({ listen: `tcp://${config.host}:${config.nativePort}` }).pipe(Layer.provide(TcpTransport.layer))
  ).pipe(Layer.provide(NativeTransport.layer))
