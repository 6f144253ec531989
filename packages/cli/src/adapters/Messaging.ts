/**
 * `strait produce` and `strait consume`: the official RocketMQ Node client, driven for people at a
 * terminal: readable lines per message, and a progress line every second on long runs.
 *
 * **Gotchas**
 *
 * - Over TLS the client trusts the roots grpc-js read when it loaded: `--tls-ca` is honoured by
 *   setting `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` before the client loads (so it is loaded lazily here).
 *
 * @since 0.1.0
 */
import { Data, Effect } from "effect"

/**
 * Sending or receiving failed in a way the command cannot go on from.
 *
 * @since 0.1.0
 */
export class MessagingFailed extends Data.TaggedError("MessagingFailed")<{ readonly message: string }> {}

/**
 * Where and as whom the client connects.
 *
 * @since 0.1.0
 */
export interface ClientOptions {
  readonly server: string
  readonly namespace: string
  readonly accessKey?: string
  readonly secretKey?: string
  readonly tls: boolean
  readonly tlsCa?: string
}

const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} }

const clientModule = (options: ClientOptions) =>
  Effect.tryPromise({
    try: () => {
      if (options.tlsCa !== undefined) process.env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH = options.tlsCa
      return import("rocketmq-client-nodejs")
    },
    catch: (error) => new MessagingFailed({ message: `cannot load the RocketMQ client: ${String(error)}` })
  })

const common = (options: ClientOptions) => ({
  endpoints: options.server,
  namespace: options.namespace,
  logger: quiet,
  sslEnabled: options.tls || options.tlsCa !== undefined,
  ...(options.accessKey === undefined ? {} : { sessionCredentials: { accessKey: options.accessKey, accessSecret: options.secretKey ?? "" } })
})

const failed = (what: string) => (error: unknown) => new MessagingFailed({ message: `${what}: ${error instanceof Error ? error.message : String(error)}` })

const now = () => Date.now()

// a line every second while `work` runs, from `line()`
const withProgress = <A, E>(work: Effect.Effect<A, E>, line: () => string, enabled: boolean) =>
  enabled
    ? Effect.acquireUseRelease(
      Effect.sync(() => setInterval(() => process.stderr.write(`${line()}\n`), 1000)),
      () => work,
      (timer) => Effect.sync(() => clearInterval(timer))
    )
    : work

/**
 * What to send.
 *
 * @since 0.1.0
 */
export interface ProduceOptions {
  readonly topic: string
  readonly count: number
  /** The body of every message; `size` random-free filler bytes when absent. */
  readonly body?: string
  readonly size: number
  readonly tag?: string
  readonly keys: ReadonlyArray<string>
  readonly messageGroup?: string
  readonly delayMillis?: number
}

/**
 * Sends `count` messages one after another; prints each one's id (few messages) or progress (many).
 *
 * @since 0.1.0
 */
export const produce = (client: ClientOptions, options: ProduceOptions) =>
  Effect.gen(function*() {
    const { Producer } = yield* clientModule(client)
    const producer = new Producer({ ...common(client), topics: [options.topic] } as any)
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => producer.startup(), catch: failed(`cannot start a producer for ${options.topic} at ${client.server}`) }),
      () => Effect.promise(() => producer.shutdown().catch(() => undefined))
    )
    const body = Buffer.from(options.body ?? "x".repeat(options.size))
    const started = now()
    let sent = 0
    let failures = 0
    const verbose = options.count <= 20
    const sendAll = Effect.tryPromise({
      try: async () => {
        for (let i = 0; i < options.count; i++) {
          try {
            const receipt = await producer.send({
              topic: options.topic,
              body,
              keys: [...options.keys],
              ...(options.tag === undefined ? {} : { tag: options.tag }),
              ...(options.messageGroup === undefined ? {} : { messageGroup: options.messageGroup }),
              ...(options.delayMillis === undefined ? {} : { deliveryTimestamp: new Date(now() + options.delayMillis) })
            })
            sent++
            if (verbose) process.stdout.write(`sent ${receipt.messageId} to ${options.topic}\n`)
          } catch (error) {
            failures++
            process.stderr.write(`send ${i + 1} failed: ${error instanceof Error ? error.message : String(error)}\n`)
            if (options.count === 1) throw error
          }
        }
      },
      catch: failed("sending failed")
    })
    const rate = () => Math.round(sent / Math.max(0.001, (now() - started) / 1000))
    yield* withProgress(sendAll, () => `sent ${sent}/${options.count} (${rate()} msg/s)`, !verbose)
    if (!verbose || failures > 0) {
      process.stdout.write(`sent ${sent} of ${options.count} in ${((now() - started) / 1000).toFixed(1)} s (${rate()} msg/s), ${failures} failed\n`)
    }
    if (failures > 0) return yield* new MessagingFailed({ message: `${failures} of ${options.count} sends failed` })
  }).pipe(Effect.scoped)

/**
 * What to receive.
 *
 * @since 0.1.0
 */
export interface ConsumeOptions {
  readonly topic: string
  readonly group: string
  /** Stop after this many messages (default: when none came for `waitSeconds`). */
  readonly count?: number
  readonly waitSeconds: number
  readonly filter: string
  /** Print a progress line instead of each message. */
  readonly quiet: boolean
}

const show = (message: any) => {
  const text = message.body.toString("utf8")
  const body = text.length > 200 ? `${text.slice(0, 200)}… (${message.body.length} bytes)` : text
  const tag = message.tag === undefined || message.tag === "" ? "" : ` tag=${message.tag}`
  const keys = message.keys.length === 0 ? "" : ` keys=${message.keys.join(",")}`
  const group = message.messageGroup === undefined || message.messageGroup === "" ? "" : ` group=${message.messageGroup}`
  return `${message.messageId}${tag}${keys}${group} attempt=${message.deliveryAttempt ?? 1}: ${body}\n`
}

/**
 * Receives and acknowledges messages of `topic` as `group` until `count` came, or none came for
 * `waitSeconds`.
 *
 * @since 0.1.0
 */
export const consume = (client: ClientOptions, options: ConsumeOptions) =>
  Effect.gen(function*() {
    const { SimpleConsumer } = yield* clientModule(client)
    const consumer = new SimpleConsumer({
      ...common(client),
      consumerGroup: options.group,
      subscriptions: new Map([[options.topic, options.filter]]),
      awaitDuration: Math.max(1000, Math.min(20_000, options.waitSeconds * 1000))
    } as any)
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => consumer.startup(), catch: failed(`cannot start a consumer of ${options.topic} as ${options.group} at ${client.server}`) }),
      () => Effect.promise(() => consumer.shutdown().catch(() => undefined))
    )
    const started = now()
    let received = 0
    const receiveAll = Effect.tryPromise({
      try: async () => {
        let idleSince = now()
        while (options.count === undefined || received < options.count) {
          const wanted = Math.min(32, options.count === undefined ? 32 : options.count - received)
          const batch = await consumer.receive(wanted, 30_000)
          if (batch.length === 0) {
            if (now() - idleSince >= options.waitSeconds * 1000) break
            continue
          }
          idleSince = now()
          for (const message of batch) {
            if (!options.quiet) process.stdout.write(show(message))
            await consumer.ack(message)
            received++
          }
        }
      },
      catch: failed("receiving failed")
    })
    yield* withProgress(receiveAll, () => `received ${received}${options.count === undefined ? "" : `/${options.count}`}`, options.quiet)
    process.stdout.write(`received ${received} in ${((now() - started) / 1000).toFixed(1)} s\n`)
  }).pipe(Effect.scoped)
