/**
 * RocketMQ 5 message ids, and the service that makes them.
 *
 * An id is 17 bytes as 34 upper-case hex characters: version `0x01`, the producer's MAC (6 bytes),
 * the low 16 bits of its pid, the seconds since 2021-01-01T00:00:00Z (4 bytes) and a sequence
 * number (4 bytes), all big-endian. The ids RocketMQ 5 clients generate have this form, so one
 * parser serves ids from clients and ids we generate.
 */
import { Clock, Context, Effect, Layer, Random, Schema } from "effect"

/** The only message id version RocketMQ 5 defines. */
export const version = 1

/** The time field's epoch: 2021-01-01T00:00:00Z, in milliseconds since the Unix epoch. */
export const epochMillis = 1_609_459_200_000

const textLength = 34
const upperHex = /^[0-9A-F]*$/

/**
 * The fields of a message id.
 *
 * **Details**
 *
 * `pid`, `secondsSinceEpoch` and `sequence` are unsigned: `format` keeps their low 16, 32 and 32
 * bits, as RocketMQ's Java client does when it writes them.
 */
export interface MessageIdParts {
  readonly mac: Uint8Array
  readonly pid: number
  readonly secondsSinceEpoch: number
  readonly sequence: number
}

// Lower-case hex is refused rather than normalised: ids are compared as strings (deduplication,
// lookups, recall), so accepting both cases would give one message two ids. Every RocketMQ 5
// client writes upper case.
const messageIdProblem = (text: string): string | undefined => {
  if (text.trim().length === 0) return "is blank"
  if (text.length !== textLength) return `has ${text.length} characters, a message id has ${textLength}`
  if (!upperHex.test(text)) return "is not upper-case hexadecimal"
  const found = parseInt(text.slice(0, 2), 16)
  return found === version ? undefined : `has version ${found}, only version ${version} is known`
}

/** A well-formed message id: 34 upper-case hex characters of version 1. */
export const MessageId = Schema.String.check(Schema.makeFilter(messageIdProblem, { expected: "a message id" })).pipe(
  Schema.brand("MessageId")
)

/** A message id decoded by {@link MessageId}, returned by {@link format} or {@link MessageIdGenerator}. */
export type MessageId = typeof MessageId.Type

/** A message id is blank or malformed (RocketMQ `ILLEGAL_MESSAGE_ID`). */
export class IllegalMessageId extends Schema.TaggedError<IllegalMessageId>()("IllegalMessageId", {
  messageId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `message id ${JSON.stringify(this.messageId)} ${this.reason}`
  }
}

/** The error a message id is, if it is not a valid one. */
export const check = (text: string): IllegalMessageId | undefined => {
  const reason = messageIdProblem(text)
  return reason === undefined ? undefined : new IllegalMessageId({ messageId: text, reason })
}

/** Checks a message id, failing with the reason it is not one. */
export const validate = (text: string): Effect.Effect<MessageId, IllegalMessageId> => {
  const reason = messageIdProblem(text)
  return reason === undefined
    ? Effect.succeed(text as MessageId)
    : Effect.fail(new IllegalMessageId({ messageId: text, reason }))
}

/** Reads the fields of a message id. */
export const parse = (text: string): Effect.Effect<MessageIdParts, IllegalMessageId> =>
  Effect.map(validate(text), (id) => ({
    mac: Uint8Array.from({ length: 6 }, (_, i) => parseInt(id.slice(2 + 2 * i, 4 + 2 * i), 16)),
    pid: parseInt(id.slice(14, 18), 16),
    secondsSinceEpoch: parseInt(id.slice(18, 26), 16),
    sequence: parseInt(id.slice(26, 34), 16)
  }))

const hex = (value: number, digits: number): string => value.toString(16).toUpperCase().padStart(digits, "0")

const prefix = (mac: Uint8Array, pid: number): string =>
  hex(version, 2) + Array.from(mac.subarray(0, 6), (byte) => hex(byte, 2)).join("") + hex(pid & 0xffff, 4)

const secondsSinceEpoch = (nowMillis: number): number => Math.floor((nowMillis - epochMillis) / 1000) >>> 0

/**
 * Writes a message id.
 *
 * **Gotchas**
 *
 * `mac` must hold 6 bytes; {@link MessageIdGenerator.layer} checks this once for generated ids.
 */
export const format = (parts: MessageIdParts): MessageId =>
  (prefix(parts.mac, parts.pid) + hex(parts.secondsSinceEpoch >>> 0, 8) + hex(parts.sequence >>> 0, 8)) as MessageId

/** What a producing host contributes to its message ids. */
export interface Host {
  /** A MAC address of the host, 6 bytes. */
  readonly mac: Uint8Array
  /** The process id; only its low 16 bits are used. */
  readonly pid: number
}

const make = (host: Host): Effect.Effect<MessageIdGenerator["Service"]> =>
  host.mac.length === 6
    ? Effect.sync(() => {
      const fixed = prefix(host.mac, host.pid)
      let sequence = 0
      return MessageIdGenerator.of({
        next: Effect.map(Clock.currentTimeMillis, (nowMillis) => {
          const id = fixed + hex(secondsSinceEpoch(nowMillis), 8) + hex(sequence, 8)
          sequence = (sequence + 1) >>> 0
          return id as MessageId
        })
      })
    })
    : Effect.die(new RangeError(`a MAC address has 6 bytes, got ${host.mac.length}`))

/**
 * Generates message ids for one host: its MAC and pid, the `Clock`'s time, and a sequence that
 * starts at 0 and wraps at 2^32.
 *
 * **Details**
 *
 * Ids are unique per generator while the sequence does not wrap within one second, i.e. below
 * 4 billion ids per second.
 */
export class MessageIdGenerator extends Context.Service<MessageIdGenerator, {
  /** The next id; its time field is the `Clock`'s current second. */
  readonly next: Effect.Effect<MessageId>
}>()("@strait/core/MessageIdGenerator") {
  /** A generator for a real host. Dies if the MAC is not 6 bytes. */
  static readonly layer = (host: Host): Layer.Layer<MessageIdGenerator> => Layer.effect(MessageIdGenerator, make(host))

  /**
   * A generator whose MAC and pid come from `Random`, for tests and simulations.
   *
   * **Details**
   *
   * Deterministic under a seeded `Random` (`Random.withSeed`, the simulator's seed).
   */
  static readonly layerTest: Layer.Layer<MessageIdGenerator> = Layer.effect(
    MessageIdGenerator,
    Effect.gen(function*() {
      const mac = new Uint8Array(6)
      for (let i = 0; i < mac.length; i++) mac[i] = yield* Random.nextIntBetween(0, 255)
      const pid = yield* Random.nextIntBetween(0, 0xffff)
      return yield* make({ mac, pid })
    })
  )
}
