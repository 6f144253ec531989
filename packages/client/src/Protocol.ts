/**
 * Strait's own client protocol: what `@strait/client` sends a proxy in `Frame.Type.Client` frames
 * over any `Transport`, and what the proxy (`@strait/protocol-native`) answers.
 *
 * **Details**
 *
 * A connection starts with `Hello` (client id, namespace, and an AK/SK signature when the cluster
 * requires one); every later request acts as that client. Messages travel as `MessageBatch` bytes.
 * Requests and responses use Effect's schema-derived binary encoding behind a form byte, except the
 * ones every message crosses (Send, Ack; Sent, Received, Acked), which are written by hand. An answer is one response case,
 * or `Failed` with one of the errors below, which arrive on the client as the same classes.
 *
 * @since 0.1.0
 */
import { Wire } from "@strait/core"
import { Effect, Schema } from "effect"

const TopicKind = Schema.Literals(["NORMAL", "FIFO", "DELAY", "TRANSACTION", "PRIORITY"])
const Flush = Schema.Literals(["sync", "async"])
const FilterExpression = Schema.Struct({ type: Schema.Literals(["TAG", "SQL92"]), expression: Schema.String })

/**
 * A topic as the client sees it.
 *
 * @since 0.1.0
 */
export const TopicInfo = Schema.Struct({ name: Schema.String, kind: TopicKind, queues: Schema.Int, flush: Flush })

/**
 * A topic as the client sees it.
 *
 * @since 0.1.0
 */
export type TopicInfo = typeof TopicInfo.Type

/**
 * A consumer group's settings.
 *
 * @since 0.1.0
 */
export const GroupInfo = Schema.Struct({ name: Schema.String, maxDeliveryAttempts: Schema.Int, fifo: Schema.Boolean })

/**
 * A consumer group's settings.
 *
 * @since 0.1.0
 */
export type GroupInfo = typeof GroupInfo.Type

/**
 * Where a consumer group stands on one queue of one broker.
 *
 * @since 0.1.0
 */
export const QueueLag = Schema.Struct({
  broker: Schema.String,
  topic: Schema.String,
  queueId: Schema.Int,
  end: Schema.Number,
  consumed: Schema.Number,
  lag: Schema.Number,
  inFlight: Schema.Int
})

/**
 * Where a consumer group stands on one queue.
 *
 * @since 0.1.0
 */
export type QueueLag = typeof QueueLag.Type

/**
 * A request to a proxy.
 *
 * @since 0.1.0
 */
export const Request = Schema.Union([
  /** The first request of a connection: who the client is. */
  Schema.TaggedStruct("Hello", {
    clientId: Schema.String,
    namespace: Schema.String,
    /** An AK/SK signature (`authorization` as RocketMQ 5 clients make it) and the time it signs. */
    authorization: Schema.optionalKey(Schema.String),
    dateTime: Schema.optionalKey(Schema.String),
    /** Topics this client produces to: where transaction check-backs of its half messages come from. */
    producerTopics: Schema.Array(Schema.String)
  }),
  Schema.TaggedStruct("Heartbeat", {}),
  /** Each message on its own: one result per message, in order. */
  Schema.TaggedStruct("Send", { messages: Schema.Uint8Array, transactional: Schema.Boolean }),
  Schema.TaggedStruct("Receive", {
    group: Schema.String,
    topic: Schema.String,
    maxMessages: Schema.Int,
    /** Absent: the proxy keeps the messages invisible while this client lives (automatic renewal). */
    invisibleMillis: Schema.optionalKey(Schema.Number),
    pollMillis: Schema.Number,
    filter: Schema.optionalKey(FilterExpression),
    attemptId: Schema.optionalKey(Schema.String)
  }),
  Schema.TaggedStruct("Ack", { group: Schema.String, topic: Schema.String, receiptHandles: Schema.Array(Schema.String) }),
  /** Gives back messages received and never handled: visible again soon. */
  Schema.TaggedStruct("Release", { group: Schema.String, topic: Schema.String, receiptHandles: Schema.Array(Schema.String) }),
  Schema.TaggedStruct("ChangeInvisibility", { group: Schema.String, topic: Schema.String, receiptHandle: Schema.String, invisibleMillis: Schema.Number }),
  Schema.TaggedStruct("ForwardToDeadLetter", { group: Schema.String, topic: Schema.String, receiptHandle: Schema.String }),
  Schema.TaggedStruct("EndTransaction", { topic: Schema.String, transactionId: Schema.String, resolution: Schema.Literals(["COMMIT", "ROLLBACK"]) }),
  /** A long poll for the check-backs of this client's half messages. */
  Schema.TaggedStruct("AwaitChecks", { waitMillis: Schema.Number }),
  Schema.TaggedStruct("Recall", { topic: Schema.String, recallHandle: Schema.String }),
  Schema.TaggedStruct("DescribeTopic", { name: Schema.String }),
  Schema.TaggedStruct("CreateTopic", { topic: TopicInfo }),
  Schema.TaggedStruct("UpdateTopic", { name: Schema.String, queues: Schema.optionalKey(Schema.Int), flush: Schema.optionalKey(Flush) }),
  Schema.TaggedStruct("DeleteTopic", { name: Schema.String }),
  Schema.TaggedStruct("ListTopics", {}),
  Schema.TaggedStruct("DescribeGroup", { name: Schema.String }),
  Schema.TaggedStruct("SetGroup", { group: GroupInfo }),
  Schema.TaggedStruct("ListGroups", {}),
  Schema.TaggedStruct("GroupLag", { name: Schema.String }),
  /** The queues of a topic to pull from, per broker. */
  Schema.TaggedStruct("PullQueues", { topic: Schema.String }),
  Schema.TaggedStruct("Pull", {
    topic: Schema.String,
    broker: Schema.String,
    queueId: Schema.Int,
    offset: Schema.Number,
    maxCount: Schema.Int,
    filter: Schema.optionalKey(FilterExpression)
  }),
  Schema.TaggedStruct("CommitOffset", { group: Schema.String, topic: Schema.String, broker: Schema.String, queueId: Schema.Int, offset: Schema.Number }),
  Schema.TaggedStruct("QueryOffset", { group: Schema.String, topic: Schema.String, broker: Schema.String, queueId: Schema.Int })
])

/**
 * A request to a proxy.
 *
 * @since 0.1.0
 */
export type Request = typeof Request.Type

/**
 * What a send stored: one per message.
 *
 * @since 0.1.0
 */
export const Receipt = Schema.Struct({
  messageId: Schema.String,
  queueId: Schema.Int,
  offset: Schema.Number,
  recallHandle: Schema.optionalKey(Schema.String)
})

/**
 * What a send stored.
 *
 * @since 0.1.0
 */
export type Receipt = typeof Receipt.Type

// --- errors: what the proxy refuses with, by kind; `reason` says what exactly (and `cause` names the
// server's own error)

const errorFields = { reason: Schema.String, cause: Schema.String }

/**
 * The request is not valid: a message over the limits, a bad name, a bad filter, a bad value.
 *
 * @since 0.1.0
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", errorFields) {}

/**
 * No such topic.
 *
 * @since 0.1.0
 */
export class TopicNotFound extends Schema.TaggedError<TopicNotFound>()("TopicNotFound", errorFields) {}

/**
 * A topic of that name exists.
 *
 * @since 0.1.0
 */
export class TopicAlreadyExists extends Schema.TaggedError<TopicAlreadyExists>()("TopicAlreadyExists", errorFields) {}

/**
 * The request is not signed, or the signature does not match.
 *
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", errorFields) {}

/**
 * The signed account may not do this.
 *
 * @since 0.1.0
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", errorFields) {}

/**
 * The receipt handle no longer names a message in flight (acknowledged, expired, or replaced).
 *
 * @since 0.1.0
 */
export class InvalidReceiptHandle extends Schema.TaggedError<InvalidReceiptHandle>()("InvalidReceiptHandle", errorFields) {}

/**
 * No half message with that transaction id (resolved already, or never sent).
 *
 * @since 0.1.0
 */
export class TransactionNotFound extends Schema.TaggedError<TransactionNotFound>()("TransactionNotFound", errorFields) {}

/**
 * The delayed message was delivered already, or the recall handle names none.
 *
 * @since 0.1.0
 */
export class RecallFailed extends Schema.TaggedError<RecallFailed>()("RecallFailed", errorFields) {}

/**
 * The proxy or a broker cannot serve this now (busy, unreachable, moving a queue): trying again
 * later may work.
 *
 * @since 0.1.0
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", errorFields) {}

/**
 * The caller's namespace is over its quota (messages or bytes per second at this proxy): the request
 * was refused whole; `reason` says which limit and when to try again.
 *
 * @since 0.1.0
 */
export class Throttled extends Schema.TaggedError<Throttled>()("Throttled", errorFields) {}

/**
 * Every error the proxy answers with.
 *
 * @since 0.1.0
 */
export const Failure = Schema.Union([
  BadRequest,
  TopicNotFound,
  TopicAlreadyExists,
  Unauthorized,
  Forbidden,
  InvalidReceiptHandle,
  TransactionNotFound,
  RecallFailed,
  Unavailable,
  Throttled
])

/**
 * An error the proxy answers with.
 *
 * @since 0.1.0
 */
export type Failure = typeof Failure.Type

/**
 * A proxy's answer.
 *
 * @since 0.1.0
 */
export const Response = Schema.Union([
  Schema.TaggedStruct("Done", {}),
  Schema.TaggedStruct("Sent", {
    results: Schema.Array(Schema.Union([Schema.TaggedStruct("Stored", { receipt: Receipt }), Schema.TaggedStruct("Refused", { error: Failure })]))
  }),
  Schema.TaggedStruct("Received", {
    handles: Schema.Array(Schema.Struct({ receiptHandle: Schema.String, invisibleUntil: Schema.Number })),
    messages: Schema.Uint8Array
  }),
  Schema.TaggedStruct("Acked", { failures: Schema.Array(Schema.Struct({ index: Schema.Int, error: Failure })) }),
  Schema.TaggedStruct("Changed", { receiptHandle: Schema.String }),
  Schema.TaggedStruct("ChecksDue", { checks: Schema.Array(Schema.Struct({ transactionId: Schema.String, attempt: Schema.Int })), messages: Schema.Uint8Array }),
  Schema.TaggedStruct("Recalled", { messageId: Schema.String }),
  Schema.TaggedStruct("Topic", { topic: TopicInfo }),
  Schema.TaggedStruct("Topics", { topics: Schema.Array(TopicInfo) }),
  Schema.TaggedStruct("Group", { group: GroupInfo }),
  Schema.TaggedStruct("Groups", { groups: Schema.Array(GroupInfo) }),
  Schema.TaggedStruct("Lag", { queues: Schema.Array(QueueLag) }),
  Schema.TaggedStruct("Queues", { queues: Schema.Array(Schema.Struct({ broker: Schema.String, queueId: Schema.Int, start: Schema.Number, end: Schema.Number })) }),
  Schema.TaggedStruct("Pulled", { messages: Schema.Uint8Array, nextOffset: Schema.Number }),
  Schema.TaggedStruct("Offset", { offset: Schema.optionalKey(Schema.Number) }),
  Schema.TaggedStruct("Failed", { error: Failure })
])

/**
 * A proxy's answer.
 *
 * @since 0.1.0
 */
export type Response = typeof Response.Type

// The cases every message crosses (Send, Ack; Sent, Received, Acked) are written by hand behind a
// form byte; every other case is the schema-derived encoding behind form 0. The derived codec's
// generic walk was a tenth of the client's CPU per message.
const SendForm = 1
const AckForm = 2
const ReceiveForm = 3
const SentForm = 1
const ReceivedForm = 2
const AckedForm = 3

// the schema-derived encoding of every case not written by hand, and of errors inside hand-written ones
const requests = Wire.schemaCodec(Request)
const responses = Wire.schemaCodec(Response)
const failures = Wire.schemaCodec(Failure)

/**
 * A payload that is not a well-formed request or response.
 *
 * @since 0.1.0
 */
export type DecodeError = Wire.Malformed | Schema.SchemaError

/**
 * Encodes a request.
 *
 * @since 0.1.0
 */
export const encodeRequest = (request: Request): Uint8Array => {
  switch (request._tag) {
    case "Send":
      return new Wire.Writer(16 + request.messages.length).u8(SendForm).u8(request.transactional ? 1 : 0).bytes(request.messages).done()
    case "Ack":
      return Wire.writeAcknowledgement(AckForm, request)
    case "Receive":
      return Wire.writePoll(ReceiveForm, request)
    default:
      return requests.encodeForm(request)
  }
}

/**
 * Decodes a request; fails with a `DecodeError` on bytes that are not one.
 *
 * @since 0.1.0
 */
export const decodeRequest = (bytes: Uint8Array): Effect.Effect<Request, DecodeError> =>
  Wire.decodeByForm<Request, DecodeError>("request", bytes, requests.decode, {
    [SendForm]: (reader) => {
      const transactional = reader.u8() === 1
      return { _tag: "Send", messages: reader.bytes(), transactional }
    },
    [AckForm]: (reader) => ({ _tag: "Ack", ...Wire.readAcknowledgement(reader) }),
    [ReceiveForm]: (reader) => {
      const { pollMillis, ...poll } = Wire.readPoll(reader)
      if (pollMillis === undefined) throw new Wire.Malformed("a Receive without pollMillis")
      return { _tag: "Receive", ...poll, pollMillis }
    }
  })

/**
 * Encodes a response.
 *
 * @since 0.1.0
 */
export const encodeResponse = (response: Response): Uint8Array => {
  switch (response._tag) {
    case "Sent": {
      const writer = new Wire.Writer(64 + response.results.length * 80).u8(SentForm).u32(response.results.length)
      for (const result of response.results) {
        if (result._tag === "Refused") writer.u8(1).bytes(failures.encode(result.error))
        else writer.u8(0).string(result.receipt.messageId).u32(result.receipt.queueId).f64(result.receipt.offset).optionalString(result.receipt.recallHandle)
      }
      return writer.done()
    }
    case "Received":
      return Wire.writeDelivery(ReceivedForm, response)
    case "Acked":
      return Wire.writeFailures(AckedForm, response.failures, failures.encode)
    default:
      return responses.encodeForm(response)
  }
}

/**
 * Decodes a response; fails with a `DecodeError` on bytes that are not one.
 *
 * @since 0.1.0
 */
export const decodeResponse = (bytes: Uint8Array): Effect.Effect<Response, DecodeError> =>
  Wire.decodeByForm<Response, DecodeError>("response", bytes, responses.decode, {
    [SentForm]: (reader) => ({
      _tag: "Sent",
      results: Array.from({ length: reader.count(1) }, () => {
        if (reader.u8() === 1) return { _tag: "Refused" as const, error: failures.decodeSync(reader.bytes()) }
        const messageId = reader.string()
        const queueId = reader.u32()
        const offset = Wire.safeInteger(reader.f64())
        const recallHandle = reader.optionalString()
        return { _tag: "Stored" as const, receipt: recallHandle === undefined ? { messageId, queueId, offset } : { messageId, queueId, offset, recallHandle } }
      })
    }),
    [ReceivedForm]: (reader) => ({ _tag: "Received", ...Wire.readDelivery(reader) }),
    [AckedForm]: (reader) => ({ _tag: "Acked", failures: Wire.readFailures(reader, failures.decodeSync) })
  })
