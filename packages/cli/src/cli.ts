/**
 * The `strait` command.
 *
 * - `strait dev [--data-dir D] [--host H] [--port P] [--config F]`: the embedded all-in-one node
 *   (broker, proxy, RocketMQ gRPC) on local storage; Ctrl-C drains it and exits.
 * - `strait topic create|update|delete|describe|list`, `strait group create|describe|list`: admin of
 *   a running node at `--server HOST:PORT` (default 127.0.0.1:8081, the port clients use).
 *
 * @since 0.1.0
 */
import * as Grpc from "@grpc/grpc-js"
import { Broker } from "@strait/broker"
import { Elasticity, ElasticityController, EtcdStore, KubernetesOrchestrator } from "@strait/control"
import { Signature } from "@strait/core"
import { Node } from "@strait/node"
import { AccessControl } from "@strait/proxy"
import { Server as NativeServer } from "@strait/protocol-native"
import { AdminClient, type Admin, Server as RocketMQ } from "@strait/protocol-rocketmq"
import { Config, Console, Context, Data, Effect, Layer, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import * as LocalCluster from "./adapters/LocalCluster.ts"
import * as Messaging from "./adapters/Messaging.ts"
import { sim } from "./sim.ts"

/**
 * A command failed: the node refused it, could not be reached, or the input was wrong.
 *
 * @since 0.1.0
 */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}

/**
 * A node configuration file: every field of the node's configuration is optional in it.
 *
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  role: Schema.optionalKey(Node.Role),
  cluster: Schema.optionalKey(Node.ClusterConfig),
  dataDir: Schema.optionalKey(Schema.String),
  host: Schema.optionalKey(Schema.String),
  port: Schema.optionalKey(Schema.Int),
  topics: Schema.optionalKey(Schema.Array(Node.TopicConfig)),
  groups: Schema.optionalKey(Schema.Array(Node.GroupConfig)),
  access: Schema.optionalKey(AccessControl.AccessSettings),
  tuning: Schema.optionalKey(Node.TuningConfig),
  tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String })),
  nativePort: Schema.optionalKey(Schema.Int)
})

const decodeConfigFile = Schema.decodeUnknownEffect(Schema.toCodecJson(ConfigFile))

/**
 * The environment variables a node reads (each the fallback of a flag of the same meaning).
 *
 * @since 0.1.0
 */
export const variables = {
  brokerAdvertise: "STRAIT_BROKER_ADVERTISE",
  brokerId: "STRAIT_BROKER_ID",
  brokerListen: "STRAIT_BROKER_LISTEN",
  config: "STRAIT_CONFIG",
  dataDir: "STRAIT_DATA_DIR",
  etcd: "STRAIT_ETCD",
  host: "STRAIT_HOST",
  port: "STRAIT_PORT",
  nativePort: "STRAIT_NATIVE_PORT",
  proxyId: "STRAIT_PROXY_ID",
  rdmaListen: "STRAIT_RDMA_LISTEN",
  role: "STRAIT_ROLE",
} as const


const readConfig = (path: string) =>
  Effect.try({
    try: () => JSON.parse(readFileSync(path, "utf8")) as unknown,
    catch: (error) => new CommandFailed({ message: `cannot read ${path}: ${String(error)}` })
  }).pipe(
    Effect.flatMap(decodeConfigFile),
    Effect.mapError((error) => error instanceof CommandFailed ? error : new CommandFailed({ message: `${path}: ${error.message}` }))
  )

const decodeNodeConfig = Schema.decodeUnknownEffect(Node.NodeConfig)

// flags over the environment (their fallback) over the file over the defaults, checked as a whole
const nodeConfig = (flags: {
  readonly config: Option.Option<string>
  readonly dataDir: Option.Option<string>
  readonly host: Option.Option<string>
  readonly port: Option.Option<number>
  readonly nativePort: Option.Option<number>
  readonly role?: Option.Option<Node.Role>
  readonly etcd?: Option.Option<string>
  readonly brokerId?: Option.Option<string>
  readonly brokerListen?: Option.Option<string>
  readonly brokerAdvertise?: Option.Option<string>
  readonly proxyId?: Option.Option<string>
  readonly rdmaListen?: Option.Option<string>
  readonly standby?: boolean
}) =>
  Effect.gen(function*() {
    const file = Option.isSome(flags.config) ? yield* readConfig(flags.config.value) : {}
    const given = <A>(option: Option.Option<A> | undefined) => option === undefined ? undefined : Option.getOrUndefined(option)
    const etcd = given(flags.etcd)?.split(",").map((url) => url.trim()).filter((url) => url !== "")
    const cluster = {
      ...file.cluster,
      ...(etcd === undefined ? {} : { etcd }),
      ...(given(flags.brokerId) === undefined ? {} : { brokerId: given(flags.brokerId) }),
      ...(given(flags.brokerListen) === undefined ? {} : { brokerListen: given(flags.brokerListen) }),
      ...(given(flags.brokerAdvertise) === undefined ? {} : { brokerAdvertise: given(flags.brokerAdvertise) }),
      ...(given(flags.proxyId) === undefined ? {} : { proxyId: given(flags.proxyId) }),
      ...(given(flags.rdmaListen) === undefined ? {} : { rdmaListen: given(flags.rdmaListen) }),
      ...(flags.standby === true ? { standby: true } : {})
    }
    return yield* decodeNodeConfig({
      ...file,
      ...(given(flags.role) === undefined ? {} : { role: given(flags.role) }),
      ...(Object.keys(cluster).length === 0 ? {} : { cluster }),
      dataDir: given(flags.dataDir) ?? file.dataDir ?? Node.defaults.dataDir,
      host: given(flags.host) ?? file.host ?? Node.defaults.host,
      port: given(flags.port) ?? file.port ?? Node.defaults.port,
      ...(given(flags.nativePort) ?? file.nativePort) === undefined ? {} : { nativePort: given(flags.nativePort) ?? file.nativePort }
    }).pipe(Effect.mapError((error) => new CommandFailed({ message: `invalid configuration: ${error.message}` })))
  })

// A broker whose store failed a sync takes no more writes until its store is opened again: the
// process exits (code 1) so that its supervisor restarts it and it recovers from its disk.
const untilFatal = (broker: Broker.Broker["Service"]) =>
  Effect.flatMap(broker.fatal, (failure) =>
    Effect.fail(new CommandFailed({ message: `${failure.message}; exiting so that a restart recovers the store from the disk` })))

// runs a node until interrupted, saying where it serves
const runNode = (config: Node.NodeConfig, name: string) =>
  Effect.scoped(Effect.gen(function*() {
    const role = config.role ?? "all"
    if (role === "broker") {
      const context = yield* Layer.build(Node.brokerNode(config))
      const listen = config.cluster?.brokerListen ?? Node.clusterDefaults.brokerListen
      yield* Console.log(`${name}: broker ${config.cluster?.brokerId ?? Node.clusterDefaults.brokerId} on ${listen}, data in ${config.dataDir}. Ctrl-C stops.`)
      return yield* untilFatal(Context.get(context, Broker.Broker))
    }
    if (role === "proxy") {
      const context = yield* Layer.build(Node.proxyNode(config))
      yield* serving(name, config, Context.get(context, RocketMQ.RocketMQServer), Context.get(context, NativeServer.NativeServer).address)
      return yield* Effect.never
    }
    const context = yield* Layer.build(Node.allInOne(config))
    yield* serving(name, config, Context.get(context, RocketMQ.RocketMQServer), Context.get(context, NativeServer.NativeServer).address)
    return yield* untilFatal(Context.get(context, Broker.Broker))
  }))

const serving = (name: string, config: Node.NodeConfig, { host, port }: { readonly host: string; readonly port: number }, native: string) =>
  Console.log(`${name}: RocketMQ gRPC on ${host}:${port}, native protocol on ${native}, data in ${config.dataDir}. Ctrl-C stops.`)

// an optional flag whose fallback is its environment variable
const fromEnvironment = <A>(flag: Flag.Flag<A>, config: Config.Config<A>, description: string) =>
  flag.pipe(Flag.withFallbackConfig(config), Flag.optional, Flag.withDescription(description))

const nodeLocation = {
  dataDir: fromEnvironment(Flag.String("data-dir"), Config.String(variables.dataDir), `where the node keeps its data (default ${Node.defaults.dataDir}; env STRAIT_DATA_DIR)`),
  host: fromEnvironment(Flag.String("host"), Config.String(variables.host), `the address to listen on (default ${Node.defaults.host}; env STRAIT_HOST)`),
  port: fromEnvironment(Flag.Int("port"), Config.Int(variables.port), `the RocketMQ gRPC port (default ${Node.defaults.port}; env STRAIT_PORT)`),
  nativePort: fromEnvironment(
    Flag.Int("native-port"),
    Config.Int(variables.nativePort),
    "the port of Strait's own client protocol (default: the RocketMQ port + 1, any free port when that is 0; env STRAIT_NATIVE_PORT)"
  ),
  config: fromEnvironment(Flag.String("config"), Config.String(variables.config), "a JSON node configuration: role, cluster, dataDir, host, port, topics, groups, access, tuning, tls (env STRAIT_CONFIG)")
}

const dev = Command.make("dev", nodeLocation, Effect.fn(function*(flags) {
  const config = yield* nodeConfig(flags)
  yield* runNode({ ...config, role: "all" }, "strait dev")
})).pipe(Command.withDescription("run the embedded all-in-one node (broker, proxy, RocketMQ gRPC) on local storage"))

const node = Command.make(
  "node",
  {
    ...nodeLocation,
    role: fromEnvironment(Flag.Literals("role", ["all", "broker", "proxy"]), Config.Literals(["all", "broker", "proxy"], variables.role), "what this node runs (default all; env STRAIT_ROLE)"),
    etcd: fromEnvironment(Flag.String("etcd"), Config.String(variables.etcd), "the cluster's etcd endpoints, comma-separated (env STRAIT_ETCD); roles broker and proxy need them"),
    brokerId: fromEnvironment(Flag.String("broker-id"), Config.String(variables.brokerId), `this broker's id, stable across restarts (default ${Node.clusterDefaults.brokerId}; env STRAIT_BROKER_ID)`),
    brokerListen: fromEnvironment(Flag.String("broker-listen"), Config.String(variables.brokerListen), `where the broker's data plane listens (default ${Node.clusterDefaults.brokerListen}; env STRAIT_BROKER_LISTEN)`),
    brokerAdvertise: fromEnvironment(Flag.String("broker-advertise"), Config.String(variables.brokerAdvertise), "where proxies reach the broker, when not --broker-listen (env STRAIT_BROKER_ADVERTISE)"),
    proxyId: fromEnvironment(Flag.String("proxy-id"), Config.String(variables.proxyId), "this proxy's id in the cluster (default host:port; env STRAIT_PROXY_ID)"),
    rdmaListen: fromEnvironment(Flag.String("rdma-listen"), Config.String(variables.rdmaListen), "where the broker also serves over RDMA, rdma://host:port, where a device is (env STRAIT_RDMA_LISTEN)"),
    standby: Flag.Boolean("standby").pipe(
      Flag.withDefault(false),
      Flag.withDescription("start a proxy warm: serving, but registered (given traffic) only once activated under activate/proxy/<id>")
    )
  },
  Effect.fn(function*(flags) {
    const config = yield* nodeConfig(flags)
    yield* runNode(config, `strait node (${config.role ?? "all"})`)
  })
).pipe(Command.withDescription("run a node of a cluster: a broker, a proxy, or both (--role)"))

// the policy of --policy, or the default one: proxies between --proxies and --max-proxies, each
// meant to carry 0.8 of a core, 20,000 messages/s or 2,000 clients, kept at 60% of that; with a
// broker range, brokers too, each meant to carry 0.8 of a core or to store 20,000 messages/s
const elasticityPolicy = (file: Option.Option<string>, min: number, max: number, brokers?: { readonly min: number; readonly max: number }) =>
  Effect.gen(function*() {
    const read = Option.isSome(file)
      ? Elasticity.fromJson(yield* Effect.try({
        try: () => JSON.parse(readFileSync(file.value, "utf8")) as unknown,
        catch: (error) => new CommandFailed({ message: `cannot read ${file.value}: ${String(error)}` })
      }))
      : Elasticity.fromJson({
        proxy: {
          min,
          max,
          target: 0.6,
          capacity: { cpu: 0.8, messagesPerSecond: 20_000, connections: 2000 },
          model: { _tag: "PayAsYouGo" },
          p99SloMillis: 200,
          scaleOutCooldown: "3 seconds",
          scaleInCooldown: "30 seconds"
        },
        ...(brokers === undefined ? {} : {
          broker: {
            min: brokers.min,
            max: brokers.max,
            target: 0.6,
            capacity: { cpu: 0.8, messagesPerSecond: 20_000 },
            model: { _tag: "PayAsYouGo" },
            scaleOutCooldown: "10 seconds",
            scaleInCooldown: "60 seconds",
            maxStepIn: 1
          }
        })
      })
    if (read instanceof Elasticity.InvalidPolicy) return yield* new CommandFailed({ message: read.message })
    return read
  })

// the elasticity controller of a Kubernetes cluster: it campaigns in etcd (one acts at a time) and
// scales the proxy Deployment (and the broker StatefulSet, when the policy names brokers)
const controller = Command.make(
  "controller",
  {
    etcd: Flag.String("etcd").pipe(Flag.withFallbackConfig(Config.String(variables.etcd)), Flag.withDescription("the cluster's etcd endpoints, comma-separated (env STRAIT_ETCD)")),
    prefix: Flag.String("prefix").pipe(Flag.withDefault("/strait/"), Flag.withDescription("the cluster's key prefix in etcd (default /strait/)")),
    policy: Flag.String("policy").pipe(Flag.optional, Flag.withDescription("a JSON elasticity policy (default: proxies between --min-proxies and --max-proxies)")),
    minProxies: Flag.Int("min-proxies").pipe(Flag.withDefault(2), Flag.withDescription("without --policy: the fewest proxies (default 2)")),
    maxProxies: Flag.Int("max-proxies").pipe(Flag.withDefault(10), Flag.withDescription("without --policy: the most proxies (default 10)")),
    minBrokers: Flag.Int("min-brokers").pipe(Flag.optional, Flag.withDescription("without --policy: scale the brokers too, from this many (with --max-brokers)")),
    maxBrokers: Flag.Int("max-brokers").pipe(Flag.optional, Flag.withDescription("without --policy: scale the brokers too, up to this many (with --min-brokers)")),
    id: Flag.String("id").pipe(Flag.withFallbackConfig(Config.String("POD_NAME")), Flag.optional, Flag.withDescription("this instance's id in the election (default env POD_NAME, else the host name)")),
    apiServer: Flag.String("api-server").pipe(Flag.optional, Flag.withDescription("the Kubernetes API server (default https://kubernetes.default.svc, with the pod's service account)")),
    namespace: Flag.String("namespace").pipe(Flag.optional, Flag.withDescription("the namespace of the workloads (default: the service account's)")),
    proxyDeployment: Flag.String("proxy-deployment").pipe(Flag.withDefault("strait-proxy"), Flag.withDescription("the proxies' Deployment (default strait-proxy)")),
    proxySelector: Flag.String("proxy-selector").pipe(Flag.withDefault("app.kubernetes.io/name=strait-proxy"), Flag.withDescription("the proxies' pod label selector")),
    brokerStatefulSet: Flag.String("broker-statefulset").pipe(Flag.withDefault("strait-broker"), Flag.withDescription("the brokers' StatefulSet (default strait-broker)")),
    brokerSelector: Flag.String("broker-selector").pipe(Flag.withDefault("app.kubernetes.io/name=strait-broker"), Flag.withDescription("the brokers' pod label selector"))
  },
  Effect.fn(function*(flags) {
    if (Option.isSome(flags.minBrokers) !== Option.isSome(flags.maxBrokers)) {
      return yield* new CommandFailed({ message: "--min-brokers and --max-brokers go together" })
    }
    const brokerRange = Option.isSome(flags.minBrokers) && Option.isSome(flags.maxBrokers) ? { min: flags.minBrokers.value, max: flags.maxBrokers.value } : undefined
    const policy = yield* elasticityPolicy(flags.policy, flags.minProxies, flags.maxProxies, brokerRange)
    const namespace = Option.getOrUndefined(flags.namespace) ?? readServiceAccountNamespace() ?? "default"
    const id = Option.getOrUndefined(flags.id) ?? hostname()
    const endpoints = flags.etcd.split(",").map((url) => url.trim()).filter((url) => url !== "")
    const orchestrator = KubernetesOrchestrator.layer({
      ...(Option.isSome(flags.apiServer) ? { apiServer: flags.apiServer.value } : {}),
      namespace,
      proxies: { deployment: flags.proxyDeployment, selector: flags.proxySelector },
      brokers: { statefulSet: flags.brokerStatefulSet, selector: flags.brokerSelector }
    })
    yield* Effect.scoped(Effect.gen(function*() {
      yield* ElasticityController.run({ id, policy }).pipe(Effect.mapError((error) => new CommandFailed({ message: error.message })))
      yield* Console.log(`strait controller ${id}: scaling ${Object.keys(policy).join(" and ")} in namespace ${namespace}. Ctrl-C stops.`)
      return yield* Effect.never
    })).pipe(
      Effect.provide(orchestrator),
      Effect.provide(EtcdStore.layer({ endpoints, prefix: flags.prefix }))
    )
  })
).pipe(Command.withDescription("run the elasticity controller of a Kubernetes cluster: it scales the proxy Deployment by the load the proxies report"))

const readServiceAccountNamespace = () => {
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim()
  } catch {
    return undefined
  }
}

const clusterUp = Command.make(
  "up",
  {
    brokers: Flag.Int("brokers").pipe(Flag.withDefault(3), Flag.withDescription("how many brokers (default 3)")),
    proxies: Flag.Int("proxies").pipe(Flag.withDefault(2), Flag.withDescription("how many proxies (default 2)")),
    dataDir: Flag.String("data-dir").pipe(Flag.withDefault("./strait-cluster"), Flag.withDescription("where the nodes keep their data (default ./strait-cluster)")),
    host: Flag.String("host").pipe(Flag.withDefault("127.0.0.1"), Flag.withDescription("the address everything listens on (default 127.0.0.1)")),
    port: Flag.Int("port").pipe(Flag.withDefault(8081), Flag.withDescription("the load balancer's port: the address clients use (default 8081)")),
    etcd: Flag.String("etcd").pipe(Flag.optional, Flag.withDescription("use this etcd instead of starting one")),
    etcdPort: Flag.Int("etcd-port").pipe(Flag.withDefault(2379), Flag.withDescription("the port of the etcd started here (default 2379; its peers use the next)")),
    brokerPort: Flag.Int("broker-port").pipe(Flag.withDefault(7001), Flag.withDescription("the first broker's data-plane port (default 7001)")),
    proxyPort: Flag.Int("proxy-port").pipe(Flag.withDefault(8091), Flag.withDescription("the first proxy's port (default 8091)")),
    nativePort: Flag.Int("native-port").pipe(Flag.withDefault(8191), Flag.withDescription("the first proxy's port for Strait's own client protocol (default 8191)")),
    config: Flag.String("config").pipe(Flag.optional, Flag.withDescription("a node configuration every node reads (topics, groups, access, tuning)")),
    autoscale: Flag.Boolean("autoscale").pipe(
      Flag.withDefault(false),
      Flag.withDescription("run an elasticity controller that scales the proxies between --proxies and --max-proxies by their load (and the brokers, with --max-brokers)")
    ),
    maxProxies: Flag.Int("max-proxies").pipe(Flag.optional, Flag.withDescription("with --autoscale: the most proxies (default 4 × --proxies)")),
    maxBrokers: Flag.Int("max-brokers").pipe(
      Flag.optional,
      Flag.withDescription("with --autoscale: scale the brokers too, between --brokers and this many (queues move without copying data; a broker leaves once drained)")
    ),
    warm: Flag.Int("warm").pipe(Flag.withDefault(2), Flag.withDescription("with --autoscale: standby proxies kept started for sub-second scale-out (default 2)")),
    policy: Flag.String("policy").pipe(
      Flag.optional,
      Flag.withDescription("with --autoscale: a JSON elasticity policy ({ proxy: { min, max, target, capacity, model, cooldowns } }) instead of the default")
    )
  },
  Effect.fn(function*(flags) {
    if (flags.brokers < 1 || flags.proxies < 1) return yield* new CommandFailed({ message: "a cluster needs at least one broker and one proxy" })
    if (flags.warm < 0) return yield* new CommandFailed({ message: "--warm cannot be negative" })
    if (Option.isSome(flags.maxBrokers) && flags.maxBrokers.value < flags.brokers) {
      return yield* new CommandFailed({ message: `--max-brokers ${flags.maxBrokers.value} is below --brokers ${flags.brokers}` })
    }
    const brokerRange = Option.isSome(flags.maxBrokers) ? { min: flags.brokers, max: flags.maxBrokers.value } : undefined
    const autoscale = flags.autoscale
      ? { policy: yield* elasticityPolicy(flags.policy, flags.proxies, Option.getOrElse(flags.maxProxies, () => flags.proxies * 4), brokerRange) }
      : undefined
    yield* Effect.scoped(Effect.gen(function*() {
      const cluster = yield* LocalCluster.up({
        brokers: flags.brokers,
        proxies: flags.proxies,
        dataDir: flags.dataDir,
        host: flags.host,
        port: flags.port,
        etcdPort: flags.etcdPort,
        brokerPort: flags.brokerPort,
        proxyPort: flags.proxyPort,
        nativePort: flags.nativePort,
        ...(Option.isSome(flags.etcd) ? { etcd: flags.etcd.value } : {}),
        ...(Option.isSome(flags.config) ? { config: flags.config.value } : {}),
        ...(autoscale === undefined ? {} : { autoscale, warm: flags.warm })
      }).pipe(Effect.mapError((error) => new CommandFailed({ message: error.message })))
      yield* Console.log([
        `strait cluster: clients connect to ${cluster.address}`,
        `  etcd     ${cluster.etcd}`,
        ...cluster.brokers.map((broker) => `  ${broker}`),
        ...cluster.proxies.map((proxy) => `  ${proxy}`),
        "Ctrl-C stops every node."
      ].join("\n"))
      return yield* Effect.never
    }))
  })
).pipe(Command.withDescription("start a local cluster: etcd, brokers and proxies as processes, and a load balancer in front of the proxies"))

const cluster = Command.make("cluster").pipe(
  Command.withDescription("run a cluster of local processes"),
  Command.withSubcommands([clusterUp])
)

// --- admin against a running node

const server = Flag.String("server").pipe(Flag.withDefault("127.0.0.1:8081"), Flag.withDescription("the node's address (the port clients use)"))
const namespace = Flag.String("namespace").pipe(Flag.withDefault(""), Flag.withDescription("the namespace of the topics and groups"))
const accessKey = Flag.String("access-key").pipe(Flag.optional, Flag.withDescription("sign requests with this access key"))
const secretKey = Flag.String("secret-key").pipe(Flag.optional, Flag.withDescription("the access key's secret"))
const tlsCa = Flag.String("tls-ca").pipe(Flag.optional, Flag.withDescription("connect over TLS, trusting this PEM certificate (a node started with tls)"))
const tls = Flag.Boolean("tls").pipe(Flag.withDefault(false), Flag.withDescription("connect over TLS, trusting the system's certificates"))
const connection = { server, namespace, accessKey, secretKey, tls, tlsCa }

// the connection flags as parsed
interface Connection {
  readonly server: string
  readonly namespace: string
  readonly accessKey: Option.Option<string>
  readonly secretKey: Option.Option<string>
  readonly tls: boolean
  readonly tlsCa: Option.Option<string>
}

const admin = <A>(
  options: Connection,
  method: Admin.Method,
  request: unknown
) =>
  Effect.acquireUseRelease(
    Effect.try({
      try: () =>
        AdminClient.client(options.server, {
          ...(options.tls || Option.isSome(options.tlsCa)
            ? { tls: Option.isSome(options.tlsCa) ? { rootCerts: new Uint8Array(readFileSync(options.tlsCa.value)) } : {} }
            : {}),
          metadata: () => {
            const metadata = new Grpc.Metadata()
            if (options.namespace !== "") metadata.set("x-mq-namespace", options.namespace)
            const now = Signature.dateTimeOf(Date.now())
            metadata.set("x-mq-date-time", now)
            if (Option.isSome(options.accessKey)) {
              metadata.set("authorization", Signature.authorization(options.accessKey.value, Option.getOrElse(options.secretKey, () => ""), now))
            }
            return metadata
          }
        }),
      catch: (error) => new CommandFailed({ message: error instanceof Error ? error.message : String(error) })
    }),
    (client) =>
      Effect.tryPromise({
        try: () => client.call<A>(method, request),
        catch: (error) => new CommandFailed({ message: `cannot reach ${options.server}: ${error instanceof Error ? error.message : String(error)}` })
      }).pipe(Effect.flatMap((answer) =>
        answer.ok ? Effect.succeed(answer.value) : Effect.fail(new CommandFailed({ message: `${answer.error.code}: ${answer.error.message}` }))
      )),
    (client) => Effect.sync(() => client.close())
  )

const showTopic = (topic: Admin.TopicInfo) => `${topic.name}\t${topic.kind}\tqueues=${topic.queues}\tflush=${topic.flush}`
const showGroup = (group: Admin.GroupInfo) =>
  `${group.name}\tmaxDeliveryAttempts=${group.maxDeliveryAttempts}\tfifo=${group.fifo}${
    group.lag === undefined ? "" : `\tlag=${group.lag}\tinFlight=${group.inFlight ?? 0}`
  }`
const showGroupQueues = (group: Admin.GroupInfo) =>
  [
    showGroup(group),
    ...(group.queues ?? []).filter((queue) => queue.end > 0 || queue.inFlight > 0).map((queue) =>
      `  ${queue.topic}/${queue.queueId}@${queue.broker}\tend=${queue.end}\tconsumed=${queue.consumed}\tlag=${queue.lag}\tinFlight=${queue.inFlight}`
    )
  ].join("\n")

const kind = Flag.Literals("kind", ["normal", "fifo", "delay", "transaction", "priority"]).pipe(Flag.withDefault("normal"), Flag.withDescription("the topic's kind"))
const queues = Flag.Int("queues").pipe(Flag.optional, Flag.withDescription("how many queues (default 8)"))
const flush = Flag.Literals("flush", ["sync", "async"]).pipe(Flag.optional, Flag.withDescription("acknowledge sends after fdatasync (sync) or after the write (async, default)"))

const topicCreate = Command.make("create", { ...connection, name: Argument.String("name"), kind, queues, flush }, (flags) =>
  Effect.flatMap(
    admin<Admin.TopicInfo>(flags, "CreateTopic", {
      name: flags.name,
      kind: flags.kind.toUpperCase(),
      ...Option.match(flags.queues, { onNone: () => ({}), onSome: (queues) => ({ queues }) }),
      ...Option.match(flags.flush, { onNone: () => ({}), onSome: (flush) => ({ flush }) })
    }),
    (topic) => Console.log(showTopic(topic))
  )).pipe(Command.withDescription("create a topic"))

const topicUpdate = Command.make("update", { ...connection, name: Argument.String("name"), queues, flush }, (flags) =>
  Effect.flatMap(
    admin<Admin.TopicInfo>(flags, "UpdateTopic", {
      name: flags.name,
      ...Option.match(flags.queues, { onNone: () => ({}), onSome: (queues) => ({ queues }) }),
      ...Option.match(flags.flush, { onNone: () => ({}), onSome: (flush) => ({ flush }) })
    }),
    (topic) => Console.log(showTopic(topic))
  )).pipe(Command.withDescription("add queues to a topic, or change its flush policy"))

const topicDelete = Command.make("delete", { ...connection, name: Argument.String("name") }, (flags) =>
  Effect.andThen(admin(flags, "DeleteTopic", { name: flags.name }), Console.log(`deleted ${flags.name}`))).pipe(Command.withDescription("delete a topic"))

const topicDescribe = Command.make("describe", { ...connection, name: Argument.String("name") }, (flags) =>
  Effect.flatMap(admin<Admin.TopicInfo>(flags, "DescribeTopic", { name: flags.name }), (topic) => Console.log(showTopic(topic)))).pipe(
    Command.withDescription("show a topic")
  )

const topicList = Command.make("list", connection, (flags) =>
  Effect.flatMap(admin<ReadonlyArray<Admin.TopicInfo>>(flags, "ListTopics", {}), (topics) => Console.log(topics.length === 0 ? "no topics" : topics.map(showTopic).join("\n")))).pipe(
    Command.withDescription("list the topics")
  )

const groupCreate = Command.make(
  "create",
  {
    ...connection,
    name: Argument.String("name"),
    maxAttempts: Flag.Int("max-attempts").pipe(Flag.optional, Flag.withDescription("deliveries before a message goes to %DLQ%<group> (default 17)")),
    fifo: Flag.Boolean("fifo").pipe(Flag.withDefault(false), Flag.withDescription("deliver each message group in order"))
  },
  (flags) =>
    Effect.flatMap(
      admin<Admin.GroupInfo>(flags, "SetGroup", {
        name: flags.name,
        fifo: flags.fifo,
        ...Option.match(flags.maxAttempts, { onNone: () => ({}), onSome: (maxDeliveryAttempts) => ({ maxDeliveryAttempts }) })
      }),
      (group) => Console.log(showGroup(group))
    )
).pipe(Command.withDescription("create (or change) a consumer group"))

const groupDescribe = Command.make("describe", { ...connection, name: Argument.String("name") }, (flags) =>
  Effect.flatMap(admin<Admin.GroupInfo>(flags, "DescribeGroup", { name: flags.name }), (group) => Console.log(showGroupQueues(group)))).pipe(
    Command.withDescription("show a consumer group: its settings, and per queue its lag and messages in flight")
  )

const groupList = Command.make("list", connection, (flags) =>
  Effect.flatMap(admin<ReadonlyArray<Admin.GroupInfo>>(flags, "ListGroups", {}), (groups) => Console.log(groups.length === 0 ? "no groups" : groups.map(showGroup).join("\n")))).pipe(
    Command.withDescription("list the consumer groups")
  )

const showStatus = (status: Admin.StatusInfo) => {
  const owned = new Map<string, number>()
  for (const queue of status.queues) if (queue.broker !== undefined) owned.set(queue.broker, (owned.get(queue.broker) ?? 0) + 1)
  const unserved = status.queues.filter((queue) => queue.broker === undefined)
  return [
    `brokers (${status.brokers.length}):`,
    ...status.brokers.map((broker) => `  ${broker.id}\t${broker.address}\tqueues=${owned.get(broker.id) ?? 0}${broker.leaving === true ? "\tleaving (draining)" : ""}`),
    `proxies (${status.proxies.length}):`,
    ...status.proxies.map((proxy) => `  ${proxy.id}`),
    `queues (${status.queues.length}, ${unserved.length} unserved):`,
    ...status.queues.map((queue) =>
      `  ${queue.topic}/${queue.queueId}\t${queue.broker === undefined ? "unserved" : `${queue.broker} epoch=${queue.epoch}`}${queue.home === undefined || queue.home === queue.broker ? "" : `\thome=${queue.home}`}`
    ),
    ...(status.elasticity === undefined ? [] : [
      `elasticity (last ${status.elasticity.length} decisions):`,
      ...status.elasticity.map((event) =>
        `  ${new Date(event.at).toISOString()}\t${Elasticity.plural(event.role)} ${event.from} → ${event.to}\t${event.ok ? "" : "FAILED "}${event.outcome}\t${event.reason}`
      )
    ])
  ].join("\n")
}

const status = Command.make("status", connection, (flags) => Effect.flatMap(admin<Admin.StatusInfo>(flags, "Status", {}), (answer) => Console.log(showStatus(answer)))).pipe(
  Command.withDescription("show the cluster: brokers, proxies, which broker serves each queue at which epoch, and the elasticity controller's last decisions")
)

const accessSet = Command.make("set", { ...connection, file: Argument.String("file") }, (flags) =>
  Effect.gen(function*() {
    const settings = yield* Effect.try({
      try: () => JSON.parse(readFileSync(flags.file, "utf8")) as unknown,
      catch: (error) => new CommandFailed({ message: `cannot read ${flags.file}: ${String(error)}` })
    })
    const answer = yield* admin<{ readonly stored: boolean; readonly accounts: number }>(flags, "SetAccess", settings)
    yield* Console.log(answer.stored
      ? `access settings stored: ${answer.accounts} accounts; every proxy of the cluster applies them`
      : "this node has no control plane: set access in its configuration file instead")
  })).pipe(Command.withDescription("replace the cluster's accounts and grants with those of a JSON file ({ accounts, anonymous })"))

const access = Command.make("access").pipe(
  Command.withDescription("manage the cluster's access control"),
  Command.withSubcommands([accessSet])
)

const clientOf = (flags: Connection): Messaging.ClientOptions => ({
  server: flags.server,
  namespace: flags.namespace,
  tls: flags.tls,
  ...(Option.isSome(flags.accessKey) ? { accessKey: flags.accessKey.value } : {}),
  ...(Option.isSome(flags.secretKey) ? { secretKey: flags.secretKey.value } : {}),
  ...(Option.isSome(flags.tlsCa) ? { tlsCa: flags.tlsCa.value } : {})
})

const asCommandFailure = Effect.mapError((error: Messaging.MessagingFailed) => new CommandFailed({ message: error.message }))

const produce = Command.make(
  "produce",
  {
    ...connection,
    topic: Argument.String("topic"),
    count: Flag.Int("count").pipe(Flag.withDefault(1), Flag.withDescription("how many messages (default 1); more than 20 shows progress instead of each id")),
    body: Flag.String("body").pipe(Flag.optional, Flag.withDescription("the body of every message (default: --size bytes of filler)")),
    size: Flag.Int("size").pipe(Flag.withDefault(64), Flag.withDescription("the body size without --body (default 64)")),
    tag: Flag.String("tag").pipe(Flag.optional, Flag.withDescription("the messages' tag")),
    key: Flag.String("key").pipe(Flag.optional, Flag.withDescription("a key of the messages (comma-separated for several)")),
    messageGroup: Flag.String("message-group").pipe(Flag.optional, Flag.withDescription("the message group (FIFO topics)")),
    delay: Flag.Int("delay").pipe(Flag.optional, Flag.withDescription("deliver this many milliseconds from now (DELAY topics)"))
  },
  (flags) =>
    Messaging.produce(clientOf(flags), {
      topic: flags.topic,
      count: flags.count,
      size: flags.size,
      keys: Option.match(flags.key, { onNone: () => [], onSome: (keys) => keys.split(",").filter((key) => key !== "") }),
      ...(Option.isSome(flags.body) ? { body: flags.body.value } : {}),
      ...(Option.isSome(flags.tag) ? { tag: flags.tag.value } : {}),
      ...(Option.isSome(flags.messageGroup) ? { messageGroup: flags.messageGroup.value } : {}),
      ...(Option.isSome(flags.delay) ? { delayMillis: flags.delay.value } : {})
    }).pipe(asCommandFailure)
).pipe(Command.withDescription("send messages to a topic (with the official RocketMQ client)"))

const consume = Command.make(
  "consume",
  {
    ...connection,
    topic: Argument.String("topic"),
    group: Flag.String("group").pipe(Flag.withDescription("the consumer group")),
    count: Flag.Int("count").pipe(Flag.optional, Flag.withDescription("stop after this many messages")),
    wait: Flag.Int("wait").pipe(Flag.withDefault(5), Flag.withDescription("stop when no message came for this many seconds (default 5)")),
    filter: Flag.String("filter").pipe(Flag.withDefault("*"), Flag.withDescription("a tag filter, e.g. 'a || b' (default *)")),
    quiet: Flag.Boolean("quiet").pipe(Flag.withDefault(false), Flag.withDescription("a progress line each second instead of each message"))
  },
  (flags) =>
    Messaging.consume(clientOf(flags), {
      topic: flags.topic,
      group: flags.group,
      waitSeconds: flags.wait,
      filter: flags.filter,
      quiet: flags.quiet,
      ...(Option.isSome(flags.count) ? { count: flags.count.value } : {})
    }).pipe(asCommandFailure)
).pipe(Command.withDescription("receive and acknowledge messages of a topic as a consumer group, printing each"))

const topic = Command.make("topic").pipe(
  Command.withDescription("manage topics of a running node"),
  Command.withSubcommands([topicCreate, topicUpdate, topicDelete, topicDescribe, topicList])
)

const group = Command.make("group").pipe(
  Command.withDescription("manage consumer groups of a running node"),
  Command.withSubcommands([groupCreate, groupDescribe, groupList])
)

/**
 * The `strait` command with its subcommands.
 *
 * @since 0.1.0
 */
export const strait = Command.make("strait").pipe(
  Command.withDescription("Strait: an actor-model messaging runtime for Node.js"),
  Command.withSubcommands([dev, node, cluster, controller, status, topic, group, access, produce, consume, sim])
)
