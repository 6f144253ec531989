/**
 * Sending messages: `Producer.send` stores one message and answers with its receipt, or with why it
 * was refused.
 *
 * **Details**
 *
 * - Sends made at about the same time travel together: each waits up to `linger` (default none: the
 *   next turn of the event loop) for others, up to `maxBatch` messages or `maxBatchBytes` bytes in
 *   one request; each is still stored or refused on its own.
 * - Every message gets its id when it is made. A request that fails for a reason a retry may cure
 *   (`Unavailable`: a proxy draining, a broker moving a queue) is made again with the same ids, so
 *   the broker stores each message once.
 * - `Producer.transaction(body)` sends half messages: invisible until the body succeeds (commit) or
 *   fails (rollback). Check-backs of a transaction the producer did not resolve (it died between the
 *   send and the end) are answered by the `checker` given to `Producer.layer`.
 *
 * @since 0.1.0
 */
import { Message, MessageBatch, MessageId } from "@strait/core"
import { Clock, Context, Data, Duration, Effect, Exit, Layer, Result, Schedule, Schema } from "effect"
import * as Batcher from "./internal/Batcher.ts"
import * as Protocol from "./Protocol.ts"
import { StraitClient } from "./StraitClient.ts"

/**
 * A message to send.
 *
 * @since 0.1.0
 */
export interface OutgoingMessage {
  readonly topic: string
  readonly body: Uint8Array | string
  readonly tag?: string
  readonly keys?: ReadonlyArray<string>
  readonly properties?: Readonly<Record<string, string>>
  /** FIFO topics: messages of one group are delivered in order. */
  readonly messageGroup?: string
  /** DELAY topics: deliver at this time (milliseconds since the Unix epoch) ... */
  readonly deliverAt?: number
  /** ... or this long from now. */
  readonly delay?: Duration.Input
  /** PRIORITY topics: higher first. */
  readonly priority?: number
  /** Not delivered once this old. */
  readonly timeToLive?: Duration.Input
}

/**
 * How a producer resolves a transaction a check-back asks about.
 *
 * @since 0.1.0
 */
export type TransactionChecker = (message: Message.Message) => Effect.Effect<"COMMIT" | "ROLLBACK" | "UNKNOWN">

/**
 * A producer's tunables.
 *
 * @since 0.1.0
 */
export interface ProducerOptions {
  readonly linger?: Duration.Input
  readonly maxBatch?: number
  readonly maxBatchBytes?: number
  /** Retries of a request that failed with `Unavailable` (default 3). */
  readonly retries?: number
  /** Answers check-backs of unresolved transactions; the client's `producerTopics` name their topics. */
  readonly checker?: TransactionChecker
}

/**
 * Sends messages.
 *
 * @since 0.1.0
 */
export class Producer extends Context.Service<Producer, {
  /** Stores one message; its receipt (id, queue, offset, recall handle for delayed messages). */
  readonly send: (message: OutgoingMessage) => Effect.Effect<Protocol.Receipt, Protocol.Failure>
  /** Sends half messages inside `body`, committed when it succeeds and rolled back when it fails. */
  readonly transaction: <A, E, R>(
    body: (send: (message: OutgoingMessage) => Effect.Effect<Protocol.Receipt, Protocol.Failure>) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | Protocol.Failure, R>
  /** Cancels a delayed message not yet delivered (its receipt's recall handle). */
  readonly recall: (topic: string, recallHandle: string) => Effect.Effect<string, Protocol.Failure>
}>()("@strait/client/Producer") {
  /** A producer over the `StraitClient`. */
  static readonly layer = (options: ProducerOptions = {}): Layer.Layer<Producer, never, StraitClient> => Layer.effect(Producer, make(options))
}

const encoder = new TextEncoder()
const malformed = new Protocol.Unavailable({ reason: "the answer lacks this message's result", cause: "MalformedResponse" })

/**
 * A producer for as long as the scope lives.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: ProducerOptions) {
  const client = yield* StraitClient
  // ids from a generator whose host part is random (a client has no MAC of its own to give)
  const ids = yield* Effect.gen(function*() {
    return yield* MessageId.MessageIdGenerator
  }).pipe(Effect.provide(MessageId.MessageIdGenerator.layerTest))
  const retries = options.retries ?? 3
  const host = `strait-client/${client.clientId}`

  const messageOf = (outgoing: OutgoingMessage) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const deliverAt = outgoing.deliverAt ?? (outgoing.delay === undefined ? undefined : now + Duration.toMillis(Duration.fromInputUnsafe(outgoing.delay)))
      return Message.fromFields({
        topic: outgoing.topic,
        body: typeof outgoing.body === "string" ? encoder.encode(outgoing.body) : outgoing.body,
        keys: [...(outgoing.keys ?? [])],
        userProperties: { ...outgoing.properties },
        bornTimestamp: now,
        bornHost: host,
        messageId: yield* ids.next,
        ...(outgoing.tag === undefined ? {} : { tag: outgoing.tag }),
        ...(outgoing.messageGroup === undefined ? {} : { messageGroup: outgoing.messageGroup }),
        ...(deliverAt === undefined ? {} : { deliveryTimestamp: deliverAt }),
        ...(outgoing.priority === undefined ? {} : { priority: outgoing.priority }),
        ...(outgoing.timeToLive === undefined ? {} : { ttlMillis: Duration.toMillis(Duration.fromInputUnsafe(outgoing.timeToLive)) })
      })
    })

  // a request made again while it fails for a reason a retry may cure (its message ids stay the same)
  const retried = <A>(request: Effect.Effect<A, Protocol.Failure>) =>
    Effect.retry(request, { times: retries, while: (error) => error._tag === "Unavailable", schedule: Schedule.exponential(Duration.millis(50)) })

  // one Send request for the messages given
  const sendRequest = (messages: ReadonlyArray<Message.Message>, transactional: boolean) =>
    retried(client.call({ _tag: "Send", messages: MessageBatch.encode(messages), transactional }, "Sent"))

  // concurrent sends leave together: at most two requests in flight, more sends wait for the next
  const batched = yield* Batcher.make<Message.Message, Protocol.Receipt, Protocol.Failure>(
    { maxBatch: options.maxBatch ?? 256, maxBytes: options.maxBatchBytes ?? 4 * 1024 * 1024, slotLease: Batcher.slotLease, ...(options.linger === undefined ? {} : { linger: options.linger }) },
    (messages) =>
      Effect.map(Effect.result(sendRequest(messages, false)), (answer) =>
        messages.map((_, i) => {
          if (Result.isFailure(answer)) return Exit.fail(answer.failure)
          const result = answer.success.results[i]
          if (result === undefined) return Exit.fail(malformed)
          return result._tag === "Refused" ? Exit.fail(result.error) : Exit.succeed(result.receipt)
        })),
    malformed
  )

  const send = (outgoing: OutgoingMessage) =>
    Effect.flatMap(messageOf(outgoing), (message) => batched(message, message.body.byteLength + 256))

  const sendHalf = (outgoing: OutgoingMessage) =>
    Effect.gen(function*() {
      const message = yield* messageOf(outgoing)
      const answer = yield* sendRequest([message], true)
      const result = answer.results[0]
      if (result === undefined) return yield* new Protocol.Unavailable({ reason: "the answer lacks the message's result", cause: "MalformedResponse" })
      return result._tag === "Refused" ? yield* Effect.fail(result.error) : result.receipt
    })

  const end = (halves: ReadonlyArray<{ readonly topic: string; readonly messageId: string }>, resolution: "COMMIT" | "ROLLBACK") =>
    Effect.forEach(halves, ({ messageId, topic }) =>
      retried(client.call({ _tag: "EndTransaction", topic, transactionId: messageId, resolution }, "Done")), { discard: true })

  const transaction = <A, E, R>(body: (send: (message: OutgoingMessage) => Effect.Effect<Protocol.Receipt, Protocol.Failure>) => Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const halves: Array<{ readonly topic: string; readonly messageId: string }> = []
      const sendInTransaction = (outgoing: OutgoingMessage) =>
        Effect.tap(sendHalf(outgoing), (receipt) => Effect.sync(() => halves.push({ topic: outgoing.topic, messageId: receipt.messageId })))
      const outcome = yield* Effect.exit(body(sendInTransaction))
      yield* end(halves, outcome._tag === "Success" ? "COMMIT" : "ROLLBACK")
      return yield* outcome
    })

  // check-backs of this client's unresolved half messages, answered by the checker
  const checker = options.checker
  if (checker !== undefined) {
    yield* Effect.forkScoped(Effect.forever(
      client.call({ _tag: "AwaitChecks", waitMillis: 20_000 }, "ChecksDue", 20_000).pipe(
        Effect.flatMap((due) => {
          const messages = MessageBatch.decode(due.messages)
          if (Result.isFailure(messages)) return Effect.logWarning("a check-back's messages do not decode", messages.failure)
          return Effect.forEach(due.checks, (check, i) =>
            Effect.flatMap(checker(messages.success[i]!), (resolution) =>
              resolution === "UNKNOWN"
                ? Effect.void
                : Effect.ignore(client.call({ _tag: "EndTransaction", topic: messages.success[i]!.topic, transactionId: check.transactionId, resolution }, "Done"))), { discard: true })
        }),
        Effect.catch((error) => Effect.logDebug("waiting for check-backs failed; trying again in a second", error).pipe(Effect.andThen(Effect.sleep(Duration.seconds(1)))))
      )
    ))
  }

  return Producer.of({
    send,
    transaction,
    recall: (topic, recallHandle) => Effect.map(client.call({ _tag: "Recall", topic, recallHandle }, "Recalled"), (answer) => answer.messageId)
  })
})

/**
 * A message body could not be encoded with the producer's schema.
 *
 * @since 0.1.0
 */
export class BodyEncodeFailed extends Data.TaggedError("BodyEncodeFailed")<{ readonly reason: string }> {}

/**
 * A producer of typed messages: `send(value, message)` JSON-encodes `value` with `schema` as the body.
 *
 * @since 0.1.0
 */
export const schema = <S extends Schema.Top & { readonly EncodingServices: never }>(schema: S) => {
  const encode = Schema.encodeUnknownEffect(Schema.fromJsonString(schema) as unknown as Schema.Codec<S["Type"], string>)
  return {
    send: (value: S["Type"], message: Omit<OutgoingMessage, "body">): Effect.Effect<Protocol.Receipt, Protocol.Failure | BodyEncodeFailed, Producer> =>
      Effect.gen(function*() {
        const producer = yield* Producer
        const body = yield* Effect.mapError(encode(value), (error) => new BodyEncodeFailed({ reason: error.message }))
        return yield* producer.send({ ...message, body })
      })
  }
}
