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
import { Node } from "@strait/node"
import { AccessControl } from "@strait/proxy"
import { AdminClient, type Admin, Server as RocketMQ } from "@strait/protocol-rocketmq"
import { Console, Context, Data, Effect, Layer, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { readFileSync } from "node:fs"

/**
 * A command failed: the node refused it, could not be reached, or the input was wrong.
 *
 * @since 0.1.0
 */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}

const decodeConfigFile = Schema.decodeUnknownEffect(Schema.toCodecJson(Schema.Struct({
  dataDir: Schema.optionalKey(Schema.String),
  host: Schema.optionalKey(Schema.String),
  port: Schema.optionalKey(Schema.Int),
  topics: Schema.optionalKey(Schema.Array(Node.TopicConfig)),
  groups: Schema.optionalKey(Schema.Array(Node.GroupConfig)),
  access: Schema.optionalKey(AccessControl.AccessSettings),
  tuning: Schema.optionalKey(Node.TuningConfig),
  tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String }))
})))

const readConfig = (path: string) =>
  Effect.try({
    try: () => JSON.parse(readFileSync(path, "utf8")) as unknown,
    catch: (error) => new CommandFailed({ message: `cannot read ${path}: ${String(error)}` })
  }).pipe(
    Effect.flatMap(decodeConfigFile),
    Effect.mapError((error) => error instanceof CommandFailed ? error : new CommandFailed({ message: `${path}: ${error.message}` }))
  )

const dev = Command.make(
  "dev",
  {
    dataDir: Flag.String("data-dir").pipe(Flag.optional, Flag.withDescription(`where the node keeps its data (default ${Node.defaults.dataDir})`)),
    host: Flag.String("host").pipe(Flag.optional, Flag.withDescription(`the address to listen on (default ${Node.defaults.host})`)),
    port: Flag.Int("port").pipe(Flag.optional, Flag.withDescription(`the RocketMQ gRPC port (default ${Node.defaults.port})`)),
    config: Flag.String("config").pipe(Flag.optional, Flag.withDescription("a JSON file: dataDir, host, port, topics, groups, access"))
  },
  Effect.fn(function*(flags) {
    const file = Option.isSome(flags.config) ? yield* readConfig(flags.config.value) : {}
    const config: Node.NodeConfig = {
      ...file,
      dataDir: Option.getOrElse(flags.dataDir, () => file.dataDir ?? Node.defaults.dataDir),
      host: Option.getOrElse(flags.host, () => file.host ?? Node.defaults.host),
      port: Option.getOrElse(flags.port, () => file.port ?? Node.defaults.port)
    }
    yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(Node.allInOne(config))
      const { host, port } = Context.get(context, RocketMQ.RocketMQServer)
      yield* Console.log(`strait dev: RocketMQ gRPC on ${host}:${port}, data in ${config.dataDir}. Ctrl-C stops.`)
      return yield* Effect.never
    }))
  })
).pipe(Command.withDescription("run the embedded all-in-one node (broker, proxy, RocketMQ gRPC) on local storage"))

// --- admin against a running node

const server = Flag.String("server").pipe(Flag.withDefault("127.0.0.1:8081"), Flag.withDescription("the node's address (the port clients use)"))
const namespace = Flag.String("namespace").pipe(Flag.withDefault(""), Flag.withDescription("the namespace of the topics and groups"))
const accessKey = Flag.String("access-key").pipe(Flag.optional, Flag.withDescription("sign requests with this access key"))
const secretKey = Flag.String("secret-key").pipe(Flag.optional, Flag.withDescription("the access key's secret"))
const tlsCa = Flag.String("tls-ca").pipe(Flag.optional, Flag.withDescription("connect over TLS, trusting this PEM certificate (a node started with tls)"))
const tls = Flag.Boolean("tls").pipe(Flag.withDefault(false), Flag.withDescription("connect over TLS, trusting the system's certificates"))
const connection = { server, namespace, accessKey, secretKey, tls, tlsCa }

const dateTime = (date: Date) => date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

const admin = <A>(
  options: {
    readonly server: string
    readonly namespace: string
    readonly accessKey: Option.Option<string>
    readonly secretKey: Option.Option<string>
    readonly tls: boolean
    readonly tlsCa: Option.Option<string>
  },
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
            const now = dateTime(new Date())
            metadata.set("x-mq-date-time", now)
            if (Option.isSome(options.accessKey)) {
              metadata.set("authorization", AccessControl.authorization(options.accessKey.value, Option.getOrElse(options.secretKey, () => ""), now))
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
const showGroup = (group: Admin.GroupInfo) => `${group.name}\tmaxDeliveryAttempts=${group.maxDeliveryAttempts}\tfifo=${group.fifo}`

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
  Effect.flatMap(admin<Admin.GroupInfo>(flags, "DescribeGroup", { name: flags.name }), (group) => Console.log(showGroup(group)))).pipe(
    Command.withDescription("show a consumer group")
  )

const groupList = Command.make("list", connection, (flags) =>
  Effect.flatMap(admin<ReadonlyArray<Admin.GroupInfo>>(flags, "ListGroups", {}), (groups) => Console.log(groups.length === 0 ? "no groups" : groups.map(showGroup).join("\n")))).pipe(
    Command.withDescription("list the consumer groups")
  )

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
  Command.withSubcommands([dev, topic, group])
)
