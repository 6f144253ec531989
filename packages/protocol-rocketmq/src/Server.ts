/**
 * The RocketMQ 5 gRPC server (`apache.rocketmq.v2.MessagingService`) on `@grpc/grpc-js`: each call is
 * decoded, checked, and carried out by the proxy core (`@strait/proxy`), and its typed errors come
 * back as RocketMQ status codes. The official `rocketmq-client-nodejs` Producer, SimpleConsumer and
 * PushConsumer work against it unmodified.
 *
 * **Details**
 *
 * - Every call runs as a fiber of the server; a call the client cancels interrupts its fiber, and a
 *   receive interrupted that way gives back what it had taken.
 * - `Telemetry` answers every client `Settings` with the full merged settings, rejects a client with
 *   a status-only command (never a stream error), and carries transaction check-backs to producers.
 * - Receives long-poll for `min(long_polling_timeout, maxPoll, deadline - 1 s)`, at most 32 messages;
 *   every delivered message carries its `body_digest`.
 * - Closing the layer drains: no new calls, HTTP/2 GOAWAY to every client, parked long polls answer at
 *   once, telemetry streams end (clients reopen them elsewhere), in-flight calls finish until
 *   `drainTimeout`, then whatever is left is cancelled and its messages given back.
 * - `PullMessage`, `UpdateOffset`, `GetOffset`, `QueryOffset` and `SyncLiteSubscription` are not
 *   served (gRPC `UNIMPLEMENTED`): no RocketMQ Node client calls the first four, and lite topics are
 *   not supported.
 *
 * @since 0.1.0
 */
import * as Grpc from "@grpc/grpc-js"
import { Buffer } from "node:buffer"
import { Filter } from "@strait/broker"
import { ConsumerGroup, Limits, Topic } from "@strait/core"
import { AccessControl, Namespaces, Proxy } from "@strait/proxy"
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, FiberSet, Layer, Queue, Schema } from "effect"
import * as Admin from "./Admin.ts"
import * as Codes from "./Codes.ts"
import * as Messages from "./Messages.ts"
import * as Protos from "./Protos.ts"

/**
 * Server tunables (RocketMQ's proxy defaults where it has them).
 *
 * @since 0.1.0
 */
export const RocketMQSettings = Context.Reference<{
  /** Shortest invisibility a receive may ask for (RocketMQ: 10 s). */
  readonly minInvisibleMillis: number
  /** Longest long poll (RocketMQ: 20 s). */
  readonly maxPollMillis: number
  /** Long poll of push consumers, sent to them in their settings. */
  readonly pushPollMillis: number
  /** Receive batch of push consumers, sent to them in their settings. */
  readonly pushBatchSize: number
  /** Largest body clients may send: under gRPC's 4 MiB message limit with room for properties. */
  readonly maxBodyBytes: number
  /** How long a drain lets calls in flight finish. */
  readonly drainTimeout: Duration.Input
  /** The producer retry policy sent to producers. */
  readonly producerMaxAttempts: number
}>("@strait/protocol-rocketmq/Server/RocketMQSettings", {
  defaultValue: () => ({
    minInvisibleMillis: 10_000,
    maxPollMillis: 20_000,
    pushPollMillis: 20_000,
    pushBatchSize: 32,
    maxBodyBytes: 4 * 1024 * 1024 - 17 * 1024,
    drainTimeout: Duration.seconds(10),
    producerMaxAttempts: 3
  })
})

/**
 * The receive's long-poll time does not fit its deadline (RocketMQ `ILLEGAL_POLLING_TIME`).
 *
 * @since 0.1.0
 */
export class IllegalPollingTime extends Schema.TaggedError<IllegalPollingTime>()("IllegalPollingTime", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/**
 * The client registered as a kind of client this server does not serve (RocketMQ
 * `UNRECOGNIZED_CLIENT_TYPE`).
 *
 * @since 0.1.0
 */
export class UnrecognizedClientType extends Schema.TaggedError<UnrecognizedClientType>()("UnrecognizedClientType", { clientType: Schema.String }) {
  override get message() {
    return `client type ${this.clientType} is not served`
  }
}

/**
 * A request is missing a field it needs, or has one out of range (RocketMQ `BAD_REQUEST`).
 *
 * @since 0.1.0
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/**
 * Where and how the server listens: `tls` (a PEM certificate chain and private key) serves TLS only,
 * for clients with `sslEnabled`; without it, plaintext HTTP/2 (the RocketMQ clients' default).
 *
 * @since 0.1.0
 */
export interface ServerOptions {
  readonly host: string
  readonly port: number
  readonly brokerName?: string
  readonly tls?: { readonly certChain: Uint8Array; readonly privateKey: Uint8Array }
}

/**
 * The `@grpc/grpc-js` server's options: messages up to 16 MiB in, keepalive pings every 30 s (even
 * with no call open) and a peer silent for 10 s after one gone. The RocketMQ bench serves its empty
 * calls with the same.
 *
 * @since 0.1.0
 */
export const grpcServerOptions: Grpc.ServerOptions = {
  "grpc.max_receive_message_length": 16 * 1024 * 1024,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1
}

/**
 * A running server: where it listens.
 *
 * @since 0.1.0
 */
export class RocketMQServer extends Context.Service<RocketMQServer, {
  readonly host: string
  readonly port: number
}>()("@strait/protocol-rocketmq/Server/RocketMQServer") {
  /**
   * Serves RocketMQ gRPC at `host:port` (port 0 picks a free one) while the layer lives; `endpoint`
   * is the address routes send clients to (default: the address each client used).
   */
  static readonly layer = (options: ServerOptions): Layer.Layer<RocketMQServer, ServerStartFailed, Proxy.Proxy> =>
    Layer.effect(RocketMQServer, make(options))
}

/**
 * The server could not listen.
 *
 * @since 0.1.0
 */
export class ServerStartFailed extends Schema.TaggedError<ServerStartFailed>()("ServerStartFailed", { address: Schema.String, reason: Schema.String }) {
  override get message() {
    return `cannot serve RocketMQ gRPC at ${this.address}: ${this.reason}`
  }
}

type Call = Grpc.ServerUnaryCall<any, any> | Grpc.ServerWritableStream<any, any> | Grpc.ServerDuplexStream<any, any>

const header = (call: Call, name: string): string | undefined => {
  const values = call.metadata.get(name)
  return values.length === 0 ? undefined : String(values[0])
}

interface Resource {
  readonly name?: string
  readonly resource_namespace?: string
}

const nameOf = (resource: Resource | null | undefined) => resource?.name ?? ""

const filterOf = (expression: { readonly type?: string; readonly expression?: string } | null | undefined) => {
  if (expression === null || expression === undefined) return undefined
  if (expression.type === "SQL") return { type: "SQL92" as const, expression: expression.expression ?? "" }
  const text = (expression.expression ?? "").trim()
  return { type: "TAG" as const, expression: text === "" ? "*" : text }
}

const make = Effect.fnUntraced(function*(options: ServerOptions) {
  const proxy = yield* Proxy.Proxy
  const settings = yield* RocketMQSettings
  const limits = yield* Limits.Limits
  const brokerName = options.brokerName ?? "strait"
  const maxBodyBytes = Math.min(settings.maxBodyBytes, limits.maxBodyBytes)
  const calls = yield* FiberSet.make<unknown, unknown>()
  const run = yield* FiberSet.runtime(calls)<never>()
  const draining = yield* Deferred.make<void>()
  const telemetryStreams = new Set<Grpc.ServerDuplexStream<any, any>>()
  let boundPort = options.port

  /** Who is calling, from the call's headers; RocketMQ calls must name their client, admin calls need not. */
  const callerOf = (call: Call, clientIdRequired = true) =>
    Effect.gen(function*() {
      const clientId = header(call, "x-mq-client-id") ?? ""
      if (clientIdRequired && clientId === "") return yield* new Proxy.ClientIdRequired()
      const namespace = header(call, "x-mq-namespace") ?? ""
      yield* Topic.validateNamespace(namespace)
      const principal = yield* proxy.authenticate({ authorization: header(call, "authorization"), dateTime: header(call, "x-mq-date-time") })
      return { clientId, namespace, principal } satisfies Proxy.CallerContext
    })

  // the endpoints routes send clients to: where this client reached us (every address of its access
  // point, so a client given several proxies moves to another when one drains)
  const endpointsFor = (requested: { readonly addresses?: ReadonlyArray<{ readonly host?: string; readonly port?: number }> } | null | undefined) => {
    const given = (requested?.addresses ?? []).filter((address) => address.host !== undefined && address.host !== "" && address.port !== undefined && address.port > 0)
    const addresses = given.length > 0 ? given.map(({ host, port }) => ({ host: host!, port: port! })) : [{ host: options.host, port: boundPort }]
    return { scheme: addresses.every(({ host }) => /^[\d.]+$/.test(host)) ? "IPv4" : "DOMAIN_NAME", addresses }
  }

  /** Answers a unary call with what `answer` gives, as a fiber of the server the client's cancel interrupts. */
  const respond = (call: Grpc.ServerUnaryCall<any, any>, callback: Grpc.sendUnaryData<unknown>, answer: Effect.Effect<unknown>) => {
    const fiber = run(answer)
    call.on("cancelled", () => fiber.interruptUnsafe())
    fiber.addObserver((exit) => {
      if (Exit.isSuccess(exit)) callback(null, exit.value)
      else callback({ code: Grpc.status.CANCELLED, details: "the call was cancelled" })
    })
  }

  /** Runs a unary call: its response, or a response holding only the status of its failure. */
  const unary = <Request>(handler: (request: Request, caller: Proxy.CallerContext, call: Grpc.ServerUnaryCall<Request, unknown>) => Effect.Effect<object, unknown>) =>
  (call: Grpc.ServerUnaryCall<Request, unknown>, callback: Grpc.sendUnaryData<unknown>) =>
    respond(
      call,
      callback,
      Effect.flatMap(callerOf(call), (caller) => handler(call.request, caller, call)).pipe(
        Effect.catch((error) => Effect.succeed({ status: Codes.statusOf(error) })),
        Effect.catchDefect((defect) =>
          Effect.logError("RocketMQ call died", defect).pipe(Effect.as({ status: Codes.statusOf(defect) })))
      )
    )

  // a route lists, per broker, the queues it serves (numbered from 0 on each broker, as RocketMQ does);
  // a live broker serving none is listed readable only (it may hold messages still to receive)
  const queryRoute = unary<{ topic?: Resource; endpoints?: any }>((request, caller) =>
    Effect.gen(function*() {
      const topic = yield* proxy.topic(caller, nameOf(request.topic))
      const route = yield* proxy.route(caller, nameOf(request.topic))
      const endpoints = endpointsFor(request.endpoints)
      return {
        status: Codes.ok,
        message_queues: route.flatMap(({ broker, queues }) =>
          Array.from({ length: Math.max(1, queues) }, (_, id) => ({
            topic: { name: topic.name, resource_namespace: caller.namespace },
            id,
            permission: queues === 0 ? "READ" : "READ_WRITE",
            broker: { name: broker ?? brokerName, id: 0, endpoints },
            accept_message_types: [topic.kind]
          })))
      }
    })
  )

  const heartbeat = unary<unknown>((_, caller) => Effect.as(proxy.heartbeat(caller), { status: Codes.ok }))

  const sendMessage = unary<{ messages?: ReadonlyArray<Messages.WireMessage> }>((request, caller) =>
    Effect.gen(function*() {
      const wires = request.messages ?? []
      if (wires.length === 0) return yield* new BadRequest({ reason: "the request holds no message" })
      const entries = yield* Effect.forEach(wires, (wire) =>
        Effect.gen(function*() {
          const size = wire.body?.byteLength ?? 0
          if (size > maxBodyBytes) {
            return { status: { code: "MESSAGE_BODY_TOO_LARGE", message: `the body is ${size} bytes, the most is ${maxBodyBytes}` } }
          }
          const { message, transactional } = Messages.fromWire(wire)
          const [result] = yield* proxy.send(caller, [message], { transactional })
          if (result!._tag === "Failure") return { status: Codes.statusOf(result!.failure) }
          const receipt = result!.success
          return {
            status: Codes.ok,
            message_id: receipt.messageId,
            transaction_id: receipt.messageId,
            offset: receipt.offset,
            recall_handle: receipt.recallHandle ?? ""
          }
        }), { concurrency: "unbounded" })
      return { status: combined(entries.map((entry) => entry.status as Codes.Status)), entries }
    })
  )

  const queryAssignment = unary<{ topic?: Resource; group?: Resource; endpoints?: any }>((request, caller) =>
    Effect.gen(function*() {
      const topic = yield* proxy.topic(caller, nameOf(request.topic))
      const group = yield* proxy.group(caller, nameOf(request.group))
      const endpoints = endpointsFor(request.endpoints)
      // a FIFO group polls each queue on its own, at the broker serving it, and once each live broker
      // serving none (a queue moved away, or a leaving broker, still holds messages to receive); any
      // other group polls each broker once for all of its queues
      const route = yield* proxy.route(caller, nameOf(request.topic))
      const assigned: ReadonlyArray<{ readonly id: number; readonly broker: string | undefined }> = group.fifo
        ? [
          ...(yield* proxy.owners(caller, nameOf(request.topic))).map((broker, id) => ({ id, broker })),
          ...route.filter(({ queues }) => queues === 0).map(({ broker }) => ({ id: -1, broker }))
        ]
        : route.map(({ broker }) => ({ id: -1, broker }))
      return {
        status: Codes.ok,
        assignments: assigned.map(({ broker, id }) => ({
          message_queue: {
            topic: { name: topic.name, resource_namespace: caller.namespace },
            id,
            permission: "READ_WRITE",
            broker: { name: broker ?? brokerName, id: 0, endpoints },
            accept_message_types: [topic.kind]
          }
        }))
      }
    })
  )

  const ackMessage = unary<{ group?: Resource; topic?: Resource; entries?: ReadonlyArray<{ message_id?: string; receipt_handle?: string }> }>((request, caller) =>
    Effect.gen(function*() {
      const entries = request.entries ?? []
      if (entries.length === 0) return yield* new BadRequest({ reason: "the request holds no entry" })
      const results = yield* proxy.ack(caller, nameOf(request.group), nameOf(request.topic), entries.map((entry) => entry.receipt_handle ?? ""))
      const answered = entries.map((entry, i) => ({
        message_id: entry.message_id ?? "",
        receipt_handle: entry.receipt_handle ?? "",
        status: results[i] === undefined ? Codes.ok : Codes.statusOf(results[i])
      }))
      return { status: combined(answered.map((entry) => entry.status)), entries: answered }
    })
  )

  const changeInvisibleDuration = unary<{ group?: Resource; topic?: Resource; receipt_handle?: string; invisible_duration?: Protos.Seconds | null }>((request, caller) =>
    Effect.gen(function*() {
      const millis = Protos.millisOf(request.invisible_duration)
      if (millis === undefined) return yield* new BadRequest({ reason: "invisible_duration is missing" })
      const handle = yield* proxy.changeInvisibility(caller, nameOf(request.group), nameOf(request.topic), request.receipt_handle ?? "", millis)
      return { status: Codes.ok, receipt_handle: handle }
    })
  )

  const forwardToDeadLetter = unary<{ group?: Resource; topic?: Resource; receipt_handle?: string }>((request, caller) =>
    Effect.as(proxy.forwardToDeadLetter(caller, nameOf(request.group), nameOf(request.topic), request.receipt_handle ?? ""), { status: Codes.ok })
  )

  const endTransaction = unary<{ topic?: Resource; message_id?: string; transaction_id?: string; resolution?: string }>((request, caller) =>
    Effect.gen(function*() {
      const transactionId = request.transaction_id !== undefined && request.transaction_id !== "" ? request.transaction_id : request.message_id ?? ""
      if (transactionId === "") return { status: { code: "INVALID_TRANSACTION_ID", message: "the transaction id is blank" } }
      if (request.resolution !== "COMMIT" && request.resolution !== "ROLLBACK") {
        return yield* new BadRequest({ reason: `resolution ${request.resolution} is neither COMMIT nor ROLLBACK` })
      }
      yield* proxy.endTransaction(caller, nameOf(request.topic), transactionId, request.resolution)
      return { status: Codes.ok }
    })
  )

  const notifyClientTermination = unary<unknown>((_, caller) => Effect.as(proxy.terminate(caller), { status: Codes.ok }))

  const recallMessage = unary<{ topic?: Resource; recall_handle?: string }>((request, caller) =>
    Effect.map(proxy.recall(caller, nameOf(request.topic), request.recall_handle ?? ""), (messageId) => ({ status: Codes.ok, message_id: messageId }))
  )

  const receiveMessage = (call: Grpc.ServerWritableStream<any, any>) => {
    const request = call.request as {
      group?: Resource
      message_queue?: { topic?: Resource; broker?: { name?: string } }
      filter_expression?: { type?: string; expression?: string }
      batch_size?: number
      invisible_duration?: Protos.Seconds | null
      auto_renew?: boolean
      long_polling_timeout?: Protos.Seconds | null
      attempt_id?: string | null
    }
    const program = Effect.gen(function*() {
      const caller = yield* callerOf(call)
      const group = nameOf(request.group)
      const topic = nameOf(request.message_queue?.topic)
      const receiveBroker = request.message_queue?.broker?.name
      const batch = request.batch_size ?? 0
      if (batch <= 0) return yield* new BadRequest({ reason: `batch_size ${batch} is not positive` })
      const autoRenew = request.auto_renew === true
      const invisibleMillis = autoRenew ? undefined : Protos.millisOf(request.invisible_duration)
      if (!autoRenew) {
        if (invisibleMillis === undefined) return yield* new BadRequest({ reason: "invisible_duration is missing" })
        if (invisibleMillis < settings.minInvisibleMillis || invisibleMillis > limits.maxInvisibilityMillis) {
          return yield* new BadRequest({ reason: `invisible_duration ${invisibleMillis} ms is outside [${settings.minInvisibleMillis}, ${limits.maxInvisibilityMillis}] ms` })
        }
      }
      const filter = filterOf(request.filter_expression)
      if (filter !== undefined) yield* Filter.parse(filter)
      // the poll ends a second before the client's deadline, so the answer arrives in time
      const now = yield* Clock.currentTimeMillis
      const deadline = call.getDeadline()
      const deadlineMillis = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : Number.POSITIVE_INFINITY
      const requested = Protos.millisOf(request.long_polling_timeout) ?? settings.maxPollMillis
      const pollMillis = Math.max(0, Math.min(requested, settings.maxPollMillis, deadlineMillis - now - 1000))
      if (deadlineMillis - now < 1000) return yield* new IllegalPollingTime({ reason: `the call's deadline leaves ${deadlineMillis - now} ms` })
      const receive = proxy.receive(caller, {
        group,
        topic,
        maxMessages: Math.min(32, batch),
        ...(invisibleMillis === undefined ? {} : { invisibleMillis }),
        pollMillis,
        ...(filter === undefined ? {} : { filter }),
        ...(request.attempt_id === undefined || request.attempt_id === null || request.attempt_id === "" ? {} : { attemptId: request.attempt_id }),
        ...(receiveBroker === undefined || receiveBroker === "" || receiveBroker === brokerName ? {} : { broker: receiveBroker })
      })
      const storeHost = `${options.host}:${boundPort}`
      yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          // a drain answers parked polls at once (what they took is given back)
          const received = yield* restore(Effect.raceFirst(receive, Effect.as(Deferred.await(draining), [])))
          // the client left while the messages were on their way: they go back
          if (call.cancelled) return yield* proxy.release(caller, group, topic, received.map((r) => r.receiptHandle))
          if (received.length === 0) {
            call.write({ status: { code: "MESSAGE_NOT_FOUND", message: "no new message" } })
            return
          }
          call.write({ status: Codes.ok })
          const sentAt = yield* Clock.currentTimeMillis
          for (const { invisibleUntil, message, receiptHandle } of received) {
            const origin = message.userProperties.DLQ_ORIGIN_TOPIC
            call.write({
              message: Messages.toWire(message, {
                topic,
                namespace: caller.namespace,
                receiptHandle,
                invisibleMillis: Math.max(0, invisibleUntil - sentAt),
                storeHost,
                ...(origin === undefined ? {} : { deadLetterOrigin: Namespaces.unqualify(caller.namespace, origin) ?? origin })
              })
            })
          }
        })
      )
      call.write({ delivery_timestamp: Protos.fromMillis(yield* Clock.currentTimeMillis) })
    }).pipe(
      Effect.catch((error) => Effect.sync(() => call.write({ status: Codes.statusOf(error) }))),
      Effect.catchDefect((defect) =>
        Effect.logError("RocketMQ receive died", defect).pipe(Effect.andThen(Effect.sync(() => call.write({ status: Codes.statusOf(defect) })))))
    )
    const fiber = run(program)
    call.on("cancelled", () => fiber.interruptUnsafe())
    fiber.addObserver(() => call.end())
  }

  const telemetry = (call: Grpc.ServerDuplexStream<any, any>) => {
    telemetryStreams.add(call)
    const program = Effect.gen(function*() {
      const commands = yield* Queue.unbounded<any, Cause.Done>()
      call.on("data", (command) => Queue.offerUnsafe(commands, command))
      call.on("end", () => Queue.endUnsafe(commands))
      call.on("error", () => Queue.endUnsafe(commands))
      const caller = yield* Effect.result(callerOf(call))
      const write = (command: object) => Effect.sync(() => call.write(command))
      while (true) {
        const command = yield* Queue.take(commands).pipe(Effect.catchTag("Done", () => Effect.succeed(undefined)))
        if (command === undefined) return
        if (command.settings === undefined || command.settings === null) continue
        if (caller._tag === "Failure") {
          yield* write({ status: Codes.statusOf(caller.failure) })
          continue
        }
        const reply = yield* settingsReply(caller.success, command.settings, write).pipe(
          Effect.catch((error) => Effect.succeed({ status: Codes.statusOf(error) }))
        )
        yield* write(reply)
      }
    }).pipe(Effect.scoped, Effect.catchDefect((defect) => Effect.logError("RocketMQ telemetry died", defect)))
    const fiber = run(program)
    call.on("cancelled", () => fiber.interruptUnsafe())
    fiber.addObserver(() => {
      telemetryStreams.delete(call)
      call.end()
    })
  }

  // the merged settings a client gets for the settings it sent, and its registration on the proxy
  const settingsReply = (caller: Proxy.CallerContext, sent: any, write: (command: object) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      const clientType: string = sent.client_type ?? "CLIENT_TYPE_UNSPECIFIED"
      if (clientType === "PRODUCER") {
        const topics: Array<string> = (sent.publishing?.topics ?? []).map((topic: Resource) => nameOf(topic))
        yield* proxy.register(caller, {
          kind: "producer",
          topics,
          checks: (check) =>
            write({
              status: Codes.ok,
              recover_orphaned_transaction_command: {
                transaction_id: check.transactionId,
                message: Messages.toWire(check.message, { topic: check.message.topic, namespace: caller.namespace, storeHost: `${options.host}:${boundPort}` })
              }
            })
        })
        return {
          status: Codes.ok,
          settings: {
            ...sent,
            backoff_policy: {
              max_attempts: settings.producerMaxAttempts,
              exponential_backoff: { initial: Protos.fromMillis(10), max: Protos.fromMillis(1000), multiplier: 2 }
            },
            publishing: { topics: sent.publishing?.topics ?? [], max_body_size: maxBodyBytes, validate_message_type: true },
            metric: { on: false }
          }
        }
      }
      if (clientType === "SIMPLE_CONSUMER" || clientType === "PUSH_CONSUMER") {
        const groupName = nameOf(sent.subscription?.group)
        const entries: ReadonlyArray<{ topic?: Resource; expression?: { type?: string; expression?: string } }> = sent.subscription?.subscriptions ?? []
        for (const entry of entries) {
          const filter = filterOf(entry.expression)
          if (filter !== undefined) yield* Filter.parse(filter)
        }
        const group = yield* proxy.group(caller, groupName)
        yield* proxy.register(caller, { kind: "consumer", topics: entries.map((entry) => nameOf(entry.topic)), group: groupName })
        const policy = group.retryPolicy._tag === "Exponential"
          ? group.retryPolicy
          : { initialMillis: 1000, maxMillis: 60_000, multiplier: 2 }
        return {
          status: Codes.ok,
          settings: {
            ...sent,
            backoff_policy: {
              max_attempts: group.maxDeliveryAttempts,
              exponential_backoff: { initial: Protos.fromMillis(policy.initialMillis), max: Protos.fromMillis(policy.maxMillis), multiplier: policy.multiplier }
            },
            subscription: {
              ...sent.subscription,
              fifo: group.fifo,
              receive_batch_size: settings.pushBatchSize,
              long_polling_timeout: clientType === "PUSH_CONSUMER"
                ? Protos.fromMillis(settings.pushPollMillis)
                : sent.subscription?.long_polling_timeout ?? Protos.fromMillis(settings.maxPollMillis)
            },
            metric: { on: false }
          }
        }
      }
      return yield* new UnrecognizedClientType({ clientType })
    })

  // the admin service: signed like RocketMQ calls; a client id is not needed
  const adminCall = (handler: (request: unknown, caller: Proxy.CallerContext) => Effect.Effect<unknown, unknown>) =>
  (call: Grpc.ServerUnaryCall<unknown, unknown>, callback: Grpc.sendUnaryData<unknown>) =>
    respond(
      call,
      callback,
      Effect.flatMap(callerOf(call, false), (caller) => handler(call.request ?? {}, caller)).pipe(
        Effect.map((value): Admin.Answer<unknown> => ({ ok: true, value: value ?? null })),
        Effect.catch((error) => Effect.succeed(Admin.failure(error))),
        Effect.catchDefect((defect) => Effect.logError("admin call died", defect).pipe(Effect.as(Admin.failure(defect))))
      )
    )
  const groupInfo = (group: ConsumerGroup.ConsumerGroup): Admin.GroupInfo => ({
    name: group.name,
    maxDeliveryAttempts: group.maxDeliveryAttempts,
    fifo: group.fifo
  })
  // a group's settings with its lag and messages in flight, totalled (and per queue when `detailed`)
  const withProgress = (caller: Proxy.CallerContext, group: ConsumerGroup.ConsumerGroup, detailed: boolean) =>
    Effect.map(proxy.groupProgress(caller, group.name), (queues): Admin.GroupInfo => ({
      ...groupInfo(group),
      lag: queues.reduce((sum, queue) => sum + queue.lag, 0),
      inFlight: queues.reduce((sum, queue) => sum + queue.inFlight, 0),
      ...(detailed ? { queues } : {})
    }))
  const decodeTopic = Schema.decodeUnknownEffect(Schema.Struct({
    name: Schema.String,
    kind: Topic.TopicKind,
    queues: Schema.optionalKey(Schema.Int),
    flush: Schema.optionalKey(Schema.Literals(["sync", "async"]))
  }))
  const decodeTopicChange = Schema.decodeUnknownEffect(Schema.Struct({
    name: Schema.String,
    queues: Schema.optionalKey(Schema.Int),
    flush: Schema.optionalKey(Schema.Literals(["sync", "async"]))
  }))
  const decodeName = Schema.decodeUnknownEffect(Schema.Struct({ name: Schema.String }))
  const decodeAccess = Schema.decodeUnknownEffect(AccessControl.AccessSettingsJson)
  const decodeGroup = Schema.decodeUnknownEffect(Schema.Struct({
    name: Schema.String,
    maxDeliveryAttempts: Schema.optionalKey(Schema.Int),
    fifo: Schema.optionalKey(Schema.Boolean)
  }))
  const asBadRequest = <A, R>(effect: Effect.Effect<A, Schema.SchemaError, R>) =>
    Effect.mapError(effect, (error) => new BadRequest({ reason: error.message }))
  const adminService = {
    CreateTopic: adminCall((request, caller) =>
      Effect.flatMap(asBadRequest(decodeTopic(request)), (spec) =>
        proxy.createTopic(caller, { name: spec.name, kind: spec.kind, queues: spec.queues ?? 8, flush: spec.flush ?? "async" }))),
    UpdateTopic: adminCall((request, caller) =>
      Effect.flatMap(asBadRequest(decodeTopicChange(request)), ({ name, ...change }) => proxy.updateTopic(caller, name, change))),
    DeleteTopic: adminCall((request, caller) => Effect.flatMap(asBadRequest(decodeName(request)), ({ name }) => proxy.deleteTopic(caller, name))),
    DescribeTopic: adminCall((request, caller) => Effect.flatMap(asBadRequest(decodeName(request)), ({ name }) => proxy.topic(caller, name))),
    ListTopics: adminCall((_, caller) => proxy.topics(caller)),
    Status: adminCall((_, caller) => proxy.status(caller)),
    SetAccess: adminCall((request, caller) =>
      Effect.flatMap(asBadRequest(decodeAccess(request)), (settings) =>
        Effect.map(proxy.setAccess(caller, settings), (stored) => ({ stored, accounts: settings.accounts.length })))),
    SetGroup: adminCall((request, caller) =>
      Effect.gen(function*() {
        const spec = yield* asBadRequest(decodeGroup(request))
        const name = yield* ConsumerGroup.validateName(spec.name)
        const group = new ConsumerGroup.ConsumerGroup({
          name,
          ...(spec.maxDeliveryAttempts === undefined ? {} : { maxDeliveryAttempts: spec.maxDeliveryAttempts }),
          ...(spec.fifo === undefined ? {} : { fifo: spec.fifo })
        })
        yield* proxy.setGroup(caller, group)
        return groupInfo(group)
      })),
    DescribeGroup: adminCall((request, caller) =>
      Effect.flatMap(asBadRequest(decodeName(request)), ({ name }) => Effect.flatMap(proxy.group(caller, name), (group) => withProgress(caller, group, true)))),
    ListGroups: adminCall((_, caller) =>
      Effect.flatMap(proxy.groups(caller), (groups) => Effect.forEach(groups, (group) => withProgress(caller, group, false), { concurrency: 8 })))
  }

  const server = new Grpc.Server(grpcServerOptions)
  server.addService(Protos.messagingService(), {
    QueryRoute: queryRoute,
    Heartbeat: heartbeat,
    SendMessage: sendMessage,
    QueryAssignment: queryAssignment,
    ReceiveMessage: receiveMessage,
    AckMessage: ackMessage,
    ForwardMessageToDeadLetterQueue: forwardToDeadLetter,
    EndTransaction: endTransaction,
    Telemetry: telemetry,
    NotifyClientTermination: notifyClientTermination,
    ChangeInvisibleDuration: changeInvisibleDuration,
    RecallMessage: recallMessage
  })
  server.addService(Admin.definition, adminService)
  const address = `${options.host}:${options.port}`
  boundPort = yield* Effect.callback<number, ServerStartFailed>((resume) => {
    const credentials = options.tls === undefined
      ? Grpc.ServerCredentials.createInsecure()
      : Grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(options.tls.certChain), private_key: Buffer.from(options.tls.privateKey) }], false)
    server.bindAsync(address, credentials, (error, port) => {
      resume(error === null ? Effect.succeed(port) : Effect.fail(new ServerStartFailed({ address, reason: error.message })))
    })
  })

  // the drain: GOAWAY, parked polls answered, telemetry ended, calls finish until the deadline
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Deferred.succeed(draining, undefined)
      const shutdown = Effect.callback<void>((resume) => {
        server.tryShutdown(() => resume(Effect.void))
      })
      const drained = yield* Effect.gen(function*() {
        for (const stream of telemetryStreams) stream.end()
        yield* shutdown
      }).pipe(Effect.timeoutOption(settings.drainTimeout))
      if (drained._tag === "None") {
        yield* Effect.logWarning(`RocketMQ drain passed ${Duration.toMillis(settings.drainTimeout)} ms; cancelling what is left`)
        server.forceShutdown()
      }
      // the calls still running are interrupted when the call set closes, after this
    })
  )
  return { host: options.host, port: boundPort }
})

// one status for several results: the one result's, OK when all are, MULTIPLE_RESULTS when mixed
const combined = (statuses: ReadonlyArray<Codes.Status>): Codes.Status => {
  if (statuses.length === 1) return statuses[0]!
  if (statuses.every((status) => status.code === "OK")) return Codes.ok
  return { code: "MULTIPLE_RESULTS", message: "the entries have their own results" }
}
