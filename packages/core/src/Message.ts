/**
 * Messages as producers send them and as queues store them, and the rules a message must pass
 * before a broker accepts it.
 *
 * The schemas check structure only; {@link validate} applies RocketMQ's rules and answers each
 * broken rule with its own typed error, which every protocol maps to its own code.
 */
import { Buffer } from "node:buffer"
import { Clock, Effect, Schema } from "effect"
import { Limits, type Limits as LimitsShape } from "./Limits.ts"
import * as MessageId from "./MessageId.ts"
import * as Topic from "./Topic.ts"

/** A message as a producer sends it. */
export class Message extends Schema.Class<Message>("@strait/core/Message")({
  topic: Schema.String,
  body: Schema.Uint8Array,
  /** One tag for server-side filtering. */
  tag: Schema.optionalKey(Schema.String),
  /** Business keys for lookups. */
  keys: Schema.Array(Schema.String),
  userProperties: Schema.Record(Schema.String, Schema.String),
  /** The FIFO group: messages of one group are delivered in order. */
  messageGroup: Schema.optionalKey(Schema.String),
  /** Milliseconds since the Unix epoch before which the message is not delivered. */
  deliveryTimestamp: Schema.optionalKey(Schema.Int),
  /** Higher is delivered first, on priority topics. */
  priority: Schema.optionalKey(Schema.Int),
  /** How long after its birth the message may still be delivered, in milliseconds. */
  ttlMillis: Schema.optionalKey(Schema.Int),
  /** When the producer made the message, milliseconds since the Unix epoch. */
  bornTimestamp: Schema.Int,
  /** The producer's host name. */
  bornHost: Schema.String,
  /** W3C trace context carried from producer to consumer. */
  traceContext: Schema.optionalKey(Schema.String),
  messageId: Schema.String
}) {}

const DeliveryAttempt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/** A message in a queue: where it is, when it was stored, and which delivery this is. */
export class StoredMessage extends Message.extend<StoredMessage>("@strait/core/StoredMessage")({
  queueId: Topic.QueueId,
  queueOffset: Topic.Offset,
  /** When the broker stored the message, milliseconds since the Unix epoch. */
  storeTimestamp: Schema.Int,
  /** 1 on the first delivery, one more on each redelivery. */
  deliveryAttempt: DeliveryAttempt
}) {}

/**
 * A message from fields the compiler has type-checked, made on the class's prototype without the
 * constructor's parse of every field (1.7 µs a message on this VM, against 0.08): for a producer
 * building its own messages. It checks nothing: every message a broker accepts passes
 * {@link validate} there.
 */
export const fromFields = (fields: ConstructorParameters<typeof Message>[0]): Message =>
  Object.assign(Object.create(Message.prototype) as Message, fields)

/**
 * A copy of a message (or a stored message) under another topic name, without a parse of its
 * fields: a proxy qualifying or unqualifying a namespace.
 */
export const withTopic = <M extends Message>(message: M, topic: string): M =>
  Object.assign(Object.create(Object.getPrototypeOf(message) as object) as M, message, { topic })

/** The message body is empty (RocketMQ `MESSAGE_BODY_EMPTY`). */
export class MessageBodyEmpty extends Schema.TaggedError<MessageBodyEmpty>()("MessageBodyEmpty", {}) {
  override get message() {
    return "message body is empty"
  }
}

/** The message body is larger than `Limits.maxBodyBytes` (RocketMQ `MESSAGE_BODY_TOO_LARGE`). */
export class MessageBodyTooLarge extends Schema.TaggedError<MessageBodyTooLarge>()("MessageBodyTooLarge", {
  bytes: Schema.Int,
  maxBytes: Schema.Int
}) {
  override get message() {
    return `message body has ${this.bytes} bytes, the maximum is ${this.maxBytes}`
  }
}

/** The tag is blank, contains `|` or a control character (RocketMQ `ILLEGAL_MESSAGE_TAG`). */
export class IllegalMessageTag extends Schema.TaggedError<IllegalMessageTag>()("IllegalMessageTag", {
  tag: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `message tag ${JSON.stringify(this.tag)} ${this.reason}`
  }
}

/** A key is blank or contains a control character (RocketMQ `ILLEGAL_MESSAGE_KEY`). */
export class IllegalMessageKey extends Schema.TaggedError<IllegalMessageKey>()("IllegalMessageKey", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `message key ${JSON.stringify(this.key)} ${this.reason}`
  }
}

/**
 * The message group is blank, longer than `Limits.maxMessageGroupBytes` or contains a control
 * character (RocketMQ `ILLEGAL_MESSAGE_GROUP`).
 */
export class IllegalMessageGroup extends Schema.TaggedError<IllegalMessageGroup>()("IllegalMessageGroup", {
  messageGroup: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `message group ${JSON.stringify(this.messageGroup)} ${this.reason}`
  }
}

/** A user property key is reserved by the system or contains a control character (RocketMQ `ILLEGAL_MESSAGE_PROPERTY_KEY`). */
export class IllegalPropertyKey extends Schema.TaggedError<IllegalPropertyKey>()("IllegalPropertyKey", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `property key ${JSON.stringify(this.key)} ${this.reason}`
  }
}

/**
 * A user property value contains a control character.
 *
 * **Details**
 *
 * RocketMQ answers this with `ILLEGAL_MESSAGE_PROPERTY_KEY` too; the name here says what happened.
 */
export class IllegalPropertyValue extends Schema.TaggedError<IllegalPropertyValue>()("IllegalPropertyValue", {
  key: Schema.String,
  value: Schema.String
}) {
  override get message() {
    return `the value of property ${JSON.stringify(this.key)} contains a control character`
  }
}

/**
 * There are more user properties than `Limits.maxPropertyCount`, or they take, with the tag and the
 * keys, more than `Limits.maxPropertiesBytes` (RocketMQ `MESSAGE_PROPERTIES_TOO_LARGE`).
 */
export class MessagePropertiesTooLarge extends Schema.TaggedError<MessagePropertiesTooLarge>()(
  "MessagePropertiesTooLarge",
  { exceeded: Schema.Literals(["count", "bytes"]), actual: Schema.Int, max: Schema.Int }
) {
  override get message() {
    return this.exceeded === "count"
      ? `message has ${this.actual} user properties, the maximum is ${this.max}`
      : `user properties, tag and keys take ${this.actual} bytes, the maximum is ${this.max}`
  }
}

/** The delivery timestamp lies more than `Limits.maxDeliveryDelayMillis` ahead (RocketMQ `ILLEGAL_DELIVERY_TIME`). */
export class IllegalDeliveryTime extends Schema.TaggedError<IllegalDeliveryTime>()("IllegalDeliveryTime", {
  deliveryTimestamp: Schema.Int,
  now: Schema.Int,
  maxDelayMillis: Schema.Int
}) {
  override get message() {
    return `delivery is ${this.deliveryTimestamp - this.now} ms ahead, the maximum is ${this.maxDelayMillis} ms`
  }
}

/** The priority is negative. */
export class IllegalMessagePriority extends Schema.TaggedError<IllegalMessagePriority>()("IllegalMessagePriority", {
  priority: Schema.Int
}) {
  override get message() {
    return `message priority ${this.priority} is negative`
  }
}

/** The time to live is zero or negative. */
export class IllegalMessageTtl extends Schema.TaggedError<IllegalMessageTtl>()("IllegalMessageTtl", {
  ttlMillis: Schema.Int
}) {
  override get message() {
    return `message time to live ${this.ttlMillis} ms is not positive`
  }
}

/**
 * The message sets properties that exclude each other (RocketMQ `MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`).
 *
 * **Details**
 *
 * Only conflicts visible in the message itself; whether the message fits its topic's kind is the
 * broker's check.
 */
export class MessagePropertyConflict extends Schema.TaggedError<MessagePropertyConflict>()("MessagePropertyConflict", {
  properties: Schema.Array(Schema.String)
}) {
  override get message() {
    return `message sets ${this.properties.join(" and ")}, which exclude each other`
  }
}

/** Every way {@link validate} can reject a message. */
export type MessageValidationError =
  | Topic.IllegalTopicName
  | MessageId.IllegalMessageId
  | MessageBodyEmpty
  | MessageBodyTooLarge
  | IllegalMessageTag
  | IllegalMessageKey
  | IllegalMessageGroup
  | IllegalPropertyKey
  | IllegalPropertyValue
  | MessagePropertiesTooLarge
  | IllegalDeliveryTime
  | IllegalMessagePriority
  | IllegalMessageTtl
  | MessagePropertyConflict

/**
 * User property keys the system uses: RocketMQ's `MessageConst.STRING_HASH_SET`, plus the keys its
 * broker writes for transactions and ApsaraMQ's delay and sharding keys.
 */
export const reservedPropertyKeys: ReadonlySet<string> = new Set([
  "TRACE_ON", "MSG_REGION", "KEYS", "TAGS", "WAIT", "DELAY", "RETRY_TOPIC", "REAL_TOPIC", "REAL_QID",
  "TRAN_MSG", "PGROUP", "MIN_OFFSET", "MAX_OFFSET", "BUYER_ID", "ORIGIN_MESSAGE_ID", "TRANSFER_FLAG",
  "CORRECTION_FLAG", "MQ2_FLAG", "RECONSUME_TIME", "UNIQ_KEY", "MAX_RECONSUME_TIMES", "CONSUME_START_TIME",
  "POP_CK", "POP_CK_OFFSET", "1ST_POP_TIME", "TRAN_PREPARED_QUEUE_OFFSET", "DUP_INFO", "EXTEND_UNIQ_INFO",
  "INSTANCE_ID", "CORRELATION_ID", "REPLY_TO_CLIENT", "TTL", "ARRIVE_TIME", "PUSH_REPLY_TIME", "CLUSTER",
  "MSG_TYPE", "INNER_MULTI_QUEUE_OFFSET", "TIMER_DELAY_MS", "TIMER_DELAY_SEC", "TIMER_DELIVER_MS",
  "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_OUT_MS", "TIMER_DEL_UNIQKEY",
  "TIMER_DELAY_LEVEL", "__BORNHOST", "BORN_TIMESTAMP", "DLQ_ORIGIN_TOPIC", "DLQ_ORIGIN_MESSAGE_ID", "__CRC32#",
  "__transactionId__", "TRANSACTION_CHECK_TIMES", "CHECK_IMMUNITY_TIME_IN_SECONDS",
  "__STARTDELIVERTIME", "__SHARDINGKEY"
])

// Java's Character.isISOControl, which RocketMQ uses: C0 controls, DEL and C1 controls.
const hasControlCharacter = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return true
  }
  return false
}

const isBlank = (text: string): boolean => text.trim().length === 0

const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8")

/**
 * The first of RocketMQ's send rules (and the {@link Limits} given) the message breaks, if any, at
 * time `now`: the synchronous form of {@link validate}, for loops over many messages.
 */
export const check = (
  message: Message,
  limits: LimitsShape,
  now: number
): MessageValidationError | undefined => {
  const topicProblem = Topic.checkName(message.topic)
  if (topicProblem !== undefined) return topicProblem
  const idProblem = MessageId.check(message.messageId)
  if (idProblem !== undefined) return idProblem

  const bodyBytes = message.body.byteLength
  if (bodyBytes === 0) return new MessageBodyEmpty()
  if (bodyBytes > limits.maxBodyBytes) {
    return new MessageBodyTooLarge({ bytes: bodyBytes, maxBytes: limits.maxBodyBytes })
  }

  const { tag, messageGroup } = message
  if (tag !== undefined) {
    const reason = isBlank(tag)
      ? "is blank"
      : tag.includes("|")
      ? "contains |"
      : hasControlCharacter(tag)
      ? "contains a control character"
      : undefined
    if (reason !== undefined) return new IllegalMessageTag({ tag, reason })
  }
  for (const key of message.keys) {
    if (isBlank(key)) return new IllegalMessageKey({ key, reason: "is blank" })
    if (hasControlCharacter(key)) return new IllegalMessageKey({ key, reason: "contains a control character" })
  }
  if (messageGroup !== undefined) {
    const groupBytes = utf8Bytes(messageGroup)
    const reason = isBlank(messageGroup)
      ? "is blank"
      : groupBytes > limits.maxMessageGroupBytes
      ? `has ${groupBytes} bytes, the maximum is ${limits.maxMessageGroupBytes}`
      : hasControlCharacter(messageGroup)
      ? "contains a control character"
      : undefined
    if (reason !== undefined) return new IllegalMessageGroup({ messageGroup, reason })
  }

  const properties = Object.entries(message.userProperties)
  if (properties.length > limits.maxPropertyCount) {
    return new MessagePropertiesTooLarge({
      exceeded: "count",
      actual: properties.length,
      max: limits.maxPropertyCount
    })
  }
  let propertiesBytes = tag === undefined ? 0 : utf8Bytes(tag)
  for (const key of message.keys) propertiesBytes += utf8Bytes(key)
  for (const [key, value] of properties) {
    if (reservedPropertyKeys.has(key)) return new IllegalPropertyKey({ key, reason: "is reserved by the system" })
    if (hasControlCharacter(key)) return new IllegalPropertyKey({ key, reason: "contains a control character" })
    if (hasControlCharacter(value)) return new IllegalPropertyValue({ key, value })
    propertiesBytes += utf8Bytes(key) + utf8Bytes(value)
  }
  if (propertiesBytes > limits.maxPropertiesBytes) {
    return new MessagePropertiesTooLarge({
      exceeded: "bytes",
      actual: propertiesBytes,
      max: limits.maxPropertiesBytes
    })
  }

  const { deliveryTimestamp, priority, ttlMillis } = message
  if (deliveryTimestamp !== undefined) {
    if (deliveryTimestamp - now > limits.maxDeliveryDelayMillis) {
      return new IllegalDeliveryTime({ deliveryTimestamp, now, maxDelayMillis: limits.maxDeliveryDelayMillis })
    }
  }
  if (priority !== undefined) {
    if (priority < 0) return new IllegalMessagePriority({ priority })
    // RIP-80: a priority message is neither delayed nor ordered.
    if (deliveryTimestamp !== undefined) {
      return new MessagePropertyConflict({ properties: ["priority", "deliveryTimestamp"] })
    }
    if (messageGroup !== undefined) {
      return new MessagePropertyConflict({ properties: ["priority", "messageGroup"] })
    }
  }
  if (ttlMillis !== undefined && ttlMillis <= 0) return new IllegalMessageTtl({ ttlMillis })
  return undefined
}

/**
 * Checks a message against RocketMQ's send rules and the {@link Limits} in force, failing with the
 * first rule it breaks.
 *
 * **Details**
 *
 * Reads `Clock` for the delivery-time rule: a delivery timestamp up to exactly
 * `maxDeliveryDelayMillis` ahead passes, and one in the past means "deliver now". A tag is checked
 * when present, so protocols map an empty wire tag to an absent one.
 */
export const validate = (message: Message): Effect.Effect<Message, MessageValidationError> =>
  Effect.flatMap(Limits, (limits) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const problem = check(message, limits, now)
      return problem === undefined ? Effect.succeed(message) : Effect.fail(problem)
    }))
