/**
 * The broker's data-plane protocol: what a proxy or a client sends a broker in `Frame.Type.Broker`
 * frames, and what it answers.
 *
 * A request is one case of `Request`; the answer is one case of `Response`: a success, or one of the
 * broker's own typed errors, which arrive on the other side as the same error classes. A payload's
 * first byte names its form: Effect's schema-derived binary encoding (`effect/encoding`
 * `SchemaBinary`) for most messages, or a hand-written layout (length-prefixed fields, little-endian)
 * for the ones every message crosses (`Produce`, `Ack`, `Produced`, `Popped`, `Acked`), where the
 * derived codec's per-element cost showed. Messages travel inside as `MessageBatch` bytes, so message
 * bodies are never re-encoded.
 *
 * @since 0.1.0
 */
import { PartitionLeases } from "@strait/control"
import { ConsumerGroup, Message, MessageId, ReceiptHandle, Topic, Wire } from "@strait/core"
import { Effect, Schema } from "effect"
import * as Broker from "./Broker.ts"
import * as Consumption from "./Consumption.ts"
import * as Filter from "./Filter.ts"
import * as Timers from "./Timers.ts"
import * as Topics from "./Topics.ts"
import * as Transactions from "./Transactions.ts"

const FilterExpression = Schema.Struct({ type: Schema.Literals(["TAG", "SQL92"]), expression: Schema.String })

const Flush = Schema.Literals(["sync", "async"])

// a group's settings as a request carries them: the name is checked by the broker, which answers a
// bad one with `IllegalConsumerGroup` rather than `BadRequest`
const GroupSettings = Schema.Struct({ ...ConsumerGroup.ConsumerGroup.fields, name: Schema.String })

/**
 * A request to a broker.
 *
 * @since 0.1.0
 */
export const Request = Schema.Union([
  /** Several sends in one request (a client coalesces concurrent sends); each succeeds or fails alone. */
  Schema.TaggedStruct("Produce", {
    sends: Schema.Array(Schema.Struct({
      messages: Schema.Uint8Array,
      transactional: Schema.Boolean,
      /** In a cluster: the queues the sender believes this broker serves, at their fencing epochs. */
      fence: Schema.optionalKey(Schema.Array(Schema.Struct({ queueId: Schema.Int, epoch: Schema.Int })))
    }))
  }),
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
    flush: Flush
  }),
  Schema.TaggedStruct("DescribeTopic", { name: Schema.String }),
  /** Grows a topic's queues or changes its flush policy; answered as `DescribeTopic`. */
  Schema.TaggedStruct("UpdateTopic", { name: Schema.String, queues: Schema.optionalKey(Schema.Int), flush: Schema.optionalKey(Flush) }),
  Schema.TaggedStruct("DeleteTopic", { name: Schema.String }),
  Schema.TaggedStruct("ListTopics", {}),
  /** Moves a received message to its group's dead-letter topic and acknowledges it. */
  Schema.TaggedStruct("ForwardToDeadLetter", { group: Schema.String, topic: Schema.String, receiptHandle: Schema.String }),
  Schema.TaggedStruct("DescribeGroup", { name: Schema.String }),
  Schema.TaggedStruct("SetGroup", { group: GroupSettings }),
  Schema.TaggedStruct("ListGroups", {}),
  /** Where a group stands on every queue of the broker. */
  Schema.TaggedStruct("GroupProgress", { group: Schema.String }),
  /** A long poll for transaction check-backs: up to `max`, waiting up to `waitMillis` for the first. */
  Schema.TaggedStruct("AwaitChecks", { max: Schema.Int, waitMillis: Schema.Number }),
  /** Extends a received message's window, keeping its handle (automatic renewal). */
  Schema.TaggedStruct("RenewInvisibility", {
    group: Schema.String,
    topic: Schema.String,
    receiptHandle: Schema.String,
    invisibleMillis: Schema.Number
  })
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
  PartitionLeases.NotQueueOwner,
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
  ConsumerGroup.IllegalConsumerGroup,
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
    flush: Flush,
    bounds: Schema.Array(Schema.Struct({ queueId: Schema.Int, start: Schema.Number, end: Schema.Number }))
  }),
  Schema.TaggedStruct("TopicsListed", {
    topics: Schema.Array(Schema.Struct({ name: Schema.String, kind: Topic.TopicKind, queues: Schema.Int, flush: Flush }))
  }),
  Schema.TaggedStruct("GroupDescribed", { group: ConsumerGroup.ConsumerGroup }),
  Schema.TaggedStruct("GroupProgressed", {
    queues: Schema.Array(Schema.Struct({ topic: Schema.String, queueId: Schema.Int, end: Schema.Number, consumed: Schema.Number, inFlight: Schema.Int }))
  }),
  Schema.TaggedStruct("GroupsListed", { groups: Schema.Array(ConsumerGroup.ConsumerGroup) }),
  /** Transaction checks due: `checks[i]` is of the i-th message of `messages` (`MessageBatch` bytes). */
  Schema.TaggedStruct("ChecksDue", {
    checks: Schema.Array(Schema.Struct({ transactionId: Schema.String, attempt: Schema.Int })),
    messages: Schema.Uint8Array
  }),
  Schema.TaggedStruct("Done", {}),
  Schema.TaggedStruct("Failed", { error: Failure }),
  Schema.TaggedStruct("WindowExtended", { invisibleUntil: Schema.Number })
])

/**
 * A broker's answer.
 *
 * @since 0.1.0
 */
export type Response = typeof Response.Type

// the schema-derived encoding of every case not written by hand, and of errors inside hand-written ones
const requests = Wire.schemaCodec(Request)
const responses = Wire.schemaCodec(Response)
const failures = Wire.schemaCodec(Failure)

// The first byte of a payload says how the rest is laid out: the Schema-derived form, or one of the
// hand-written layouts of the messages every produced and consumed message crosses.
const ProduceForm = 1
const AckForm = 2
const PopForm = 3
const ProducedForm = 1
const PoppedForm = 2
const AckedForm = 3

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
    case "Produce": {
      const writer = new Wire.Writer(64 + request.sends.reduce((n, send) => n + send.messages.length + 5, 0)).u8(ProduceForm).u32(request.sends.length)
      // per send: flags (1 transactional, 2 a fence follows), the messages, then the fence's pairs
      for (const send of request.sends) {
        writer.u8((send.transactional ? 1 : 0) | (send.fence === undefined ? 0 : 2)).bytes(send.messages)
        if (send.fence === undefined) continue
        writer.u32(send.fence.length)
        for (const { epoch, queueId } of send.fence) writer.u32(queueId).u32(epoch)
      }
      return writer.done()
    }
    case "Ack":
      return Wire.writeAcknowledgement(AckForm, request)
    case "Pop":
      return Wire.writePoll(PopForm, request)
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
    [ProduceForm]: (reader) => ({
      _tag: "Produce",
      sends: Array.from({ length: reader.count(5) }, () => {
        const flags = reader.u8()
        const messages = reader.bytes()
        const fence = (flags & 2) === 0 ? undefined : Array.from({ length: reader.count(8) }, () => ({ queueId: reader.u32(), epoch: reader.u32() }))
        return { transactional: (flags & 1) === 1, messages, ...(fence === undefined ? {} : { fence }) }
      })
    }),
    [AckForm]: (reader) => ({ _tag: "Ack", ...Wire.readAcknowledgement(reader) }),
    [PopForm]: (reader) => {
      const { invisibleMillis, ...poll } = Wire.readPoll(reader)
      if (invisibleMillis === undefined) throw new Wire.Malformed("a Pop without invisibleMillis")
      return { _tag: "Pop", ...poll, invisibleMillis }
    }
  })

/**
 * Encodes a response.
 *
 * @since 0.1.0
 */
export const encodeResponse = (response: Response): Uint8Array => {
  switch (response._tag) {
    case "Produced": {
      const writer = new Wire.Writer(64 + response.results.length * 96).u8(ProducedForm).u32(response.results.length)
      for (const result of response.results) {
        if (result._tag === "Refused") {
          writer.u8(1).bytes(failures.encode(result.error))
          continue
        }
        writer.u8(0).u32(result.receipts.length)
        for (const receipt of result.receipts) {
          writer.string(receipt.messageId).u32(receipt.queueId).f64(receipt.offset).f64(receipt.storeTimestamp).optionalString(receipt.recallHandle)
        }
      }
      return writer.done()
    }
    case "Popped":
      return Wire.writeDelivery(PoppedForm, response)
    case "Acked":
      return Wire.writeFailures(AckedForm, response.failures, failures.encode)
    default:
      return responses.encodeForm(response)
  }
}

/**
 * Decodes a response.
 *
 * @since 0.1.0
 */
export const decodeResponse = (bytes: Uint8Array): Effect.Effect<Response, DecodeError> =>
  Wire.decodeByForm<Response, DecodeError>("response", bytes, responses.decode, {
    [ProducedForm]: (reader) => ({
      _tag: "Produced",
      results: Array.from({ length: reader.count(1) }, () => {
        if (reader.u8() === 1) return { _tag: "Refused" as const, error: failures.decodeSync(reader.bytes()) }
        const receipts = Array.from({ length: reader.count(25) }, () => {
          const messageId = reader.string()
          const queueId = reader.u32()
          const offset = Wire.safeInteger(reader.f64())
          const storeTimestamp = Wire.safeInteger(reader.f64())
          const recallHandle = reader.optionalString()
          return recallHandle === undefined ? { messageId, queueId, offset, storeTimestamp } : { messageId, queueId, offset, storeTimestamp, recallHandle }
        })
        return { _tag: "Sent" as const, receipts }
      })
    }),
    [PoppedForm]: (reader) => ({ _tag: "Popped", ...Wire.readDelivery(reader) }),
    [AckedForm]: (reader) => ({ _tag: "Acked", failures: Wire.readFailures(reader, failures.decodeSync) })
  })
