/**
 * Strait's own client protocol served by a proxy: `@strait/client`'s `Protocol` over any `Transport`
 * (memory in one process, TCP across machines), translated onto the proxy core as the RocketMQ adapter
 * translates gRPC.
 *
 * **Details**
 *
 * Each connection is one client: its `Hello` names it, signs it (the same AK/SK and namespaces as
 * RocketMQ clients) and registers its session, which lives as long as the connection (its messages
 * received with automatic renewal are renewed meanwhile, and released when it goes). Check-backs of
 * its half messages wait for its `AwaitChecks` long polls. Closing the server drains every
 * connection: GOAWAY, then the requests in flight finish within the drain deadline.
 *
 * @since 0.1.0
 */
import { Protocol } from "@strait/client"
import { ConsumerGroup, Frame, Message, MessageBatch, Transport } from "@strait/core"
import { Proxy } from "@strait/proxy"
import { Multiplex } from "@strait/transport"
import { Cause, Context, Duration, Effect, Exit, FiberSet, Layer, Queue, Result, Scope, Stream } from "effect"

/**
 * The native server's tunables.
 *
 * @since 0.1.0
 */
export interface NativeServerOptions {
  /** Where it listens (a `Transport` address: `mem://name`, `tcp://host:port`). */
  readonly listen: string
  /** How long a drain lets requests in flight finish (default 10 s). */
  readonly drainTimeout?: Duration.Input
  /** Requests served at once per connection (default 256). */
  readonly concurrency?: number
}

// the client's error kinds, by the server error's tag
const kinds: Record<string, (fields: { readonly reason: string; readonly cause: string }) => Protocol.Failure> = {
  TopicNotFound: (fields) => new Protocol.TopicNotFound(fields),
  TopicAlreadyExists: (fields) => new Protocol.TopicAlreadyExists(fields),
  Unauthorized: (fields) => new Protocol.Unauthorized(fields),
  ClientIdRequired: (fields) => new Protocol.Unauthorized(fields),
  Forbidden: (fields) => new Protocol.Forbidden(fields),
  ReceiptHandleStale: (fields) => new Protocol.InvalidReceiptHandle(fields),
  ReceiptHandleMismatch: (fields) => new Protocol.InvalidReceiptHandle(fields),
  ReceiptHandleExpired: (fields) => new Protocol.InvalidReceiptHandle(fields),
  InvalidReceiptHandle: (fields) => new Protocol.InvalidReceiptHandle(fields),
  TransactionNotFound: (fields) => new Protocol.TransactionNotFound(fields),
  RecallFailed: (fields) => new Protocol.RecallFailed(fields),
  Throttled: (fields) => new Protocol.Throttled(fields)
}
// what a retry may cure: everything else the proxy refuses with is the request's own fault
const transient = new Set([
  "TooManyReceives",
  "BrokerUnreachable",
  "BrokerUnavailable",
  "NotQueueOwner",
  "MetadataUnavailable",
  "ConnectionClosed",
  "ConnectionDraining",
  "ConnectFailed",
  "RequestTimeout",
  "MalformedResponse"
])

/**
 * The client error for a server error.
 *
 * @since 0.1.0
 */
export const toFailure = (error: unknown): Protocol.Failure => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Defect"
  const reason = error instanceof Error ? error.message : String(error)
  const fields = { reason, cause: tag }
  const kind = kinds[tag]
  if (kind !== undefined) return kind(fields)
  return transient.has(tag) || tag === "Defect" ? new Protocol.Unavailable(fields) : new Protocol.BadRequest(fields)
}

const failed = (error: unknown): Protocol.Response => ({ _tag: "Failed", error: toFailure(error) })

interface Client {
  caller: Proxy.CallerContext | undefined
  readonly checks: Queue.Queue<Proxy.CheckBack>
  readonly scope: Scope.Closeable
}

// one connection's requests
const dispatch = (proxy: Proxy.Proxy["Service"], client: Client, request: Protocol.Request): Effect.Effect<Protocol.Response, unknown> => {
  if (request._tag === "Hello") {
    return Effect.gen(function*() {
      if (client.caller !== undefined) return yield* Effect.fail(new Protocol.BadRequest({ reason: "this connection has said Hello already", cause: "BadRequest" }))
      if (request.clientId === "") return yield* Effect.fail(new Protocol.Unauthorized({ reason: "the client id is empty", cause: "ClientIdRequired" }))
      const principal = yield* proxy.authenticate({ authorization: request.authorization, dateTime: request.dateTime })
      const caller: Proxy.CallerContext = { clientId: request.clientId, namespace: request.namespace, principal }
      // the session lives while the connection does; check-backs of its half messages queue for it
      yield* proxy.register(caller, {
        kind: request.producerTopics.length > 0 ? "producer" : "consumer",
        topics: request.producerTopics,
        checks: (check) => Effect.asVoid(Queue.offer(client.checks, check))
      }).pipe(Scope.provide(client.scope))
      client.caller = caller
      return { _tag: "Done" as const }
    })
  }
  const caller = client.caller
  if (caller === undefined) return Effect.fail(new Protocol.Unauthorized({ reason: "a connection starts with Hello", cause: "Unauthorized" }))
  switch (request._tag) {
    case "Heartbeat":
      return Effect.as(proxy.heartbeat(caller), { _tag: "Done" as const })
    case "Send":
      return Effect.gen(function*() {
        const decoded = MessageBatch.decode(request.messages)
        if (Result.isFailure(decoded)) return yield* Effect.fail(new Protocol.BadRequest({ reason: decoded.failure.reason, cause: "MalformedMessageBatch" }))
        const results = yield* proxy.send(caller, decoded.success, { transactional: request.transactional })
        return {
          _tag: "Sent" as const,
          results: results.map((result) =>
            Result.isSuccess(result)
              ? { _tag: "Stored" as const, receipt: result.success }
              : { _tag: "Refused" as const, error: toFailure(result.failure) }
          )
        }
      })
    case "Receive":
      return Effect.map(
        proxy.receive(caller, {
          group: request.group,
          topic: request.topic,
          maxMessages: request.maxMessages,
          pollMillis: request.pollMillis,
          ...(request.invisibleMillis === undefined ? {} : { invisibleMillis: request.invisibleMillis }),
          ...(request.filter === undefined ? {} : { filter: request.filter }),
          ...(request.attemptId === undefined ? {} : { attemptId: request.attemptId })
        }),
        (received) => ({
          _tag: "Received" as const,
          handles: received.map(({ invisibleUntil, receiptHandle }) => ({ receiptHandle, invisibleUntil })),
          // the client names topics without its namespace
          messages: MessageBatch.encodeStored(received.map(({ message }) =>
            message.topic === request.topic ? message : Message.withTopic(message, request.topic)
          ))
        })
      )
    case "Ack":
      return Effect.map(proxy.ack(caller, request.group, request.topic, request.receiptHandles), (results) => ({
        _tag: "Acked" as const,
        failures: results.flatMap((error, index) => error === undefined ? [] : [{ index, error: toFailure(error) }])
      }))
    case "Release":
      return Effect.as(proxy.release(caller, request.group, request.topic, request.receiptHandles), { _tag: "Done" as const })
    case "ChangeInvisibility":
      return Effect.map(
        proxy.changeInvisibility(caller, request.group, request.topic, request.receiptHandle, request.invisibleMillis),
        (receiptHandle) => ({ _tag: "Changed" as const, receiptHandle })
      )
    case "ForwardToDeadLetter":
      return Effect.as(proxy.forwardToDeadLetter(caller, request.group, request.topic, request.receiptHandle), { _tag: "Done" as const })
    case "EndTransaction":
      return Effect.as(proxy.endTransaction(caller, request.topic, request.transactionId, request.resolution), { _tag: "Done" as const })
    case "AwaitChecks":
      return Effect.gen(function*() {
        const first = yield* Queue.take(client.checks).pipe(Effect.timeoutOption(Duration.millis(Math.max(0, request.waitMillis))))
        if (first._tag === "None") return { _tag: "ChecksDue" as const, checks: [], messages: MessageBatch.encode([]) }
        const rest = yield* Queue.clear(client.checks)
        const checks = [first.value, ...rest]
        return {
          _tag: "ChecksDue" as const,
          checks: checks.map(({ attempt, transactionId }) => ({ transactionId, attempt })),
          messages: MessageBatch.encode(checks.map((check) => check.message))
        }
      })
    case "Recall":
      return Effect.map(proxy.recall(caller, request.topic, request.recallHandle), (messageId) => ({ _tag: "Recalled" as const, messageId }))
    case "DescribeTopic":
      return Effect.map(proxy.topic(caller, request.name), (topic) => ({ _tag: "Topic" as const, topic }))
    case "CreateTopic":
      return Effect.map(proxy.createTopic(caller, request.topic), (topic) => ({ _tag: "Topic" as const, topic }))
    case "UpdateTopic":
      return Effect.map(
        proxy.updateTopic(caller, request.name, {
          ...(request.queues === undefined ? {} : { queues: request.queues }),
          ...(request.flush === undefined ? {} : { flush: request.flush })
        }),
        (topic) => ({ _tag: "Topic" as const, topic })
      )
    case "DeleteTopic":
      return Effect.as(proxy.deleteTopic(caller, request.name), { _tag: "Done" as const })
    case "ListTopics":
      return Effect.map(proxy.topics(caller), (topics) => ({ _tag: "Topics" as const, topics }))
    case "DescribeGroup":
      return Effect.map(proxy.group(caller, request.name), ({ fifo, maxDeliveryAttempts, name }) => ({
        _tag: "Group" as const,
        group: { name, maxDeliveryAttempts, fifo }
      }))
    case "SetGroup":
      return Effect.gen(function*() {
        const current = yield* proxy.group(caller, request.group.name)
        yield* proxy.setGroup(caller, new ConsumerGroup.ConsumerGroup({ ...current, maxDeliveryAttempts: request.group.maxDeliveryAttempts, fifo: request.group.fifo }))
        return { _tag: "Group" as const, group: request.group }
      })
    case "ListGroups":
      return Effect.map(proxy.groups(caller), (groups) => ({
        _tag: "Groups" as const,
        groups: groups.map(({ fifo, maxDeliveryAttempts, name }) => ({ name, maxDeliveryAttempts, fifo }))
      }))
    case "GroupLag":
      return Effect.map(proxy.groupProgress(caller, request.name), (queues) => ({ _tag: "Lag" as const, queues }))
    case "PullQueues":
      return Effect.map(proxy.pullQueues(caller, request.topic), (queues) => ({ _tag: "Queues" as const, queues }))
    case "Pull":
      return Effect.map(proxy.pull(caller, request), ({ messages, nextOffset }) => ({
        _tag: "Pulled" as const,
        messages: MessageBatch.encodeStored(messages.map((message) =>
          message.topic === request.topic ? message : Message.withTopic(message, request.topic)
        )),
        nextOffset
      }))
    case "CommitOffset":
      return Effect.as(proxy.commitOffset(caller, request.group, request, request.offset), { _tag: "Done" as const })
    case "QueryOffset":
      return Effect.map(proxy.queryOffset(caller, request.group, request), (offset) => ({ _tag: "Offset" as const, ...(offset === undefined ? {} : { offset }) }))
  }
}

// one connection, served until it ends; its session ends with it
const serveConnection = (proxy: Proxy.Proxy["Service"], connection: Transport.Connection, options: NativeServerOptions) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const client: Client = { caller: undefined, checks: yield* Queue.unbounded<Proxy.CheckBack>(), scope }
    const answer = (frame: Frame.Frame) =>
      (frame.type !== Frame.Type.Client
        ? Effect.succeed(failed(new Protocol.BadRequest({ reason: `frame type ${frame.type} is not a client request`, cause: "BadRequest" })))
        : Protocol.decodeRequest(frame.payload).pipe(
          Effect.mapError((error) => new Protocol.BadRequest({ reason: error.message, cause: "BadRequest" })),
          Effect.flatMap((request) => dispatch(proxy, client, request)),
          Effect.catchCause((cause) => {
            const failure = cause.reasons.find(Cause.isFailReason)
            if (failure !== undefined) return Effect.succeed(failed(failure.error))
            if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
            return Effect.logError("client request died", cause).pipe(Effect.as(failed(Cause.squash(cause))))
          })
        )).pipe(Effect.map(Protocol.encodeResponse))
    yield* Multiplex.serve(connection, answer, { concurrency: options.concurrency ?? 256 }).pipe(
      Effect.ignore,
      Effect.ensuring(Scope.close(scope, Exit.void))
    )
  })

/**
 * A running native server: the address it is bound to (with the real port when port 0 was asked for).
 *
 * @since 0.1.0
 */
export class NativeServer extends Context.Service<NativeServer, { readonly address: string }>()("@strait/protocol-native/NativeServer") {}

/**
 * Serves the native client protocol at `listen` while the layer lives; closing it drains every
 * connection (GOAWAY) within the drain deadline.
 *
 * @since 0.1.0
 */
export const layer = (options: NativeServerOptions): Layer.Layer<NativeServer, Transport.InvalidAddress | Transport.AddressInUse, Proxy.Proxy | Transport.Transport> =>
  Layer.effect(NativeServer, Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const proxy = yield* Proxy.Proxy
    // closing runs these in reverse: every connection drains (GOAWAY: its requests in flight are
    // answered, then its client closes it, or the deadline does) while a connection arriving meanwhile
    // is closed at once, so its client goes elsewhere; then accepting stops, what still serves is
    // interrupted, and last the listener closes, with the connections it accepted
    const listening = yield* Scope.fork(yield* Effect.scope)
    const listener = yield* transport.listen(options.listen).pipe(Scope.provide(listening))
    const serving = yield* FiberSet.make<void>()
    const open = new Set<Transport.Connection>()
    const deadline = options.drainTimeout ?? Duration.seconds(10)
    let draining = false
    yield* Effect.forkScoped(Stream.runForEach(listener.connections, (connection) =>
      draining ? connection.close : FiberSet.run(serving, Effect.gen(function*() {
        open.add(connection)
        yield* serveConnection(proxy, connection, options).pipe(Effect.ensuring(Effect.sync(() => open.delete(connection))))
      }))))
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        draining = true
        return Effect.forEach([...open], (connection) => connection.drain(deadline), { concurrency: "unbounded", discard: true })
      })
    )
    return NativeServer.of({ address: listener.address })
  }))
