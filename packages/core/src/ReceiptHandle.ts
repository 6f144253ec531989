/**
 * Receipt handles: what a consumer gets with each popped message and hands back to ack it or to
 * change its invisibility.
 *
 * The handle is opaque to clients and self-validating for brokers: a versioned binary record of
 * where the message is and when its invisibility ends, sealed with an HMAC under a cluster-wide key
 * and written as base64url text. A broker trusts a handle that decodes, without looking it up.
 *
 * Layout, big-endian: `u8 version (1) | u8 n | n bytes broker name (UTF-8) | u8 m | m bytes topic |
 * u32 queue id | u64 queue offset | u64 pop time | u64 invisible until | u32 fencing epoch |
 * u32 delivery attempt | 16 bytes HMAC-SHA256 of everything before it, truncated`.
 */
import { Buffer, isUtf8 } from "node:buffer"
import { timingSafeEqual } from "node:crypto"
import { Clock, Context, Effect, Exit, Redacted, Schema } from "effect"
import * as HmacSha256 from "./internal/hmacSha256.ts"
import * as Topic from "./Topic.ts"

/** The layout version {@link encode} writes and {@link decode} reads. */
export const version = 1

const macBytes = 16
const fixedFieldBytes = 4 + 8 * 3 + 4 * 2
const maxNameBytes = 255
// Shorter input is malformed whatever its first byte: both names of one byte, the fixed fields, the MAC.
const minBytes = 1 + 2 * (1 + 1) + fixedFieldBytes + macBytes
// Both names at their longest, as base64url.
const maxTextLength = Math.ceil(((1 + 2 * (1 + maxNameBytes) + fixedFieldBytes + macBytes) * 4) / 3)

const BrokerName = Schema.String.check(
  Schema.makeFilter(
    (name: string) => name.length > 0 && Buffer.byteLength(name, "utf8") <= maxNameBytes,
    { expected: `a broker name of 1 to ${maxNameBytes} UTF-8 bytes` }
  )
)

const Millis = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Uint32 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff_ffff }))

/**
 * The fields a receipt handle carries.
 *
 * **Details**
 *
 * `invisibleUntil` is when the message becomes visible again, in milliseconds since the Unix
 * epoch; `fencingEpoch` is the epoch of the partition lease the issuing broker held, so a handle
 * from a deposed owner can be told apart.
 */
export class ReceiptHandle extends Schema.Class<ReceiptHandle>("@strait/core/ReceiptHandle")({
  brokerName: BrokerName,
  topic: Topic.TopicName,
  queueId: Topic.QueueId,
  queueOffset: Topic.Offset,
  popTime: Millis,
  invisibleUntil: Millis,
  fencingEpoch: Uint32,
  deliveryAttempt: Uint32.check(Schema.isGreaterThanOrEqualTo(1))
}) {}

const developmentKey = Redacted.make(new TextEncoder().encode("strait development receipt handle key"))

/**
 * The secret that seals receipt handles.
 *
 * **Gotchas**
 *
 * The default is a development key known to everyone. A cluster must configure one shared secret
 * on every proxy and broker, since a handle issued by one node is redeemed at another. Changing
 * the key invalidates every outstanding handle: those messages are redelivered after their window.
 */
export const ReceiptHandleKey = Context.Reference<Redacted.Redacted<Uint8Array>>("@strait/core/ReceiptHandleKey", {
  defaultValue: () => developmentKey
})

/** A receipt handle does not decode: it is `malformed`, of an `unsupported-version`, or `tampered` with (RocketMQ `INVALID_RECEIPT_HANDLE`). */
export class InvalidReceiptHandle extends Schema.TaggedError<InvalidReceiptHandle>()("InvalidReceiptHandle", {
  reason: Schema.Literals(["malformed", "unsupported-version", "tampered"])
}) {
  override get message() {
    return `receipt handle is invalid: ${this.reason}`
  }
}

/** A receipt handle's invisibility window has ended (RocketMQ `INVALID_RECEIPT_HANDLE`). */
export class ReceiptHandleExpired extends Schema.TaggedError<ReceiptHandleExpired>()("ReceiptHandleExpired", {
  invisibleUntil: Schema.Int,
  now: Schema.Int
}) {
  override get message() {
    return `receipt handle expired ${this.now - this.invisibleUntil} ms ago`
  }
}

// The seal: HMAC-SHA256 truncated to `macBytes`, with one sealer per configured key (the key's
// padded blocks hashed once). Computed in plain code: `createHmac` cost about 3 µs a handle, and a
// broker seals a handle for every message it gives.
const sealers = new WeakMap<Redacted.Redacted<Uint8Array>, ReturnType<typeof HmacSha256.make>>()
const sealInto = (key: Redacted.Redacted<Uint8Array>, body: Uint8Array, out: Uint8Array, at: number): void => {
  let sealer = sealers.get(key)
  if (sealer === undefined) sealers.set(key, sealer = HmacSha256.make(Redacted.value(key)))
  sealer(body, out, at, macBytes)
}
const expectedMac = new Uint8Array(macBytes)

const writeUint64 = (view: DataView, offset: number, value: number): void => {
  view.setUint32(offset, Math.floor(value / 2 ** 32))
  view.setUint32(offset + 4, value >>> 0)
}

const readUint64 = (view: DataView, offset: number): number =>
  view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4)

/**
 * Seals a receipt handle into its text form with the {@link ReceiptHandleKey}.
 *
 * **Details**
 *
 * Takes the fields as they are, unchecked: a broker issuing handles from its own state seals them
 * without building a `ReceiptHandle` (whose checks would run on every message it delivers).
 */
export const encode = (handle: HandleFields): Effect.Effect<string> => ReceiptHandleKey.useSync((key) => encodeWith(key, handle))

/** The fields of a handle, as a plain object. */
export type HandleFields = { readonly [K in keyof ReceiptHandle]: ReceiptHandle[K] }

// Handles are built in one scratch buffer (grown for long names): only their text is new.
let scratch = Buffer.allocUnsafeSlow(512)
let scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length)

/** {@link encode} with the key given: synchronous, for loops over many messages. */
export const encodeWith = (key: Redacted.Redacted<Uint8Array>, handle: HandleFields): string => {
  const brokerNameLength = Buffer.byteLength(handle.brokerName, "utf8")
  const topicLength = handle.topic.length // latin1: a byte a character
  const total = 2 + brokerNameLength + 1 + topicLength + fixedFieldBytes + macBytes
  if (total > scratch.length) {
    scratch = Buffer.allocUnsafeSlow(total)
    scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length)
  }
  const bytes = scratch
  const view = scratchView
  let at = 0
  bytes[at++] = version
  bytes[at++] = brokerNameLength
  at += bytes.write(handle.brokerName, at, brokerNameLength, "utf8")
  bytes[at++] = topicLength
  at += bytes.write(handle.topic, at, topicLength, "latin1")
  view.setUint32(at, handle.queueId)
  writeUint64(view, at + 4, handle.queueOffset)
  writeUint64(view, at + 12, handle.popTime)
  writeUint64(view, at + 20, handle.invisibleUntil)
  view.setUint32(at + 28, handle.fencingEpoch)
  view.setUint32(at + 32, handle.deliveryAttempt)
  at += fixedFieldBytes
  sealInto(key, bytes.subarray(0, at), bytes, at)
  return bytes.toString("base64url", 0, total)
}

const malformed = () => new InvalidReceiptHandle({ reason: "malformed" })
const decodeFields = Schema.decodeUnknownExit(ReceiptHandle)

/**
 * Opens a receipt handle, checking its form, version and seal.
 *
 * **Details**
 *
 * A handle that decodes may still have expired; see {@link checkNotExpired}.
 */
export const decode = (text: string): Effect.Effect<ReceiptHandle, InvalidReceiptHandle> =>
  ReceiptHandleKey.use((key) => {
    const opened = decodeWith(key, text)
    return opened instanceof InvalidReceiptHandle ? Effect.fail(opened) : Effect.succeed(opened)
  })

// Where the parts of a handle's first `length` bytes are: the names' lengths and where the sealed
// bytes end, or `undefined` when the lengths do not add up to `length`.
const layoutOf = (bytes: Uint8Array, length = bytes.length) => {
  const brokerNameLength = bytes[1] ?? 0
  const topicLength = bytes[2 + brokerNameLength] ?? 0
  const sealed = 2 + brokerNameLength + 1 + topicLength + fixedFieldBytes
  return length === sealed + macBytes ? { brokerNameLength, topicLength, sealed, fields: sealed - fixedFieldBytes } : undefined
}

// Handles read without their seal (one for every acknowledgement) decode into this buffer rather
// than into a Buffer of their own.
const peekBytes = Buffer.allocUnsafeSlow(Math.ceil((maxTextLength * 3) / 4))
const peekView = new DataView(peekBytes.buffer, peekBytes.byteOffset, peekBytes.byteLength)

// The text's bytes into `peekBytes`, and where their parts are; `undefined` for text that is no handle.
const peekLayout = (text: string) => {
  if (text.length === 0 || text.length > maxTextLength) return undefined
  const length = peekBytes.write(text, "base64url")
  return length < minBytes || peekBytes[0] !== version ? undefined : layoutOf(peekBytes, length)
}

/**
 * Where a handle says its message is, read without checking its seal: only for finding the message
 * whose issued handle the text can then be compared with. `undefined` for text that is no handle.
 */
export const peek = (
  text: string
): { readonly brokerName: string; readonly topic: string; readonly queueId: number; readonly queueOffset: number } | undefined => {
  const layout = peekLayout(text)
  if (layout === undefined) return undefined
  return {
    brokerName: peekBytes.toString("utf8", 2, 2 + layout.brokerNameLength),
    topic: peekBytes.toString("latin1", layout.fields - layout.topicLength, layout.fields),
    queueId: peekView.getUint32(layout.fields),
    queueOffset: readUint64(peekView, layout.fields + 4)
  }
}

/**
 * {@link peek}'s queue and offset alone, with no names decoded: what a broker needs to find the
 * message of a handle it is given back.
 */
export const placeOf = (text: string): { readonly queueId: number; readonly queueOffset: number } | undefined => {
  const layout = peekLayout(text)
  return layout === undefined
    ? undefined
    : { queueId: peekView.getUint32(layout.fields), queueOffset: readUint64(peekView, layout.fields + 4) }
}

/** {@link decode} with the key given: synchronous, returning the error instead of failing. */
export const decodeWith = (key: Redacted.Redacted<Uint8Array>, text: string): ReceiptHandle | InvalidReceiptHandle => {
  if (text.length === 0 || text.length > maxTextLength) return malformed()
  const bytes = Buffer.from(text, "base64url")
  // Node skips characters outside the alphabet and ignores spare bits, so only the canonical text is accepted.
  if (bytes.length < minBytes || bytes.toString("base64url") !== text) return malformed()
  if (bytes[0] !== version) {
    return new InvalidReceiptHandle({ reason: "unsupported-version" })
  }
  const layout = layoutOf(bytes)
  if (layout === undefined) return malformed()
  const { brokerNameLength, sealed, topicLength } = layout
  sealInto(key, bytes.subarray(0, sealed), expectedMac, 0)
  if (!timingSafeEqual(expectedMac, bytes.subarray(sealed))) {
    return new InvalidReceiptHandle({ reason: "tampered" })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const at = layout.fields
  const brokerName = bytes.subarray(2, 2 + brokerNameLength)
  if (!isUtf8(brokerName)) return malformed()
  const fields = {
    brokerName: brokerName.toString("utf8"),
    topic: bytes.subarray(3 + brokerNameLength, at).toString("latin1"),
    queueId: view.getUint32(at),
    queueOffset: readUint64(view, at + 4),
    popTime: readUint64(view, at + 12),
    invisibleUntil: readUint64(view, at + 20),
    fencingEpoch: view.getUint32(at + 28),
    deliveryAttempt: view.getUint32(at + 32)
  }
  // The seal held, so a key holder wrote these fields. The common case (numbers a broker issues)
  // is checked directly; anything else goes through the class's full checks.
  if (
    brokerNameLength > 0 && topicLength > 0 && fields.deliveryAttempt >= 1 && Number.isSafeInteger(fields.queueOffset) &&
    Number.isSafeInteger(fields.popTime) && Number.isSafeInteger(fields.invisibleUntil) && Topic.isTopicName(fields.topic)
  ) {
    return Object.assign(Object.create(ReceiptHandle.prototype) as ReceiptHandle, fields)
  }
  const checked = decodeFields(fields)
  return Exit.isSuccess(checked) ? checked.value : malformed()
}

/**
 * Fails if the handle's invisibility window has ended by the `Clock`'s time.
 *
 * **Details**
 *
 * At exactly `invisibleUntil` the handle is expired: from that millisecond the message is visible
 * again and may already be in another consumer's hands.
 */
export const checkNotExpired = (handle: ReceiptHandle): Effect.Effect<ReceiptHandle, ReceiptHandleExpired> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now >= handle.invisibleUntil
      ? Effect.fail(new ReceiptHandleExpired({ invisibleUntil: handle.invisibleUntil, now }))
      : Effect.succeed(handle))
