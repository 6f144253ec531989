/**
 * A client of the broker's data-plane protocol over one `Transport` connection: what a proxy (or a
 * test, or a bench) uses to talk to a broker. Requests are multiplexed on the connection; the broker's
 * typed errors arrive as the same error classes.
 *
 * @since 0.1.0
 */
import { type ConsumerGroup, Frame, type Message, MessageBatch, type Topic, type Transport } from "@strait/core"
import { Multiplex } from "@strait/transport"
import { Data, Duration, Effect, Exit, Result } from "effect"
import * as Coalesce from "./internal/coalesce.ts"
import type * as Broker from "./Broker.ts"
import * as Protocol from "./Protocol.ts"
import type * as Transactions from "./Transactions.ts"

/**
 * The broker answered with bytes that are not a response: a broker of another protocol version, or a
 * bug.
 *
 * @since 0.1.0
 */
export class MalformedResponse extends Data.TaggedError("MalformedResponse")<{ readonly reason: string }> {}

/**
 * What a call can fail with: the broker's typed errors, and the connection's.
 *
 * @since 0.1.0
 */
export type CallError = Protocol.Failure | Transport.ConnectionError | Multiplex.RequestTimeout | MalformedResponse

/**
 * A received message and its handle.
 *
 * @since 0.1.0
 */
export interface Received {
  readonly message: Message.StoredMessage
  readonly receiptHandle: string
  readonly invisibleUntil: number
}

type Receipt = Extract<Protocol.Response, { readonly _tag: "Produced" }>["results"][number] extends infer R
  ? R extends { readonly _tag: "Sent"; readonly receipts: ReadonlyArray<infer T> } ? T : never
  : never

interface Send {
  readonly messages: Uint8Array
  readonly transactional: boolean
  readonly fence?: ReadonlyArray<{ readonly queueId: number; readonly epoch: number }>
}

// a coalesced Produce request carries at most about this many bytes of messages
const maxBatchBytes = 4 * 1024 * 1024
// Produce (and Ack) requests of one client on the wire at once: more calls wait in the next batch.
// Measured with the rocketmq bench (a proxy's many small calls), 64 messages in flight: unbounded
// 1,714 msgs/s at 402 µs proxy and 144 µs broker CPU a message; 2 in flight 1,810 / 374 / 105; 1 in
// flight 2,030 / 326 / 90. Two keep one slow request (a sync flush) from holding up the rest; the
// broker bench (256 producers on one client) did not move.
const maxRequestsInFlight = 2
// A Produce or Ack request unanswered this long gives its slot up (it still waits for its answer or
// its timeout): far beyond a healthy round trip, even one behind a sync flush, and far below the
// 30 s request timeout that a lost or stuck request would otherwise hold a client's sends up for.
const slotLease = Duration.seconds(5)

type Answer<T extends Protocol.Response["_tag"]> = Extract<Protocol.Response, { readonly _tag: T }>

const decodedWith = <A>(decode: (bytes: Uint8Array) => Result.Result<Array<A>, MessageBatch.MalformedMessageBatch>) => (bytes: Uint8Array) => {
  const decoded = decode(bytes)
  return Result.isSuccess(decoded)
    ? Effect.succeed(decoded.success)
    : Effect.fail(new MalformedResponse({ reason: `messages do not decode: ${decoded.failure.reason}` }))
}

const storedMessages = decodedWith(MessageBatch.decodeStored)
const messagesOf = decodedWith(MessageBatch.decode)

/**
 * Starts a client on `connection` (which it then owns: nothing else may read its frames).
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(connection: Transport.Connection, options: { readonly timeout?: Duration.Input } = {}) {
  const requester = yield* Multiplex.requester(connection)
  const timeout = Duration.toMillis(options.timeout ?? Duration.seconds(30))

  const call = <T extends Protocol.Response["_tag"]>(request: Protocol.Request, expected: T, extraMillis = 0) =>
    requester.request(Frame.Type.Broker, Protocol.encodeRequest(request), Duration.millis(timeout + extraMillis)).pipe(
      Effect.flatMap((frame) =>
        Protocol.decodeResponse(frame.payload).pipe(Effect.mapError((error) => new MalformedResponse({ reason: error.message })))
      ),
      Effect.flatMap((response): Effect.Effect<Answer<T>, CallError> =>
        response._tag === "Failed"
          ? Effect.fail(response.error)
          : response._tag === expected
          ? Effect.succeed(response as Answer<T>)
          : Effect.fail(new MalformedResponse({ reason: `expected ${expected}, got ${response._tag}` }))
      )
    )

  const scope = yield* Effect.scope
  // concurrent sends go out as one Produce request, each refused or stored on its own
  const produce = Coalesce.make<Send, ReadonlyArray<Receipt>, CallError>({
    scope,
    maxSize: maxBatchBytes,
    maxInFlight: maxRequestsInFlight,
    slotLease,
    run: (_, sends) =>
      Effect.map(call({ _tag: "Produce", sends }, "Produced"), (answer) =>
        answer.results.map((result) =>
          result._tag === "Sent" ? Exit.succeed<ReadonlyArray<Receipt>>(result.receipts) : Exit.fail<CallError>(result.error)
        ))
  })
  // concurrent acknowledgements of one group and topic go out as one Ack request
  const acknowledge = Coalesce.make<{ readonly group: string; readonly topic: string; readonly receiptHandle: string }, void, CallError>({
    scope,
    maxSize: 1024,
    maxInFlight: maxRequestsInFlight,
    slotLease,
    run: (_, items) =>
      Effect.map(
        call({ _tag: "Ack", group: items[0]!.group, topic: items[0]!.topic, receiptHandles: items.map((item) => item.receiptHandle) }, "Acked"),
        (answer) => {
          const results: Array<Exit.Exit<void, CallError>> = items.map(() => Exit.void)
          for (const { error, index } of answer.failures) results[index] = Exit.fail(error)
          return results
        }
      )
  })

  return {
    /**
     * Sends messages; receipts in the order given. Sends made at the same time share one request
     * (each is stored or refused on its own).
     */
    send: (
      messages: ReadonlyArray<Message.Message>,
      sendOptions: { readonly transactional?: boolean; readonly fence?: ReadonlyArray<{ readonly queueId: number; readonly epoch: number }> } = {}
    ) => {
      const encoded = MessageBatch.encode(messages)
      return produce("", {
        messages: encoded,
        transactional: sendOptions.transactional === true,
        ...(sendOptions.fence === undefined ? {} : { fence: sendOptions.fence })
      }, encoded.length)
    },
    pop: (request: {
      readonly group: string
      readonly topic: string
      readonly maxMessages: number
      readonly invisibleDuration: Duration.Input
      readonly pollTimeout?: Duration.Input
      readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
      readonly attemptId?: string
    }) =>
      Effect.gen(function*() {
        const pollMillis = request.pollTimeout === undefined ? undefined : Duration.toMillis(request.pollTimeout)
        const answer = yield* call({
          _tag: "Pop",
          group: request.group,
          topic: request.topic,
          maxMessages: request.maxMessages,
          invisibleMillis: Duration.toMillis(request.invisibleDuration),
          ...(pollMillis === undefined ? {} : { pollMillis }),
          ...(request.filter === undefined ? {} : { filter: request.filter }),
          ...(request.attemptId === undefined ? {} : { attemptId: request.attemptId })
        }, "Popped", pollMillis ?? 0)
        const messages = yield* storedMessages(answer.messages)
        return messages.map((message, i): Received => ({ message, ...answer.handles[i]! }))
      }),
    /** Acknowledges a received message. Acknowledgements made at the same time share one request. */
    ack: (group: string, topic: string, receiptHandle: string) =>
      acknowledge(`${group}\u0000${topic}`, { group, topic, receiptHandle }, 1),
    /** Acknowledges several messages in one request: for each handle, `undefined` or why it failed. */
    ackMany: (group: string, topic: string, receiptHandles: ReadonlyArray<string>) =>
      Effect.map(call({ _tag: "Ack", group, topic, receiptHandles }, "Acked"), (answer) => {
        const results: Array<Protocol.Failure | undefined> = receiptHandles.map(() => undefined)
        for (const { error, index } of answer.failures) results[index] = error
        return results
      }),
    changeInvisibility: (group: string, topic: string, receiptHandle: string, duration: Duration.Input) =>
      Effect.map(
        call({ _tag: "ChangeInvisibility", group, topic, receiptHandle, invisibleMillis: Duration.toMillis(duration) }, "Renewed"),
        (answer) => answer.receiptHandle
      ),
    /** Extends a received message's window, keeping its handle; returns when the window now ends. */
    renewInvisibility: (group: string, topic: string, receiptHandle: string, duration: Duration.Input) =>
      Effect.map(
        call({ _tag: "RenewInvisibility", group, topic, receiptHandle, invisibleMillis: Duration.toMillis(duration) }, "WindowExtended"),
        (answer) => answer.invisibleUntil
      ),
    endTransaction: (topic: string, transactionId: string, resolution: "COMMIT" | "ROLLBACK") =>
      Effect.asVoid(call({ _tag: "EndTransaction", topic, transactionId, resolution }, "Done")),
    recall: (topic: string, recallHandle: string) =>
      Effect.map(call({ _tag: "Recall", topic, recallHandle }, "Recalled"), (answer) => answer.messageId),
    pull: (request: {
      readonly topic: string
      readonly queueId: number
      readonly offset: number
      readonly maxCount: number
      readonly maxBytes?: number
      readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
    }) =>
      Effect.gen(function*() {
        const answer = yield* call({ _tag: "Pull", ...request }, "Pulled")
        return { messages: yield* storedMessages(answer.messages), nextOffset: answer.nextOffset, start: answer.start, end: answer.end }
      }),
    commitOffset: (group: string, topic: string, queueId: number, offset: number) =>
      Effect.asVoid(call({ _tag: "CommitOffset", group, topic, queueId, offset }, "Done")),
    queryOffset: (group: string, topic: string, queueId: number) =>
      Effect.map(call({ _tag: "QueryOffset", group, topic, queueId }, "Offset"), (answer) => answer.offset),
    createTopic: (spec: { readonly name: string; readonly kind: Topic.TopicKind; readonly queues: number; readonly flush?: "sync" | "async" }) =>
      call({ _tag: "CreateTopic", name: spec.name, kind: spec.kind, queues: spec.queues, flush: spec.flush ?? "async" }, "TopicDescribed"),
    describeTopic: (name: string) => call({ _tag: "DescribeTopic", name }, "TopicDescribed"),
    /** Grows a topic's queues or changes its flush policy; answers as `describeTopic`. */
    updateTopic: (name: string, change: { readonly queues?: number; readonly flush?: "sync" | "async" }) =>
      call({
        _tag: "UpdateTopic",
        name,
        ...(change.queues === undefined ? {} : { queues: change.queues }),
        ...(change.flush === undefined ? {} : { flush: change.flush })
      }, "TopicDescribed"),
    deleteTopic: (name: string): Effect.Effect<void, CallError> => Effect.asVoid(call({ _tag: "DeleteTopic", name }, "Done")),
    /** Every topic, with its kind, queue count and flush policy. */
    listTopics: Effect.suspend(() => Effect.map(call({ _tag: "ListTopics" }, "TopicsListed"), (answer) => answer.topics)),
    /**
     * Moves a received message to its group's dead-letter topic `%DLQ%<group>` and acknowledges it
     * (RocketMQ's ForwardMessageToDeadLetterQueue); the handle is checked as `ack` checks it.
     */
    forwardToDeadLetter: (group: string, topic: string, receiptHandle: string): Effect.Effect<void, CallError> =>
      Effect.asVoid(call({ _tag: "ForwardToDeadLetter", group, topic, receiptHandle }, "Done")),
    /** A consumer group's settings: the defaults for a group never configured. */
    describeGroup: (name: string): Effect.Effect<ConsumerGroup.ConsumerGroup, CallError> =>
      Effect.map(call({ _tag: "DescribeGroup", name }, "GroupDescribed"), (answer) => answer.group),
    /** Where a consumer group stands on every queue of the broker. */
    groupProgress: (group: string): Effect.Effect<ReadonlyArray<Broker.QueueProgress>, CallError> =>
      Effect.map(call({ _tag: "GroupProgress", group }, "GroupProgressed"), (answer) => answer.queues),
    /** Creates or replaces a consumer group's settings. */
    setGroup: (group: ConsumerGroup.ConsumerGroup): Effect.Effect<void, CallError> =>
      Effect.asVoid(call({
        _tag: "SetGroup",
        group: { name: group.name, maxDeliveryAttempts: group.maxDeliveryAttempts, fifo: group.fifo, retryPolicy: group.retryPolicy }
      }, "Done")),
    /** Every consumer group configured, or used since the broker opened. */
    listGroups: Effect.suspend(() =>
      Effect.map(call({ _tag: "ListGroups" }, "GroupsListed"), (answer): ReadonlyArray<ConsumerGroup.ConsumerGroup> => answer.groups)
    ),
    /**
     * Transaction check-backs due (for a broker without a checker of its own): up to `max`, waiting up
     * to `waitMillis` for the first; empty when none came. Answer each with `endTransaction`.
     */
    awaitChecks: (max: number, waitMillis: number): Effect.Effect<ReadonlyArray<Transactions.TransactionCheck>, CallError> =>
      Effect.gen(function*() {
        const answer = yield* call({ _tag: "AwaitChecks", max, waitMillis }, "ChecksDue", Math.max(0, waitMillis))
        const messages = yield* messagesOf(answer.messages)
        if (messages.length !== answer.checks.length) {
          return yield* new MalformedResponse({ reason: `${answer.checks.length} checks came with ${messages.length} messages` })
        }
        return answer.checks.map(({ attempt, transactionId }, i): Transactions.TransactionCheck => ({ transactionId, message: messages[i]!, attempt }))
      })
  }
})

/**
 * A broker client.
 *
 * @since 0.1.0
 */
export type BrokerClient = Effect.Success<ReturnType<typeof make>>
