/**
 * Topics and the names around them: namespaces, topic names and kinds, queue ids and offsets.
 *
 * Each name has a branded schema for decoding at a boundary and a `validate*` function that
 * answers with a typed error; both apply the same rule.
 */
import { Effect, Schema } from "effect"
import type { ConsumerGroupName } from "./ConsumerGroup.ts"
import { maxNamespaceLength, maxTopicNameLength } from "./Limits.ts"

/** The characters RocketMQ allows in topic and consumer group names (`TopicValidator.VALID_PATTERN_STR`). */
export const nameCharacters = /^[%|a-zA-Z0-9_-]+$/

// A namespace has no `%` or `|`: RocketMQ 4 wraps resources as `<namespace>%<name>`, which must stay unambiguous.
const namespaceCharacters = /^[a-zA-Z0-9_-]*$/

const topicNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "is empty"
  if (name.length > maxTopicNameLength) {
    return `is ${name.length} characters long, the maximum is ${maxTopicNameLength}`
  }
  return nameCharacters.test(name) ? undefined : "may contain only letters, digits, %, |, _ and -"
}

const namespaceProblem = (namespace: string): string | undefined => {
  if (namespace.length > maxNamespaceLength) {
    return `is ${namespace.length} characters long, the maximum is ${maxNamespaceLength}`
  }
  return namespaceCharacters.test(namespace) ? undefined : "may contain only letters, digits, _ and -"
}

/** A topic name: 1 to 127 of `[%|a-zA-Z0-9_-]`. */
export const TopicName = Schema.String.check(Schema.makeFilter(topicNameProblem, { expected: "a topic name" })).pipe(
  Schema.brand("TopicName")
)

/** A topic name that passed {@link validateName} or decoding with {@link TopicName}. */
export type TopicName = typeof TopicName.Type

/**
 * A namespace isolating one tenant's topics and groups: up to 64 of `[a-zA-Z0-9_-]`.
 *
 * **Details**
 *
 * The empty namespace is the default one, what a client configured without a namespace sends.
 */
export const Namespace = Schema.String.check(Schema.makeFilter(namespaceProblem, { expected: "a namespace" })).pipe(
  Schema.brand("Namespace")
)

/** A namespace that passed {@link validateNamespace} or decoding with {@link Namespace}. */
export type Namespace = typeof Namespace.Type

/** The namespace of clients that configure none. */
export const defaultNamespace = "" as Namespace

/** A topic name broke the naming rule (RocketMQ `ILLEGAL_TOPIC`). */
export class IllegalTopicName extends Schema.TaggedError<IllegalTopicName>()("IllegalTopicName", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `topic name ${JSON.stringify(this.topic)} ${this.reason}`
  }
}

/** A namespace broke the naming rule. */
export class IllegalNamespace extends Schema.TaggedError<IllegalNamespace>()("IllegalNamespace", {
  namespace: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `namespace ${JSON.stringify(this.namespace)} ${this.reason}`
  }
}

/** Whether a string is a valid topic name. */
export const isTopicName = (name: string): name is TopicName => topicNameProblem(name) === undefined

/** The error a topic name is, if it is not a valid one. */
export const checkName = (name: string): IllegalTopicName | undefined => {
  const reason = topicNameProblem(name)
  return reason === undefined ? undefined : new IllegalTopicName({ topic: name, reason })
}

/** Checks a topic name, failing with the reason it is not one. */
export const validateName = (name: string): Effect.Effect<TopicName, IllegalTopicName> => {
  const reason = topicNameProblem(name)
  return reason === undefined ? Effect.succeed(name as TopicName) : Effect.fail(new IllegalTopicName({ topic: name, reason }))
}

/** Checks a namespace, failing with the reason it is not one. */
export const validateNamespace = (namespace: string): Effect.Effect<Namespace, IllegalNamespace> => {
  const reason = namespaceProblem(namespace)
  return reason === undefined
    ? Effect.succeed(namespace as Namespace)
    : Effect.fail(new IllegalNamespace({ namespace, reason }))
}

/**
 * What a topic carries, which decides the messages it accepts (RocketMQ `TopicMessageType`).
 *
 * **Details**
 *
 * `NORMAL` plain messages, `FIFO` ordered per message group, `DELAY` scheduled by delivery
 * timestamp, `TRANSACTION` half messages committed or rolled back, `PRIORITY` served highest first.
 */
export const TopicKind = Schema.Literals(["NORMAL", "FIFO", "DELAY", "TRANSACTION", "PRIORITY"])

/** One of the {@link TopicKind} literals. */
export type TopicKind = typeof TopicKind.Type

/**
 * The index of a queue (partition) within a topic on one broker.
 *
 * **Details**
 *
 * Bounded by Java's `int`, the width of queue ids on the RocketMQ wire.
 */
export const QueueId = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 31 - 1 })).pipe(
  Schema.brand("QueueId")
)

/** A queue id decoded by {@link QueueId}. */
export type QueueId = typeof QueueId.Type

/** A position in a queue: a non-negative safe integer, the index of a message in that queue. */
export const Offset = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(Schema.brand("Offset"))

/** An offset decoded by {@link Offset}. */
export type Offset = typeof Offset.Type

/** The prefix of every dead-letter topic. */
export const deadLetterPrefix = "%DLQ%"

/**
 * The topic that receives a group's messages once they run out of delivery attempts: `%DLQ%<group>`.
 *
 * **Details**
 *
 * Always a valid topic name: a group has at most 120 characters of the topic charset.
 */
export const deadLetterTopic = (group: ConsumerGroupName): TopicName => `${deadLetterPrefix}${group}` as TopicName

/** Whether a topic is some group's dead-letter topic. */
export const isDeadLetterTopic = (topic: string): boolean => topic.startsWith(deadLetterPrefix)

/**
 * The 32-bit FNV-1a hash of a name's UTF-8 bytes: a tag's hash in the queue index, the queue of a
 * message group, rendezvous choices. Stable across processes and versions.
 *
 * **Details**
 *
 * `0` stands for "no tag" in the index, so a tag whose hash is `0` gets `1`. A lone surrogate is
 * hashed as U+FFFD, which is how it is stored as UTF-8.
 *
 * @since 0.1.0
 */
export const nameHash = (tag: string): number => {
  let hash = 0x811c9dc5
  const length = tag.length
  for (let i = 0; i < length; i++) {
    let code = tag.charCodeAt(i)
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, 0x01000193)
      continue
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < length ? tag.charCodeAt(i + 1) : 0
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00)
        i++
      } else {
        code = 0xfffd
      }
    }
    // encode to UTF-8 inline: hashing must not allocate a buffer per tag
    if (code < 0x800) {
      hash = Math.imul(hash ^ (0xc0 | (code >> 6)), 0x01000193)
    } else if (code < 0x10000) {
      hash = Math.imul(hash ^ (0xe0 | (code >> 12)), 0x01000193)
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), 0x01000193)
    } else {
      hash = Math.imul(hash ^ (0xf0 | (code >> 18)), 0x01000193)
      hash = Math.imul(hash ^ (0x80 | ((code >> 12) & 0x3f)), 0x01000193)
      hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), 0x01000193)
    }
    hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), 0x01000193)
  }
  hash >>>= 0
  return hash === 0 ? 1 : hash
}

/**
 * The queue every message of a message group goes to, so that a group stays in order: the same on
 * every broker and proxy.
 *
 * @since 0.1.0
 */
export const queueOfGroup = (messageGroup: string, queues: number): number => nameHash(messageGroup) % queues
