/**
 * Byte-level reading and writing for the protocols' hot messages (the ones every message crosses:
 * produce, receive, acknowledge), written by hand rather than derived from their Schemas: these run
 * per message, and the derived codec's generic walk costs several microseconds per element. Little
 * endian; strings and byte strings carry a u32 length.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { Effect, Schema } from "effect"
import { SchemaBinary } from "effect/encoding"
import * as Bytes from "./Bytes.ts"

/**
 * A payload that is not what its kind byte says: truncated, or lengths beyond its end.
 *
 * @since 0.1.0
 */
export class Malformed extends Error {
  override readonly name = "Malformed"
}

// a Buffer (for its string writes) over bytes from a slab
const bufferOf = (length: number) => {
  const bytes = Bytes.allocUnsafe(length)
  return Buffer.from(bytes.buffer, bytes.byteOffset, length)
}

/**
 * Appends to a growing buffer.
 *
 * @since 0.1.0
 */
export class Writer {
  #bytes: Buffer
  #view: DataView
  #at = 0

  constructor(capacity = 256) {
    this.#bytes = bufferOf(capacity)
    this.#view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length)
  }

  #room(count: number) {
    if (this.#at + count <= this.#bytes.length) return
    const grown = bufferOf(Math.max(this.#bytes.length * 2, this.#at + count))
    grown.set(this.#bytes.subarray(0, this.#at))
    this.#bytes = grown
    this.#view = new DataView(grown.buffer, grown.byteOffset, grown.length)
  }

  u8(value: number) {
    this.#room(1)
    this.#bytes[this.#at++] = value
    return this
  }

  u32(value: number) {
    this.#room(4)
    this.#view.setUint32(this.#at, value, true)
    this.#at += 4
    return this
  }

  f64(value: number) {
    this.#room(8)
    this.#view.setFloat64(this.#at, value, true)
    this.#at += 8
    return this
  }

  bytes(value: Uint8Array) {
    this.u32(value.length)
    this.#room(value.length)
    this.#bytes.set(value, this.#at)
    this.#at += value.length
    return this
  }

  string(value: string) {
    // at most 3 bytes per UTF-16 unit; the length is written once the bytes are
    this.#room(4 + value.length * 3)
    const written = this.#bytes.write(value, this.#at + 4, "utf8")
    this.#view.setUint32(this.#at, written, true)
    this.#at += 4 + written
    return this
  }

  /** A string that may be absent (a presence byte first). */
  optionalString(value: string | undefined) {
    return value === undefined ? this.u8(0) : this.u8(1).string(value)
  }

  done(): Uint8Array {
    // a plain Uint8Array view, whatever Buffer pool the bytes came from
    return new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#at)
  }
}

/**
 * Reads what a `Writer` wrote; every read past the end throws `Malformed`.
 *
 * @since 0.1.0
 */
export class Reader {
  readonly #bytes: Buffer
  readonly #view: DataView
  #at: number

  constructor(bytes: Uint8Array, at = 0) {
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.#at = at
  }

  #need(count: number) {
    if (this.#at + count > this.#bytes.length) throw new Malformed(`the payload ends ${this.#at + count - this.#bytes.length} bytes early`)
  }

  u8() {
    this.#need(1)
    return this.#bytes[this.#at++]!
  }

  u32() {
    this.#need(4)
    const value = this.#view.getUint32(this.#at, true)
    this.#at += 4
    return value
  }

  f64() {
    this.#need(8)
    const value = this.#view.getFloat64(this.#at, true)
    this.#at += 8
    return value
  }

  /** A count of items each at least `minBytes` long: a count the rest of the payload cannot hold is malformed. */
  count(minBytes: number) {
    const count = this.u32()
    if (count * minBytes > this.#bytes.length - this.#at) throw new Malformed(`a count of ${count} does not fit the payload`)
    return count
  }

  bytes() {
    const length = this.u32()
    this.#need(length)
    const value = new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset + this.#at, length)
    this.#at += length
    return value
  }

  string() {
    const length = this.u32()
    this.#need(length)
    const value = this.#bytes.toString("utf8", this.#at, this.#at + length)
    this.#at += length
    return value
  }

  /** What `Writer.optionalString` wrote. */
  optionalString(): string | undefined {
    return this.u8() === 1 ? this.string() : undefined
  }

  end() {
    if (this.#at !== this.#bytes.length) throw new Malformed(`${this.#bytes.length - this.#at} bytes after the message`)
  }
}

/**
 * A safe integer, or malformed.
 *
 * @since 0.1.0
 */
export const safeInteger = (value: number) => {
  if (!Number.isSafeInteger(value)) throw new Malformed(`${value} is not a safe integer`)
  return value
}

/**
 * Runs a hand-written decoder: what it reads, or `Malformed` for whatever it throws.
 *
 * @since 0.1.0
 */
export const decodeWith = <A>(read: () => A): Effect.Effect<A, Malformed> => {
  try {
    return Effect.succeed(read())
  } catch (error) {
    return Effect.fail(error instanceof Malformed ? error : new Malformed(error instanceof Error ? error.message : String(error)))
  }
}

/**
 * Decodes a hand-written form: `read` gets a reader past the form byte, and the payload must end
 * where it stops reading.
 *
 * @since 0.1.0
 */
export const decodeForm = <A>(bytes: Uint8Array, read: (reader: Reader) => A): Effect.Effect<A, Malformed> =>
  decodeWith(() => {
    const reader = new Reader(bytes, 1)
    const value = read(reader)
    reader.end()
    return value
  })

/**
 * Decodes a payload by its form byte: form 0 by `schema` (the schema-derived encoding of the rest),
 * the others by the hand-written readers of `forms`; an empty payload or an unknown form is
 * `Malformed`. `what` names the payload in errors ("request", "response").
 *
 * @since 0.1.0
 */
export const decodeByForm = <A, E>(
  what: string,
  bytes: Uint8Array,
  schema: (body: Uint8Array) => Effect.Effect<A, E>,
  forms: { readonly [form: number]: (reader: Reader) => A }
): Effect.Effect<A, E | Malformed> => {
  if (bytes.length === 0) return Effect.fail(new Malformed(`an empty ${what}`))
  if (bytes[0] === 0) return schema(bytes.subarray(1))
  const read = forms[bytes[0]!]
  return read === undefined ? Effect.fail(new Malformed(`unknown ${what} form ${bytes[0]}`)) : decodeForm(bytes, read)
}

/**
 * The schema-derived binary encoding (`SchemaBinary`) of `schema`, for a protocol's cases that are
 * not written by hand: `encodeForm` puts the bytes behind form 0, `decode` reads bytes (after the
 * form byte) as an Effect, `encode` and `decodeSync` (which throws) nest a value inside a
 * hand-written layout (an error in a refusal).
 *
 * @since 0.1.0
 */
export const schemaCodec = <S extends Schema.Constraint & { readonly DecodingServices: never; readonly EncodingServices: never }>(schema: S): SchemaCodec<S["Type"]> => {
  const codec = SchemaBinary.toCodec(schema)
  // the derived codec's types, stated: its Type is the schema's, its Encoded bytes
  const encode = Schema.encodeSync(codec) as (value: S["Type"]) => Uint8Array
  return {
    encode,
    encodeForm: (value) => withForm(0, encode(value)),
    decode: Schema.decodeUnknownEffect(codec) as (bytes: Uint8Array) => Effect.Effect<S["Type"], Schema.SchemaError>,
    decodeSync: Schema.decodeUnknownSync(codec) as (bytes: Uint8Array) => S["Type"]
  }
}

/**
 * What {@link schemaCodec} gives.
 *
 * @since 0.1.0
 */
export interface SchemaCodec<A> {
  readonly encode: (value: A) => Uint8Array
  readonly encodeForm: (value: A) => Uint8Array
  readonly decode: (bytes: Uint8Array) => Effect.Effect<A, Schema.SchemaError>
  readonly decodeSync: (bytes: Uint8Array) => A
}

/**
 * `body` behind a one-byte form.
 *
 * @since 0.1.0
 */
export const withForm = (form: number, body: Uint8Array): Uint8Array => {
  const bytes = Bytes.allocUnsafe(1 + body.length)
  bytes[0] = form
  bytes.set(body, 1)
  return bytes
}

/**
 * Messages given to a consumer: each one's receipt handle and the time it stays invisible until,
 * then the messages as one `MessageBatch`.
 *
 * @since 0.1.0
 */
export interface Delivery {
  readonly handles: ReadonlyArray<{ readonly receiptHandle: string; readonly invisibleUntil: number }>
  readonly messages: Uint8Array
}

/**
 * Writes a delivery behind `form`.
 *
 * @since 0.1.0
 */
export const writeDelivery = (form: number, delivery: Delivery): Uint8Array => {
  const writer = new Writer(64 + delivery.handles.length * 140 + delivery.messages.length).u8(form).u32(delivery.handles.length)
  for (const { invisibleUntil, receiptHandle } of delivery.handles) writer.string(receiptHandle).f64(invisibleUntil)
  return writer.bytes(delivery.messages).done()
}

/**
 * Reads what `writeDelivery` wrote (past its form byte).
 *
 * @since 0.1.0
 */
export const readDelivery = (reader: Reader) => {
  const handles = Array.from({ length: reader.count(12) }, () => ({ receiptHandle: reader.string(), invisibleUntil: safeInteger(reader.f64()) }))
  return { handles, messages: reader.bytes() }
}

/**
 * A poll for the messages of one consumer group on one topic, as the client's `Receive` and the
 * broker's `Pop` carry it (each protocol says which of the optional fields it needs).
 *
 * @since 0.1.0
 */
export interface Poll {
  readonly group: string
  readonly topic: string
  readonly maxMessages: number
  readonly invisibleMillis?: number
  readonly pollMillis?: number
  readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
  readonly attemptId?: string
}

// which optional fields of a poll follow its fixed ones
const PollInvisible = 1
const PollWait = 2
const PollFilter = 4
const PollAttempt = 8

/**
 * Writes a poll behind `form`.
 *
 * @since 0.1.0
 */
export const writePoll = (form: number, poll: Poll): Uint8Array => {
  const flags = (poll.invisibleMillis === undefined ? 0 : PollInvisible) | (poll.pollMillis === undefined ? 0 : PollWait) |
    (poll.filter === undefined ? 0 : PollFilter) | (poll.attemptId === undefined ? 0 : PollAttempt)
  const writer = new Writer(96 + (poll.filter?.expression.length ?? 0) * 3).u8(form).string(poll.group).string(poll.topic).f64(poll.maxMessages).u8(flags)
  if (poll.invisibleMillis !== undefined) writer.f64(poll.invisibleMillis)
  if (poll.pollMillis !== undefined) writer.f64(poll.pollMillis)
  if (poll.filter !== undefined) writer.u8(poll.filter.type === "TAG" ? 0 : 1).string(poll.filter.expression)
  if (poll.attemptId !== undefined) writer.string(poll.attemptId)
  return writer.done()
}

/**
 * Reads what `writePoll` wrote (past its form byte): `maxMessages` must be an integer.
 *
 * @since 0.1.0
 */
export const readPoll = (reader: Reader): Poll => {
  const group = reader.string()
  const topic = reader.string()
  const maxMessages = reader.f64()
  if (!Number.isSafeInteger(maxMessages)) throw new Malformed(`maxMessages is not an integer: ${maxMessages}`)
  const flags = reader.u8()
  if (flags > (PollInvisible | PollWait | PollFilter | PollAttempt)) throw new Malformed(`unknown poll flags ${flags}`)
  const invisibleMillis = (flags & PollInvisible) === 0 ? undefined : reader.f64()
  const pollMillis = (flags & PollWait) === 0 ? undefined : reader.f64()
  let filter: Poll["filter"]
  if ((flags & PollFilter) !== 0) {
    const type = reader.u8()
    if (type > 1) throw new Malformed(`unknown filter type ${type}`)
    filter = { type: type === 0 ? "TAG" : "SQL92", expression: reader.string() }
  }
  const attemptId = (flags & PollAttempt) === 0 ? undefined : reader.string()
  return {
    group,
    topic,
    maxMessages,
    ...(invisibleMillis === undefined ? {} : { invisibleMillis }),
    ...(pollMillis === undefined ? {} : { pollMillis }),
    ...(filter === undefined ? {} : { filter }),
    ...(attemptId === undefined ? {} : { attemptId })
  }
}

/**
 * Acknowledgements of one consumer group on one topic: their receipt handles.
 *
 * @since 0.1.0
 */
export interface Acknowledgement {
  readonly group: string
  readonly topic: string
  readonly receiptHandles: ReadonlyArray<string>
}

/**
 * Writes acknowledgements behind `form`.
 *
 * @since 0.1.0
 */
export const writeAcknowledgement = (form: number, ack: Acknowledgement): Uint8Array => {
  const writer = new Writer(64 + ack.receiptHandles.length * 128).u8(form).string(ack.group).string(ack.topic).u32(ack.receiptHandles.length)
  for (const handle of ack.receiptHandles) writer.string(handle)
  return writer.done()
}

/**
 * Reads what `writeAcknowledgement` wrote (past its form byte).
 *
 * @since 0.1.0
 */
export const readAcknowledgement = (reader: Reader) => {
  const group = reader.string()
  const topic = reader.string()
  return { group, topic, receiptHandles: Array.from({ length: reader.count(4) }, () => reader.string()) }
}

/**
 * Writes, behind `form`, the items of a request that failed (an acknowledgement's refusals), each
 * by its index and its error in the caller's encoding.
 *
 * @since 0.1.0
 */
export const writeFailures = <E>(form: number, failures: ReadonlyArray<{ readonly index: number; readonly error: E }>, encode: (error: E) => Uint8Array): Uint8Array => {
  const writer = new Writer(64).u8(form).u32(failures.length)
  for (const { error, index } of failures) writer.u32(index).bytes(encode(error))
  return writer.done()
}

/**
 * Reads what `writeFailures` wrote (past its form byte).
 *
 * @since 0.1.0
 */
export const readFailures = <E>(reader: Reader, decode: (bytes: Uint8Array) => E) =>
  Array.from({ length: reader.count(8) }, () => ({ index: reader.u32(), error: decode(reader.bytes()) }))
