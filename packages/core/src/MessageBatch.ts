/**
 * The binary codec for batches of messages: what a produce request carries and what a fetch or a pop
 * returns, inside a data-plane frame.
 *
 * **Layout** (version 1, little-endian)
 *
 * ```
 * header   u8 version | u8 kind (0 messages, 1 stored messages) | u32 count | u32 tableBytes | u32 heapBytes
 * table    per message, in order:
 *            u8 flags            bit 0 tag, 1 messageGroup, 2 deliveryTimestamp, 3 priority, 4 ttlMillis,
 *                                5 traceContext; bits 6 and 7 are 0
 *            f64 bornTimestamp, then f64 deliveryTimestamp, priority, ttlMillis (each only when flagged)
 *            stored only: f64 queueOffset | f64 storeTimestamp | u32 queueId | u32 deliveryAttempt
 *            varint bodyBytes | varint keyCount | varint propertyCount
 *            varint UTF-8 length of each string, in field order: topic, [tag], keys…,
 *                   (property key, property value)…, [messageGroup], bornHost, [traceContext], messageId
 * heap     every string of the batch, UTF-8, back to back in table order (`heapBytes` long)
 * bodies   every body, back to back in message order, up to the end of the input
 * ```
 *
 * Varints are LEB128 of at most 32 bits; numbers are f64 so that every safe integer fits.
 *
 * The strings of a batch sit together, away from the bodies, so that {@link decode} turns all of them
 * into one JavaScript string with a single UTF-8 decode and cuts each field out of it: one native call
 * per batch instead of one per field, which is most of what a generic codec spends on a message. The
 * encoder mirrors it with one native UTF-8 write per batch when the strings are ASCII, which topics,
 * tags, keys, hosts and ids almost always are.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { Data, Result } from "effect"
import { Message, StoredMessage } from "./Message.ts"

/**
 * The layout version {@link encode} writes, and the only one {@link decode} reads.
 *
 * @since 0.1.0
 */
export const Version = 1

/**
 * The bytes are not a message batch this codec reads; `offset` is where in the input the problem was
 * found.
 *
 * @since 0.1.0
 */
export class MalformedMessageBatch extends Data.TaggedError("MalformedMessageBatch")<{
  readonly reason: string
  readonly offset: number
}> {
  override get message() {
    return `malformed message batch at byte ${this.offset}: ${this.reason}`
  }
}

// --- layout ---------------------------------------------------------------------------------------

const HeaderBytes = 14
const KindMessages = 0
const KindStoredMessages = 1

const HasTag = 1
const HasMessageGroup = 2
const HasDeliveryTimestamp = 4
const HasPriority = 8
const HasTtl = 16
const HasTraceContext = 32
const KnownFlags = 63

// flags and bornTimestamp; a stored message adds queueOffset, storeTimestamp, queueId, deliveryAttempt
const MessageFixedBytes = 9
const StoredFixedBytes = MessageFixedBytes + 24
// the fixed part, three one-byte varints (body, key and property counts) and the lengths of topic,
// bornHost and messageId: no message takes fewer table bytes, so a count above tableBytes / this lies
const MessageMinTableBytes = MessageFixedBytes + 6
const StoredMinTableBytes = StoredFixedBytes + 6

const maxU32 = 0xffff_ffff
const maxQueueId = 2 ** 31 - 1

const varintBytes = (value: number): number =>
  value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x20_0000 ? 3 : value < 0x1000_0000 ? 4 : 5

const writeVarint = (bytes: Uint8Array, offset: number, value: number): number => {
  while (value >= 0x80) {
    bytes[offset++] = (value & 0x7f) | 0x80
    // division, not >>>, so values up to 2^32 - 1 stay exact
    value = Math.floor(value / 128)
  }
  bytes[offset++] = value
  return offset
}

const writeUint32 = (bytes: Uint8Array, offset: number, value: number): void => {
  bytes[offset] = value
  bytes[offset + 1] = value >>> 8
  bytes[offset + 2] = value >>> 16
  bytes[offset + 3] = value >>> 24
}

const readUint32 = (bytes: Uint8Array, offset: number): number =>
  (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0

// Numbers go through one shared f64 instead of a DataView: creating a DataView per batch costs more
// than the rest of the header. The platform's byte order decides which end comes first.
const float64 = new Float64Array(1)
const float64Bytes = new Uint8Array(float64.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const writeFloat64 = (bytes: Uint8Array, offset: number, value: number): void => {
  float64[0] = value
  const f = float64Bytes
  if (littleEndian) {
    bytes[offset] = f[0]!
    bytes[offset + 1] = f[1]!
    bytes[offset + 2] = f[2]!
    bytes[offset + 3] = f[3]!
    bytes[offset + 4] = f[4]!
    bytes[offset + 5] = f[5]!
    bytes[offset + 6] = f[6]!
    bytes[offset + 7] = f[7]!
  } else {
    for (let i = 0; i < 8; i++) bytes[offset + i] = f[7 - i]!
  }
}

const readFloat64 = (bytes: Uint8Array, offset: number): number => {
  const f = float64Bytes
  if (littleEndian) {
    f[0] = bytes[offset]!
    f[1] = bytes[offset + 1]!
    f[2] = bytes[offset + 2]!
    f[3] = bytes[offset + 3]!
    f[4] = bytes[offset + 4]!
    f[5] = bytes[offset + 5]!
    f[6] = bytes[offset + 6]!
    f[7] = bytes[offset + 7]!
  } else {
    for (let i = 0; i < 8; i++) f[7 - i] = bytes[offset + i]!
  }
  return float64[0]!
}

// What TextEncoder writes for a string: lone surrogates become U+FFFD (3 bytes), pairs take 4.
const utf8Length = (text: string): number => {
  let bytes = 0
  const length = text.length
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

// --- encode ---------------------------------------------------------------------------------------

const isSafeInteger = Number.isSafeInteger

const assertEncodable = (message: Message, stored: boolean): void => {
  // A number the decoder would reject must fail here, loudly, not produce a batch nobody can read.
  const fail = (field: string, value: unknown, expected: string) => {
    throw new RangeError(`message ${message.messageId}: ${field} ${String(value)} is not ${expected}`)
  }
  if (!isSafeInteger(message.bornTimestamp)) fail("bornTimestamp", message.bornTimestamp, "a safe integer")
  const { deliveryTimestamp, priority, ttlMillis } = message
  if (deliveryTimestamp !== undefined && !isSafeInteger(deliveryTimestamp)) {
    fail("deliveryTimestamp", deliveryTimestamp, "a safe integer")
  }
  if (priority !== undefined && !isSafeInteger(priority)) fail("priority", priority, "a safe integer")
  if (ttlMillis !== undefined && !isSafeInteger(ttlMillis)) fail("ttlMillis", ttlMillis, "a safe integer")
  if (message.body.length > maxU32) fail("body length", message.body.length, "below 2^32")
  if (!stored) return
  const { queueId, queueOffset, storeTimestamp, deliveryAttempt } = message as StoredMessage
  if (!(isSafeInteger(queueId) && queueId >= 0 && queueId <= maxQueueId)) fail("queueId", queueId, "a queue id")
  if (!(isSafeInteger(queueOffset) && queueOffset >= 0)) fail("queueOffset", queueOffset, "an offset")
  if (!isSafeInteger(storeTimestamp)) fail("storeTimestamp", storeTimestamp, "a safe integer")
  if (!(isSafeInteger(deliveryAttempt) && deliveryAttempt >= 1 && deliveryAttempt <= maxU32)) {
    fail("deliveryAttempt", deliveryAttempt, "between 1 and 2^32 - 1")
  }
}

const utf8Encoder = new TextEncoder()

// The strings of a batch are written here first: one native call both measures them and, when they
// are ASCII, produces their bytes, which are then copied into the batch. Batches with more string
// characters than it holds measure with Buffer.byteLength instead, so it never grows.
const heapScratch = Buffer.allocUnsafeSlow(64 * 1024)

// Batches up to a quarter of a slab are carved out of a shared slab, as Node's Buffer pool does, so
// that a small batch costs no allocation of its own. Slabs and large batches are not zero-filled:
// every byte handed out is written first.
const slabBytes = 64 * 1024
const maxSlabbedBytes = slabBytes / 4
let slab = Buffer.allocUnsafeSlow(slabBytes)
let slabUsed = 0

const encodeBatch = (messages: ReadonlyArray<Message>, stored: boolean): Uint8Array => {
  const count = messages.length
  // First pass: the exact size. Every string goes into `heap` in table order, and the table is
  // sized as if all were ASCII (one byte per character), which is corrected below if they are not.
  let heap = ""
  const propertyCounts: Array<number> = []
  let tableBytes = 0
  let lengthPrefixBytes = 0
  let bodyBytes = 0
  for (let i = 0; i < count; i++) {
    const message = messages[i]!
    assertEncodable(message, stored)
    let fixedBytes = stored ? StoredFixedBytes : MessageFixedBytes
    if (message.deliveryTimestamp !== undefined) fixedBytes += 8
    if (message.priority !== undefined) fixedBytes += 8
    if (message.ttlMillis !== undefined) fixedBytes += 8
    const topic = message.topic
    heap += topic
    lengthPrefixBytes += varintBytes(topic.length)
    const tag = message.tag
    if (tag !== undefined) {
      heap += tag
      lengthPrefixBytes += varintBytes(tag.length)
    }
    const keys = message.keys
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!
      heap += key
      lengthPrefixBytes += varintBytes(key.length)
    }
    const properties = message.userProperties
    const propertyKeys = Object.keys(properties)
    for (let p = 0; p < propertyKeys.length; p++) {
      const key = propertyKeys[p]!
      const value = properties[key]!
      heap += key
      heap += value
      lengthPrefixBytes += varintBytes(key.length) + varintBytes(value.length)
    }
    const messageGroup = message.messageGroup
    if (messageGroup !== undefined) {
      heap += messageGroup
      lengthPrefixBytes += varintBytes(messageGroup.length)
    }
    const bornHost = message.bornHost
    heap += bornHost
    lengthPrefixBytes += varintBytes(bornHost.length)
    const traceContext = message.traceContext
    if (traceContext !== undefined) {
      heap += traceContext
      lengthPrefixBytes += varintBytes(traceContext.length)
    }
    const messageId = message.messageId
    heap += messageId
    lengthPrefixBytes += varintBytes(messageId.length)
    propertyCounts.push(propertyKeys.length)
    const bodyLength = message.body.length
    tableBytes += fixedBytes + varintBytes(bodyLength) + varintBytes(keys.length) + varintBytes(propertyKeys.length)
    bodyBytes += bodyLength
  }

  const heapUnits = heap.length
  // UTF-8 takes more bytes than UTF-16 code units as soon as one character is not ASCII.
  const inScratch = heapUnits <= heapScratch.length
  let ascii: boolean
  if (inScratch) {
    // Not ASCII: either the scratch ran out (read < heapUnits) or it holds more bytes than characters.
    const { read, written } = utf8Encoder.encodeInto(heap, heapScratch)
    ascii = read === heapUnits && written === heapUnits
  } else ascii = Buffer.byteLength(heap, "utf8") === heapUnits
  let heapBytes = heapUnits
  let byteLengths: Array<number> | undefined
  if (!ascii) {
    // Measured and later written string by string: a lone surrogate at the end of one string and
    // another at the start of the next would pair up in `heap`, but each string stands alone.
    byteLengths = []
    heapBytes = 0
    lengthPrefixBytes = 0
    forEachString(messages, (text) => {
      const length = utf8Length(text)
      byteLengths!.push(length)
      heapBytes += length
      lengthPrefixBytes += varintBytes(length)
    })
  }
  tableBytes += lengthPrefixBytes
  if (tableBytes > maxU32 || heapBytes > maxU32 || count > maxU32) {
    throw new RangeError(`a batch of ${count} messages with ${heapBytes} bytes of strings is too large to encode`)
  }

  const total = HeaderBytes + tableBytes + heapBytes + bodyBytes
  let out: Buffer
  let base: number
  if (total <= maxSlabbedBytes) {
    if (slabBytes - slabUsed < total) {
      slab = Buffer.allocUnsafeSlow(slabBytes)
      slabUsed = 0
    }
    out = slab
    base = slabUsed
    // The next batch starts 8-byte aligned, as Node's pool does.
    slabUsed = (slabUsed + total + 7) & ~7
  } else {
    out = Buffer.allocUnsafeSlow(total)
    base = 0
  }

  // Second pass: header, table, heap and bodies, every byte of [base, base + total).
  out[base] = Version
  out[base + 1] = stored ? KindStoredMessages : KindMessages
  writeUint32(out, base + 2, count)
  writeUint32(out, base + 6, tableBytes)
  writeUint32(out, base + 10, heapBytes)
  let offset = base + HeaderBytes
  const heapStart = offset + tableBytes
  let bodyOffset = heapStart + heapBytes
  let stringIndex = 0
  for (let i = 0; i < count; i++) {
    const message = messages[i]!
    const { deliveryTimestamp, priority, ttlMillis } = message
    const flags = (message.tag !== undefined ? HasTag : 0) |
      (message.messageGroup !== undefined ? HasMessageGroup : 0) |
      (deliveryTimestamp !== undefined ? HasDeliveryTimestamp : 0) |
      (priority !== undefined ? HasPriority : 0) |
      (ttlMillis !== undefined ? HasTtl : 0) |
      (message.traceContext !== undefined ? HasTraceContext : 0)
    out[offset] = flags
    writeFloat64(out, offset + 1, message.bornTimestamp)
    offset += MessageFixedBytes
    if (deliveryTimestamp !== undefined) {
      writeFloat64(out, offset, deliveryTimestamp)
      offset += 8
    }
    if (priority !== undefined) {
      writeFloat64(out, offset, priority)
      offset += 8
    }
    if (ttlMillis !== undefined) {
      writeFloat64(out, offset, ttlMillis)
      offset += 8
    }
    if (stored) {
      const storedMessage = message as StoredMessage
      writeFloat64(out, offset, storedMessage.queueOffset)
      writeFloat64(out, offset + 8, storedMessage.storeTimestamp)
      writeUint32(out, offset + 16, storedMessage.queueId)
      writeUint32(out, offset + 20, storedMessage.deliveryAttempt)
      offset += 24
    }
    const body = message.body
    const keys = message.keys
    const propertyCount = propertyCounts[i]!
    offset = writeVarint(out, offset, body.length)
    offset = writeVarint(out, offset, keys.length)
    offset = writeVarint(out, offset, propertyCount)
    if (byteLengths === undefined) {
      // ASCII: a string's length in bytes is its length in characters.
      offset = writeVarint(out, offset, message.topic.length)
      if (message.tag !== undefined) offset = writeVarint(out, offset, message.tag.length)
      for (let k = 0; k < keys.length; k++) offset = writeVarint(out, offset, keys[k]!.length)
      const properties = message.userProperties
      const propertyKeys = Object.keys(properties)
      for (let p = 0; p < propertyKeys.length; p++) {
        const key = propertyKeys[p]!
        offset = writeVarint(out, offset, key.length)
        offset = writeVarint(out, offset, properties[key]!.length)
      }
      if (message.messageGroup !== undefined) offset = writeVarint(out, offset, message.messageGroup.length)
      offset = writeVarint(out, offset, message.bornHost.length)
      if (message.traceContext !== undefined) offset = writeVarint(out, offset, message.traceContext.length)
      offset = writeVarint(out, offset, message.messageId.length)
    } else {
      const stringCount = 3 + keys.length + 2 * propertyCount + (flags & HasTag ? 1 : 0) +
        (flags & HasMessageGroup ? 1 : 0) + (flags & HasTraceContext ? 1 : 0)
      for (const end = stringIndex + stringCount; stringIndex < end; stringIndex++) {
        offset = writeVarint(out, offset, byteLengths[stringIndex]!)
      }
    }
    out.set(body, bodyOffset)
    bodyOffset += body.length
  }
  let heapEnd = heapStart
  if (byteLengths === undefined) {
    // ASCII is its own Latin-1, and the fastest way for a string into bytes.
    heapEnd += inScratch ? heapScratch.copy(out, heapStart, 0, heapBytes) : out.write(heap, heapStart, heapBytes, "latin1")
  } else {
    let s = 0
    forEachString(messages, (text) => {
      const length = byteLengths[s++]!
      if (length > 0) heapEnd += out.write(text, heapEnd, length, "utf8")
    })
  }
  // The memory is not zero-filled: a byte left unwritten would hand out whatever was there before.
  if (offset !== heapStart || heapEnd !== heapStart + heapBytes || bodyOffset !== base + total) {
    throw new Error(`MessageBatch.encode wrote a batch that does not match its size (${total} bytes)`)
  }
  // A plain Uint8Array, not a Buffer: Buffer#slice shares memory where Uint8Array#slice copies.
  return new Uint8Array(out.buffer, out.byteOffset + base, total)
}

// Every string of a batch in table order: the slow path for strings that are not all ASCII.
const forEachString = (messages: ReadonlyArray<Message>, f: (text: string) => void): void => {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!
    f(message.topic)
    if (message.tag !== undefined) f(message.tag)
    for (const key of message.keys) f(key)
    const properties = message.userProperties
    for (const key of Object.keys(properties)) {
      f(key)
      f(properties[key]!)
    }
    if (message.messageGroup !== undefined) f(message.messageGroup)
    f(message.bornHost)
    if (message.traceContext !== undefined) f(message.traceContext)
    f(message.messageId)
  }
}

/**
 * Encodes a batch of messages into one buffer.
 *
 * **Details**
 *
 * Sizes the batch exactly in a first pass and writes it in a second; every string and body is
 * copied. The messages are not validated: that is `Message.validate`'s job at the edge.
 *
 * **Gotchas**
 *
 * Throws a `RangeError` (a defect) for a number the decoder would reject, such as a timestamp that is
 * not a safe integer. A string that is not well-formed UTF-16 (a lone surrogate) is written with
 * U+FFFD in its place, as `TextEncoder` does, so it does not round trip. A batch of up to 16 KiB is
 * a view of a shared 64 KiB slab, as small Buffers are of Node's pool: use the returned bytes, not
 * their `.buffer`, and know that holding them keeps the slab alive.
 *
 * @since 0.1.0
 */
export const encode = (messages: ReadonlyArray<Message>): Uint8Array => encodeBatch(messages, false)

/**
 * Encodes a batch of stored messages into one buffer: {@link encode} with the queue position, store
 * time and delivery attempt of each message.
 *
 * **Gotchas**
 *
 * As for {@link encode}; a queue id, offset or delivery attempt out of its range is a `RangeError`.
 *
 * @since 0.1.0
 */
export const encodeStored = (messages: ReadonlyArray<StoredMessage>): Uint8Array => encodeBatch(messages, true)

// --- decode ---------------------------------------------------------------------------------------

// fatal: bytes that are not UTF-8 are a malformed batch, not silently U+FFFD; ignoreBOM: a string
// that starts with U+FEFF keeps it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const messagePrototype: object = Message.prototype
const storedMessagePrototype: object = StoredMessage.prototype

type Writable<T> = { -readonly [K in keyof T]: T[K] }

// Property keys recur across messages and batches. Handing out the same string for the same bytes
// spares V8 from internalizing a fresh copy of the key for every property it adds to a record, which
// costs more than the rest of the message. Bounded: one key per slot, short keys only.
const keyCacheSize = 1024
const maxCachedKeyBytes = 32
const keyCache: Array<string | undefined> = new Array<string | undefined>(keyCacheSize).fill(undefined)

const tooFewBytes = (what: string, needed: number, offset: number, end: number) =>
  `${what} needs ${needed} bytes, ${Math.max(0, end - offset)} are left`

// Reads the table front to back; strings come from the decoded heap and bodies from the body section.
// One per batch; a failure is recorded in `failure` and every read after it returns a sentinel.
class BatchReader {
  readonly bytes: Uint8Array
  readonly tableEnd: number
  readonly heapStart: number
  readonly heapBytes: number
  readonly heap: string
  readonly ascii: boolean
  offset = HeaderBytes
  heapByte = 0
  heapUnit = 0
  bodyOffset: number
  failure: MalformedMessageBatch | undefined = undefined

  constructor(bytes: Uint8Array, tableEnd: number, heapBytes: number, heap: string) {
    this.bytes = bytes
    this.tableEnd = tableEnd
    this.heapStart = tableEnd
    this.heapBytes = heapBytes
    this.heap = heap
    this.ascii = heap.length === heapBytes
    this.bodyOffset = tableEnd + heapBytes
  }

  fail(reason: string, offset: number): undefined {
    if (this.failure === undefined) this.failure = new MalformedMessageBatch({ reason, offset })
    return undefined
  }

  // The next varint of the table; -1 when the table ends inside it, -2 when it does not fit 32 bits.
  rawVarint(): number {
    const bytes = this.bytes
    const start = this.offset
    const end = this.tableEnd
    if (start >= end) return -1
    const first = bytes[start]!
    if (first < 0x80) {
      this.offset = start + 1
      return first
    }
    let value = 0
    let scale = 1
    for (let i = start; i < start + 5; i++) {
      if (i >= end) return -1
      const byte = bytes[i]!
      value += (byte & 0x7f) * scale
      if (byte < 0x80) {
        if (value > maxU32) return -2
        this.offset = i + 1
        return value
      }
      scale *= 128
    }
    return -2
  }

  varint(what: string): number {
    const start = this.offset
    const value = this.rawVarint()
    if (value < 0) this.failVarint(what, value, start)
    return value
  }

  failVarint(what: string, value: number, offset: number): undefined {
    return this.fail(
      value === -1 ? `${what} lies past the end of the table` : `${what} is not a varint of at most 32 bits`,
      offset
    )
  }

  // The next string's length, checked against what is left of the heap; -1 after a failure.
  stringLength(what: string): number {
    const start = this.offset
    const length = this.rawVarint()
    if (length < 0) {
      this.failVarint(`the length of ${what}`, length, start)
      return -1
    }
    if (length > this.heapBytes - this.heapByte) {
      this.fail(`${what} of ${length} bytes runs past the string section`, start)
      return -1
    }
    return length
  }

  string(what: string): string | undefined {
    const length = this.stringLength(what)
    if (length < 0) return undefined
    const start = this.heapByte
    this.heapByte = start + length
    if (this.ascii) return length === 0 ? "" : this.heap.slice(start, start + length)
    return this.nonAsciiString(what, start, length)
  }

  // A property key: a string, shared with earlier batches when the same key came before.
  propertyKey(): string | undefined {
    const length = this.stringLength("a property key")
    if (length < 0) return undefined
    const start = this.heapByte
    this.heapByte = start + length
    if (!this.ascii) return this.nonAsciiString("a property key", start, length)
    if (length > maxCachedKeyBytes) return this.heap.slice(start, start + length)
    const bytes = this.bytes
    const first = this.heapStart + start
    const end = first + length
    let hash = length
    for (let i = first; i < end; i++) hash = (Math.imul(hash, 31) + bytes[i]!) | 0
    const slot = hash & (keyCacheSize - 1)
    const cached = keyCache[slot]
    if (cached !== undefined && cached.length === length) {
      let i = 0
      while (i < length && cached.charCodeAt(i) === bytes[first + i]) i++
      if (i === length) return cached
    }
    // A copy, not a slice of the heap: the cache must not keep a batch's strings alive.
    const key = String.fromCharCode.apply(null, bytes.subarray(first, end) as unknown as Array<number>)
    keyCache[slot] = key
    return key
  }

  // Not ASCII: find the string's place in UTF-16 code units. The whole section is valid UTF-8, so a
  // string starting at a byte that begins a character is valid too (and so is the one before it).
  nonAsciiString(what: string, start: number, length: number): string | undefined {
    const bytes = this.bytes
    const first = this.heapStart + start
    if (start < this.heapBytes && (bytes[first]! & 0xc0) === 0x80) {
      return this.fail(`${what} starts inside a UTF-8 sequence`, first)
    }
    let units = 0
    for (let i = first, end = first + length; i < end; i++) {
      const byte = bytes[i]!
      if ((byte & 0xc0) !== 0x80) units += byte >= 0xf0 ? 2 : 1
    }
    const unitStart = this.heapUnit
    this.heapUnit = unitStart + units
    return this.heap.slice(unitStart, unitStart + units)
  }

  integer(what: string, offset: number): number {
    const value = readFloat64(this.bytes, offset)
    if (!isSafeInteger(value)) {
      this.fail(`${what} ${value} is not a safe integer`, offset)
      return 0
    }
    return value
  }
}

const decodeBatch = <M extends Message>(
  input: Uint8Array,
  stored: boolean
): Result.Result<Array<M>, MalformedMessageBatch> => {
  const fail = (reason: string, offset: number) => Result.fail(new MalformedMessageBatch({ reason, offset }))
  // Typed callers cannot get here, but a wrong value from untyped code must not throw.
  if (!(input instanceof Uint8Array)) return fail("the input is not a Uint8Array", 0)
  const length = input.length
  if (length < HeaderBytes) return fail(tooFewBytes("the batch header", HeaderBytes, 0, length), 0)
  const version = input[0]!
  if (version !== Version) return fail(`unknown version ${version}, this codec reads version ${Version}`, 0)
  const kind = input[1]!
  const expectedKind = stored ? KindStoredMessages : KindMessages
  if (kind !== expectedKind) {
    return fail(
      kind === KindMessages
        ? "a batch of messages, not of stored messages (decode it with decode)"
        : kind === KindStoredMessages
        ? "a batch of stored messages, not of messages (decode it with decodeStored)"
        : `unknown batch kind ${kind}`,
      1
    )
  }
  const count = readUint32(input, 2)
  const tableBytes = readUint32(input, 6)
  const heapBytes = readUint32(input, 10)
  const tableEnd = HeaderBytes + tableBytes
  if (tableEnd > length) return fail(tooFewBytes("the table", tableBytes, HeaderBytes, length), 6)
  if (heapBytes > length - tableEnd) return fail(tooFewBytes("the string section", heapBytes, tableEnd, length), 10)
  // Checked before anything is allocated for `count` messages.
  if (count > tableBytes / (stored ? StoredMinTableBytes : MessageMinTableBytes)) {
    return fail(`${count} messages cannot fit a table of ${tableBytes} bytes`, 2)
  }

  let heap = ""
  if (heapBytes > 0) {
    try {
      heap = utf8Decoder.decode(input.subarray(tableEnd, tableEnd + heapBytes))
    } catch {
      return fail("the string section is not valid UTF-8", tableEnd)
    }
  }

  const reader = new BatchReader(input, tableEnd, heapBytes, heap)
  const prototype = stored ? storedMessagePrototype : messagePrototype
  const fixedBytes = stored ? StoredFixedBytes : MessageFixedBytes
  const messages: Array<M> = []
  for (let i = 0; i < count; i++) {
    const start = reader.offset
    if (start >= tableEnd) return fail(`message ${i} lies past the end of the table`, start)
    const flags = input[start]!
    if ((flags & ~KnownFlags) !== 0) {
      return fail(`message ${i} has unknown flags 0x${flags.toString(16).padStart(2, "0")}`, start)
    }
    const headerBytes = fixedBytes + ((flags & HasDeliveryTimestamp) !== 0 ? 8 : 0) +
      ((flags & HasPriority) !== 0 ? 8 : 0) + ((flags & HasTtl) !== 0 ? 8 : 0)
    if (headerBytes > tableEnd - start) {
      return fail(tooFewBytes(`the header of message ${i}`, headerBytes, start, tableEnd), start)
    }
    let offset = start + 1
    const bornTimestamp = reader.integer("bornTimestamp", offset)
    offset += 8
    let deliveryTimestamp = 0
    let priority = 0
    let ttlMillis = 0
    if ((flags & HasDeliveryTimestamp) !== 0) {
      deliveryTimestamp = reader.integer("deliveryTimestamp", offset)
      offset += 8
    }
    if ((flags & HasPriority) !== 0) {
      priority = reader.integer("priority", offset)
      offset += 8
    }
    if ((flags & HasTtl) !== 0) {
      ttlMillis = reader.integer("ttlMillis", offset)
      offset += 8
    }
    let queueOffset = 0
    let storeTimestamp = 0
    let queueId = 0
    let deliveryAttempt = 0
    if (stored) {
      // The schema's checks on these fields, which the decoder replaces.
      queueOffset = reader.integer("queueOffset", offset)
      if (queueOffset < 0) reader.fail(`queueOffset ${queueOffset} is negative`, offset)
      storeTimestamp = reader.integer("storeTimestamp", offset + 8)
      queueId = readUint32(input, offset + 16)
      if (queueId > maxQueueId) reader.fail(`queueId ${queueId} is above 2^31 - 1`, offset + 16)
      deliveryAttempt = readUint32(input, offset + 20)
      if (deliveryAttempt === 0) reader.fail("deliveryAttempt is 0", offset + 20)
      offset += 24
    }
    if (reader.failure !== undefined) return Result.fail(reader.failure)
    reader.offset = offset

    const bodyLength = reader.varint("the body length")
    const keyCount = reader.varint("the key count")
    const propertyCount = reader.varint("the property count")
    if (reader.failure !== undefined) return Result.fail(reader.failure)
    // Each key and property string has at least a one-byte length in the table.
    if (keyCount + 2 * propertyCount > tableEnd - reader.offset) {
      return fail(`message ${i} has more keys and properties than its table has room for`, reader.offset)
    }

    // Made on the class's prototype, not by its constructor: the constructor parses every field even
    // with `disableChecks: true` (about 1.7 µs a message, more than the whole decode), and what it
    // would check, the reads above and below check. The fields are set in the order the constructor
    // sets them, so decoded and constructed messages have the same shape and key order.
    const message = Object.create(prototype) as Writable<StoredMessage>
    const topic = reader.string("the topic")
    if (topic === undefined) return Result.fail(reader.failure!)
    message.topic = topic
    const bodyStart = reader.bodyOffset
    if (bodyLength > length - bodyStart) {
      return fail(`the body of message ${i} (${bodyLength} bytes) runs past the end of the batch`, bodyStart)
    }
    reader.bodyOffset = bodyStart + bodyLength
    message.body = input.subarray(bodyStart, bodyStart + bodyLength)
    if ((flags & HasTag) !== 0) {
      const tag = reader.string("the tag")
      if (tag === undefined) return Result.fail(reader.failure!)
      message.tag = tag
    }
    const keys: Array<string> = []
    for (let k = 0; k < keyCount; k++) {
      const key = reader.string("a key")
      if (key === undefined) return Result.fail(reader.failure!)
      keys.push(key)
    }
    message.keys = keys
    const userProperties: Record<string, string> = {}
    for (let p = 0; p < propertyCount; p++) {
      const key = reader.propertyKey()
      const value = reader.string("a property value")
      if (key === undefined || value === undefined) return Result.fail(reader.failure!)
      // Assignment to `__proto__` would set the prototype instead of adding the property.
      if (key === "__proto__") {
        Object.defineProperty(userProperties, key, { value, enumerable: true, writable: true, configurable: true })
      } else userProperties[key] = value
    }
    message.userProperties = userProperties
    if ((flags & HasMessageGroup) !== 0) {
      const messageGroup = reader.string("the message group")
      if (messageGroup === undefined) return Result.fail(reader.failure!)
      message.messageGroup = messageGroup
    }
    if ((flags & HasDeliveryTimestamp) !== 0) message.deliveryTimestamp = deliveryTimestamp
    if ((flags & HasPriority) !== 0) message.priority = priority
    if ((flags & HasTtl) !== 0) message.ttlMillis = ttlMillis
    message.bornTimestamp = bornTimestamp
    const bornHost = reader.string("the born host")
    if (bornHost === undefined) return Result.fail(reader.failure!)
    message.bornHost = bornHost
    if ((flags & HasTraceContext) !== 0) {
      const traceContext = reader.string("the trace context")
      if (traceContext === undefined) return Result.fail(reader.failure!)
      message.traceContext = traceContext
    }
    const messageId = reader.string("the message id")
    if (messageId === undefined) return Result.fail(reader.failure!)
    message.messageId = messageId
    if (stored) {
      message.queueId = queueId as StoredMessage["queueId"]
      message.queueOffset = queueOffset as StoredMessage["queueOffset"]
      message.storeTimestamp = storeTimestamp
      message.deliveryAttempt = deliveryAttempt
    }
    messages.push(message as unknown as M)
  }
  if (reader.offset !== tableEnd) {
    return fail(`${tableEnd - reader.offset} bytes of the table are left after ${count} messages`, reader.offset)
  }
  if (reader.heapByte !== heapBytes) {
    const unused = heapBytes - reader.heapByte
    return fail(`${unused} bytes of the string section are left after ${count} messages`, tableEnd + reader.heapByte)
  }
  if (reader.bodyOffset !== length) {
    return fail(`${length - reader.bodyOffset} bytes are left after the last body`, reader.bodyOffset)
  }
  return Result.succeed(messages)
}

/**
 * Decodes a batch that {@link encode} wrote.
 *
 * **Details**
 *
 * Never throws: bytes that are not such a batch (truncated, lengths past the end, not UTF-8, an
 * unknown version) give a `MalformedMessageBatch`. The decoder checks the structure and the number
 * ranges of the schema, and makes `Message` instances without running the schema's constructor, which
 * would cost more than the rest of the decode; the rules a message must pass are `Message.validate`'s
 * job at the edge.
 *
 * **Gotchas**
 *
 * Bodies are views of `bytes`, not copies: a body keeps the whole input buffer alive, and changing
 * the input changes the bodies. Copy a body (`body.slice()`) to retain it without the batch. Long
 * strings may likewise share memory with the other strings of the batch.
 *
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array): Result.Result<Array<Message>, MalformedMessageBatch> =>
  decodeBatch<Message>(bytes, false)

/**
 * Decodes a batch that {@link encodeStored} wrote: {@link decode} for stored messages.
 *
 * **Gotchas**
 *
 * As for {@link decode}: bodies are views of `bytes`.
 *
 * @since 0.1.0
 */
export const decodeStored = (bytes: Uint8Array): Result.Result<Array<StoredMessage>, MalformedMessageBatch> =>
  decodeBatch<StoredMessage>(bytes, true)

/**
 * Where a stored message is, beside the message itself.
 *
 * @since 0.1.0
 */
export interface Placement {
  readonly queueId: StoredMessage["queueId"]
  readonly queueOffset: StoredMessage["queueOffset"]
  readonly storeTimestamp: number
  readonly deliveryAttempt: number
}

/**
 * A `StoredMessage` made from a decoded `Message` and its placement, without re-running the class's
 * checks (the decoder checked the message, the store assigned the placement).
 *
 * @since 0.1.0
 */
export const toStored = (message: Message, placement: Placement): StoredMessage => {
  const stored = Object.create(storedMessagePrototype) as Record<string, unknown>
  for (const key of Object.keys(message)) stored[key] = (message as unknown as Record<string, unknown>)[key]
  stored.queueId = placement.queueId
  stored.queueOffset = placement.queueOffset
  stored.storeTimestamp = placement.storeTimestamp
  stored.deliveryAttempt = placement.deliveryAttempt
  return stored as unknown as StoredMessage
}
