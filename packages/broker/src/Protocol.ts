/**
 * The broker's data-plane protocol: what a proxy or a client sends a broker in `Frame.Type.Broker`
 * frames, and what it answers.
 *
 * A request is one case of `Request`; the answer is one case of `Response`: a success, or one of the
 * broker's own typed errors, which arrive on the other side as the same error classes. Payloads are
 * Effect's schema-derived binary encoding (`effect/encoding` `SchemaBinary`); messages travel inside
 * as `MessageBatch` bytes, so message bodies are never re-encoded.
 *
 * @since 0.1.0
 */
import { Message, MessageId, ReceiptHandle, Topic } from "@strait/core"
import { Schema } from "effect"
import { SchemaBinary } from "effect/encoding"
import * as Broker from "./Broker.ts"
import * as Consumption from "./Consumption.ts"
import * as Filter from "./Filter.ts"
import * as Timers from "./Timers.ts"
import * as Topics from "./Topics.ts"
import * as Transactions from "./Transactions.ts"

const FilterExpression = Schema.Struct({ type: Schema.Literals(["TAG", "SQL92"]), expression: Schema.String })

/**
 * A request to a broker.
 *
 * @since 0.1.0
 */
export const Request = Schema.Union([
  /** Several sends in one request (a client coalesces concurrent sends); each succeeds or fails alone. */
  Schema.TaggedStruct("Produce", { sends: Schema.Array(Schema.Struct({ messages: Schema.Uint8Array, transactional: Schema.Boolean })) }),
  Schema.TaggedStruct("Pop", {
    group: Schema.String,
    topic: Schema.String,
    maxMessages: Schema.Int,
    invisibleMillis: Schema.Number,
    pollMillis: Schema.optionalKey(Schema.Number),
    filter: Schema.optionalKey(FilterExpression),
    attemptId: Schema.optionalKey(Schema.String)
  }),
  /** Acknowledges several messages of one group and topic; each handle succeeds or fails alone. */
  Schema.TaggedStruct("Ack", { group: Schema.String, topic: Schema.String, receiptHandles: Schema.Array(Schema.String) }),
  Schema.TaggedStruct("ChangeInvisibility", {
    group: Schema.String,
    topic: Schema.String,
    receiptHandle: Schema.String,
    invisibleMillis: Schema.Number
  }),
  Schema.TaggedStruct("EndTransaction", {
    topic: Schema.String,
    transactionId: Schema.String,
    resolution: Schema.Literals(["COMMIT", "ROLLBACK"])
  }),
  Schema.TaggedStruct("Recall", { topic: Schema.String, recallHandle: Schema.String }),
  Schema.TaggedStruct("Pull", {
    topic: Schema.String,
    queueId: Schema.Int,
    offset: Schema.Int,
    maxCount: Schema.Int,
    maxBytes: Schema.optionalKey(Schema.Int),
    filter: Schema.optionalKey(FilterExpression)
  }),
  Schema.TaggedStruct("CommitOffset", { group: Schema.String, topic: Schema.String, queueId: Schema.Int, offset: Schema.Int }),
  Schema.TaggedStruct("QueryOffset", { group: Schema.String, topic: Schema.String, queueId: Schema.Int }),
  Schema.TaggedStruct("CreateTopic", {
    name: Schema.String,
    kind: Topic.TopicKind,
    queues: Schema.Int,
    flush: Schema.Literals(["sync", "async"])
  }),
  Schema.TaggedStruct("DescribeTopic", { name: Schema.String })
])

/**
 * A request to a broker.
 *
 * @since 0.1.0
 */
export type Request = typeof Request.Type

/**
 * The request could not be decoded, or is not a broker request at all.
 *
 * @since 0.1.0
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", { reason: Schema.String }) {}

/**
 * The broker could not serve the request for a reason of its own (storage, shutdown); retrying later
 * or elsewhere may work.
 *
 * @since 0.1.0
 */
export class BrokerUnavailable extends Schema.TaggedError<BrokerUnavailable>()("BrokerUnavailable", { reason: Schema.String }) {}

/**
 * Every error a request can end with, as it crosses the wire.
 *
 * @since 0.1.0
 */
export const Failure = Schema.Union([
  BadRequest,
  BrokerUnavailable,
  Message.MessageBodyEmpty,
  Message.MessageBodyTooLarge,
  Message.IllegalMessageTag,
  Message.IllegalMessageKey,
  Message.IllegalMessageGroup,
  Message.IllegalPropertyKey,
  Message.IllegalPropertyValue,
  Message.MessagePropertiesTooLarge,
  Message.IllegalDeliveryTime,
  Message.IllegalMessagePriority,
  Message.IllegalMessageTtl,
  Message.MessagePropertyConflict,
  Topic.IllegalTopicName,
  MessageId.IllegalMessageId,
  Topics.TopicNotFound,
  Topics.TopicAlreadyExists,
  Topics.IllegalTopicSpec,
  Topics.IllegalTopicChange,
  Broker.MessageTypeMismatch,
  Broker.QueueNotFound,
  Broker.OffsetOutOfRange,
  Consumption.IllegalInvisibleTime,
  Consumption.ReceiptHandleStale,
  Consumption.ReceiptHandleMismatch,
  ReceiptHandle.InvalidReceiptHandle,
  ReceiptHandle.ReceiptHandleExpired,
  Timers.RecallFailed,
  Transactions.TransactionNotFound,
  Filter.IllegalFilterExpression
])

/**
 * An error a request can end with.
 *
 * @since 0.1.0
 */
export type Failure = typeof Failure.Type

const Receipt = Schema.Struct({
  messageId: Schema.String,
  queueId: Schema.Int,
  offset: Schema.Number,
  storeTimestamp: Schema.Number,
  recallHandle: Schema.optionalKey(Schema.String)
})

/**
 * A broker's answer.
 *
 * @since 0.1.0
 */
export const Response = Schema.Union([
  /** One result per send of the request, in order. */
  Schema.TaggedStruct("Produced", {
    results: Schema.Array(Schema.Union([
      Schema.TaggedStruct("Sent", { receipts: Schema.Array(Receipt) }),
      Schema.TaggedStruct("Refused", { error: Failure })
    ]))
  }),
  /** The handles of an `Ack` that failed, by their index in the request; the others were acknowledged. */
  Schema.TaggedStruct("Acked", { failures: Schema.Array(Schema.Struct({ index: Schema.Int, error: Failure })) }),
  Schema.TaggedStruct("Popped", {
    handles: Schema.Array(Schema.Struct({ receiptHandle: Schema.String, invisibleUntil: Schema.Number })),
    messages: Schema.Uint8Array
  }),
  Schema.TaggedStruct("Renewed", { receiptHandle: Schema.String }),
  Schema.TaggedStruct("Recalled", { messageId: Schema.String }),
  Schema.TaggedStruct("Pulled", { messages: Schema.Uint8Array, nextOffset: Schema.Number, start: Schema.Number, end: Schema.Number }),
  Schema.TaggedStruct("Offset", { offset: Schema.optionalKey(Schema.Number) }),
  Schema.TaggedStruct("TopicDescribed", {
    name: Schema.String,
    kind: Topic.TopicKind,
    queues: Schema.Int,
    flush: Schema.Literals(["sync", "async"]),
    bounds: Schema.Array(Schema.Struct({ queueId: Schema.Int, start: Schema.Number, end: Schema.Number }))
  }),
  Schema.TaggedStruct("Done", {}),
  Schema.TaggedStruct("Failed", { error: Failure })
])

/**
 * A broker's answer.
 *
 * @since 0.1.0
 */
export type Response = typeof Response.Type

/**
 * The binary codecs of requests and responses.
 *
 * @since 0.1.0
 */
export const requestCodec = SchemaBinary.toCodec(Request)

/**
 * @since 0.1.0
 */
export const responseCodec = SchemaBinary.toCodec(Response)

/**
 * Encodes a request.
 *
 * @since 0.1.0
 */
export const encodeRequest = Schema.encodeSync(requestCodec)

/**
 * Decodes a request; fails with a `SchemaError` on bytes that are not one.
 *
 * @since 0.1.0
 */
export const decodeRequest = Schema.decodeUnknownEffect(requestCodec)

/**
 * Encodes a response.
 *
 * @since 0.1.0
 */
export const encodeResponse = Schema.encodeSync(responseCodec)

/**
 * Decodes a response.
 *
 * @since 0.1.0
 */
export const decodeResponse = Schema.decodeUnknownEffect(responseCodec)
