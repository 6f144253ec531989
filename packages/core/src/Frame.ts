/**
 * A data-plane frame and its codec: `u32 length | u16 type | u32 correlation | payload`, big-endian.
 *
 * `length` counts the bytes after the length field (`2 + 4 + payload.length`), so the header is
 * {@link HeaderBytes} long and a valid length is at least 6. A response to request type `T` has type
 * `T | 0x8000`; types below `0x0100` (and their responses) are transport control frames. The codec is
 * on the hot path of every connection: {@link encode} writes a batch into one buffer without copying
 * large payloads, and a {@link Decoder} turns received chunks into frames whose payloads are views
 * into those chunks, without running an Effect or allocating a closure per frame.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Result } from "effect"
import * as Bytes from "./Bytes.ts"

/**
 * One frame: its type, the correlation id that pairs a response with its request, and the payload.
 *
 * @since 0.1.0
 */
export interface Frame {
  readonly type: number
  readonly correlation: number
  readonly payload: Uint8Array
}

/**
 * Bytes before the payload: `u32 length`, `u16 type`, `u32 correlation`.
 *
 * @since 0.1.0
 */
export const HeaderBytes = 10

/**
 * The bit of a frame type that marks a response.
 *
 * @since 0.1.0
 */
export const ResponseFlag = 0x8000

/**
 * Transport control types (below `0x0100`), handled by the transport itself.
 *
 * @since 0.1.0
 */
export const Control = { Heartbeat: 0x0001, Close: 0x0002, GoAway: 0x0003 } as const

/**
 * Application request types known to core, in `0x0100`–`0x7EFF`.
 *
 * **Details**
 *
 * `Echo`: the peer answers with the same payload (health checks, benchmarks). `Broker`: a request to
 * a broker; the payload is a request of `@strait/broker`'s `Protocol`. `Client`: a client's request to a
 * proxy (`@strait/protocol-native`'s `Protocol`).
 *
 * @since 0.1.0
 */
export const Type = { Echo: 0x0100, Broker: 0x0110, Client: 0x0120 } as const

/**
 * Whether a frame type (request or response) is a transport control type.
 *
 * @since 0.1.0
 */
export const isControl = (type: number): boolean => (type & 0x7fff) < 0x0100

/**
 * Whether a frame type is a response.
 *
 * @since 0.1.0
 */
export const isResponse = (type: number): boolean => (type & ResponseFlag) !== 0

/**
 * The type of the response to a request type.
 *
 * @since 0.1.0
 */
export const responseType = (requestType: number): number => requestType | ResponseFlag

/**
 * The request type a frame type belongs to: itself for a request, the request's for a response.
 *
 * @since 0.1.0
 */
export const requestType = (type: number): number => type & 0x7fff

/**
 * Makes a frame.
 *
 * **Gotchas**
 *
 * The payload is not copied: do not change it until the frame has been sent.
 *
 * @since 0.1.0
 */
export const make = (type: number, correlation: number, payload: Uint8Array): Frame => ({
  type,
  correlation,
  payload
})

/**
 * The frame limits in force: `maxPayloadBytes` is the largest payload a decoder accepts, 64 MiB
 * unless overridden.
 *
 * **Details**
 *
 * 64 MiB leaves room for 16 MiB messages with their batch envelope; a length above it is rejected as
 * soon as the header arrives, so a peer cannot make a node buffer gigabytes.
 *
 * @since 0.1.0
 */
export const FrameLimits = Context.Reference<{ readonly maxPayloadBytes: number }>(
  "@strait/core/Frame/FrameLimits",
  { defaultValue: () => ({ maxPayloadBytes: 64 * 1024 * 1024 }) }
)

/**
 * The application request types a decoder accepts, every value of {@link Type} unless overridden.
 *
 * **Details**
 *
 * A request type is known if it is in the set, its response form is known too, and control types are
 * always known (see {@link isKnownType}).
 *
 * @since 0.1.0
 */
export const FrameTypes = Context.Reference<ReadonlySet<number>>("@strait/core/Frame/FrameTypes", {
  defaultValue: () => new Set<number>(Object.values(Type))
})

/**
 * Whether a decoder with the request types `known` accepts a frame type.
 *
 * @since 0.1.0
 */
export const isKnownType = (known: ReadonlySet<number>, type: number): boolean =>
  isControl(type) || known.has(type & 0x7fff)

/**
 * A header announced a payload larger than the limit (`length` is the header's length field).
 *
 * @since 0.1.0
 */
export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{
  readonly length: number
  readonly max: number
}> {
  override get message() {
    return `frame length ${this.length} exceeds the maximum payload of ${this.max} bytes`
  }
}

/**
 * A header carried a frame type the decoder does not know.
 *
 * @since 0.1.0
 */
export class UnknownFrameType extends Data.TaggedError("UnknownFrameType")<{ readonly type: number }> {
  override get message() {
    return `unknown frame type 0x${this.type.toString(16).padStart(4, "0")}`
  }
}

/**
 * The bytes are not a frame (for example a length field below 6).
 *
 * @since 0.1.0
 */
export class MalformedFrame extends Data.TaggedError("MalformedFrame")<{ readonly reason: string }> {
  override get message() {
    return `malformed frame: ${this.reason}`
  }
}

/**
 * The stream ended inside a frame.
 *
 * **Details**
 *
 * `buffered` is how many bytes of the frame arrived and `needed` how many the whole frame has
 * (header included; {@link HeaderBytes} while the header itself is incomplete).
 *
 * @since 0.1.0
 */
export class TruncatedFrame extends Data.TaggedError("TruncatedFrame")<{
  readonly buffered: number
  readonly needed: number
}> {
  override get message() {
    return `stream ended inside a frame: ${this.buffered} of ${this.needed} bytes arrived`
  }
}

/**
 * Every way a byte stream can fail to be frames.
 *
 * @since 0.1.0
 */
export type FrameError = FrameTooLarge | UnknownFrameType | MalformedFrame | TruncatedFrame

/**
 * Payloads of this size and above are written as their own chunk by {@link encode}, not copied.
 *
 * **Details**
 *
 * Below it, copying into the batch buffer costs less than one more chunk in a vectored write; above
 * it, the copy (and a buffer for it) costs more: a popped batch of 32 messages of 1 KiB was copied
 * whole while the threshold was 64 KiB.
 *
 * @since 0.1.0
 */
export const PassThroughBytes = 8 * 1024

// The largest length field a u32 holds leaves this much for a payload.
const maxEncodablePayload = 0xffff_ffff - 6

const assertEncodable = (frame: Frame): void => {
  const { type, correlation, payload } = frame
  // A type or correlation out of range would be silently truncated on the wire: fail loudly instead.
  if (!(type >= 0 && type <= 0xffff && Number.isInteger(type))) {
    throw new RangeError(`frame type ${type} is not a u16`)
  }
  if (!(correlation >= 0 && correlation <= 0xffff_ffff && Number.isInteger(correlation))) {
    throw new RangeError(`frame correlation ${correlation} is not a u32`)
  }
  if (payload.length > maxEncodablePayload) {
    throw new RangeError(`frame payload of ${payload.length} bytes does not fit a u32 length`)
  }
}

const writeHeader = (bytes: Uint8Array, offset: number, frame: Frame): void => {
  const length = frame.payload.length + 6
  const { type, correlation } = frame
  bytes[offset] = length >>> 24
  bytes[offset + 1] = length >>> 16
  bytes[offset + 2] = length >>> 8
  bytes[offset + 3] = length
  bytes[offset + 4] = type >>> 8
  bytes[offset + 5] = type
  bytes[offset + 6] = correlation >>> 24
  bytes[offset + 7] = correlation >>> 16
  bytes[offset + 8] = correlation >>> 8
  bytes[offset + 9] = correlation
}

/**
 * Encodes a batch into chunks ready for one vectored write, in order.
 *
 * **Details**
 *
 * Headers and payloads below {@link PassThroughBytes} are copied into one buffer, so a batch of small
 * frames is one chunk. A payload at or above it is passed through as its own chunk after the chunk
 * that ends with its header, so a 16 MiB payload is never copied. Every other chunk is a view of the
 * one buffer the call allocates. An empty batch gives no chunks.
 *
 * **Gotchas**
 *
 * Throws a `RangeError` (a defect) for a type that is not a u16 or a correlation that is not a u32.
 * Passed-through payloads are the caller's buffers: do not change them until the write completes.
 *
 * @since 0.1.0
 */
export const encode = (frames: ReadonlyArray<Frame>): Array<Uint8Array> => {
  const count = frames.length
  let copiedBytes = 0
  for (let i = 0; i < count; i++) {
    const frame = frames[i]!
    assertEncodable(frame)
    const payloadLength = frame.payload.length
    copiedBytes += payloadLength < PassThroughBytes ? HeaderBytes + payloadLength : HeaderBytes
  }
  const chunks: Array<Uint8Array> = []
  if (count === 0) return chunks
  // every byte is written below, so an unzeroed buffer is safe; it comes from a slab, which costs
  // far less than a fresh ArrayBuffer per batch
  const bytes = Bytes.allocUnsafe(copiedBytes)
  let offset = 0
  let chunkStart = 0
  for (let i = 0; i < count; i++) {
    const frame = frames[i]!
    const payload = frame.payload
    writeHeader(bytes, offset, frame)
    offset += HeaderBytes
    if (payload.length < PassThroughBytes) {
      bytes.set(payload, offset)
      offset += payload.length
    } else {
      chunks.push(bytes.subarray(chunkStart, offset), payload)
      chunkStart = offset
    }
  }
  if (offset > chunkStart) chunks.push(chunkStart === 0 ? bytes : bytes.subarray(chunkStart, offset))
  return chunks
}

/**
 * Encodes a batch as one contiguous buffer, copying every payload.
 *
 * **When to use**
 *
 * Where the sink takes one buffer (tests, a shared-memory ring); prefer {@link encode} for sockets.
 *
 * @since 0.1.0
 */
export const encodeToBytes = (frames: ReadonlyArray<Frame>): Uint8Array => {
  const count = frames.length
  let totalBytes = 0
  for (let i = 0; i < count; i++) {
    const frame = frames[i]!
    assertEncodable(frame)
    totalBytes += HeaderBytes + frame.payload.length
  }
  const bytes = Bytes.allocUnsafe(totalBytes)
  let offset = 0
  for (let i = 0; i < count; i++) {
    const frame = frames[i]!
    writeHeader(bytes, offset, frame)
    bytes.set(frame.payload, offset + HeaderBytes)
    offset += HeaderBytes + frame.payload.length
  }
  return bytes
}

// Shared results for the common cases, so a push that completes no frame allocates nothing.
const noFrames: ReadonlyArray<Frame> = Object.freeze([])
const succeedNoFrames: Result.Result<ReadonlyArray<Frame>, never> = Result.succeed(noFrames)
const succeedVoid: Result.Result<void, never> = Result.succeed(undefined)

/**
 * A streaming decoder for one connection: feed it the received chunks in order and it gives back the
 * frames they complete.
 *
 * **Details**
 *
 * Not an Effect: it is called once per received chunk, synchronously. A frame that lies inside one
 * chunk gets a payload that is a view into that chunk (no copy); a frame spanning chunks is assembled
 * with one copy when its last byte arrives. An oversized length, a length below 6 or an unknown type
 * is rejected as soon as the 10-byte header is readable, before any of the payload is buffered.
 *
 * **Gotchas**
 *
 * Payloads and buffered bytes are views of the pushed chunks: a caller must not reuse or change a
 * chunk after pushing it. After an error the decoder is poisoned: every later `push` and `end`
 * returns that same error, and the frames the failing push completed before it are not returned
 * (the connection closes anyway).
 *
 * @since 0.1.0
 */
export class Decoder {
  readonly #maxPayloadBytes: number
  readonly #known: ReadonlySet<number>
  // The header of the incomplete frame, copied here while it arrives across chunks.
  readonly #header = new Uint8Array(HeaderBytes)
  #headerFill = 0
  // -1 until the incomplete frame's header has been read; then its payload length.
  #payloadLength = -1
  #type = 0
  #correlation = 0
  // The incomplete frame's payload so far: views of the chunks it arrived in, copied once at the end.
  #payloadParts: Array<Uint8Array> = []
  #payloadBuffered = 0
  #failure: Result.Result<never, FrameError> | undefined = undefined

  constructor(options: { readonly maxPayloadBytes: number; readonly known: ReadonlySet<number> }) {
    if (!(options.maxPayloadBytes >= 0)) {
      throw new RangeError(`maxPayloadBytes must be a non-negative number, got ${options.maxPayloadBytes}`)
    }
    this.#maxPayloadBytes = options.maxPayloadBytes
    this.#known = options.known
  }

  /**
   * Bytes buffered for an incomplete frame (header included).
   *
   * @since 0.1.0
   */
  get buffered(): number {
    return this.#headerFill + this.#payloadBuffered
  }

  /**
   * Feeds one chunk; returns every frame it completes, in order, or the first error.
   *
   * **Details**
   *
   * Never throws: bytes that are not frames give a `FrameError`, and the decoder stays poisoned with it.
   *
   * @since 0.1.0
   */
  push(chunk: Uint8Array): Result.Result<ReadonlyArray<Frame>, FrameError> {
    if (this.#failure !== undefined) return this.#failure
    // Typed callers cannot get here, but a wrong value from untyped code must not throw.
    if (!(chunk instanceof Uint8Array)) {
      return this.#fail(new MalformedFrame({ reason: "a pushed chunk is not a Uint8Array" }))
    }
    const chunkLength = chunk.length
    let offset = 0
    let frames: Array<Frame> | undefined

    // First finish the frame that earlier chunks left incomplete: its header, then its payload.
    if (this.#headerFill > 0 && this.#payloadLength < 0) {
      const header = this.#header
      const take = Math.min(HeaderBytes - this.#headerFill, chunkLength)
      header.set(chunk.subarray(0, take), this.#headerFill)
      this.#headerFill += take
      offset = take
      if (this.#headerFill < HeaderBytes) return succeedNoFrames
      const length = ((header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!) >>> 0
      const type = (header[4]! << 8) | header[5]!
      const error = this.#check(length, type)
      if (error !== undefined) return this.#fail(error)
      this.#payloadLength = length - 6
      this.#type = type
      this.#correlation = ((header[6]! << 24) | (header[7]! << 16) | (header[8]! << 8) | header[9]!) >>> 0
    }
    if (this.#payloadLength >= 0) {
      const missing = this.#payloadLength - this.#payloadBuffered
      const available = chunkLength - offset
      if (available < missing) {
        if (available > 0) {
          this.#payloadParts.push(chunk.subarray(offset))
          this.#payloadBuffered += available
        }
        return succeedNoFrames
      }
      const payload = this.#payloadParts.length === 0
        ? chunk.subarray(offset, offset + missing)
        : this.#assemble(chunk.subarray(offset, offset + missing))
      frames = [make(this.#type, this.#correlation, payload)]
      offset += missing
      this.#headerFill = 0
      this.#payloadLength = -1
      this.#payloadBuffered = 0
    }

    // The fast path: whole frames inside this chunk become views of it.
    while (chunkLength - offset >= HeaderBytes) {
      const length = ((chunk[offset]! << 24) | (chunk[offset + 1]! << 16) | (chunk[offset + 2]! << 8) |
        chunk[offset + 3]!) >>> 0
      const type = (chunk[offset + 4]! << 8) | chunk[offset + 5]!
      const error = this.#check(length, type)
      if (error !== undefined) return this.#fail(error)
      const correlation = ((chunk[offset + 6]! << 24) | (chunk[offset + 7]! << 16) | (chunk[offset + 8]! << 8) |
        chunk[offset + 9]!) >>> 0
      const payloadStart = offset + HeaderBytes
      const payloadEnd = payloadStart + length - 6
      if (payloadEnd > chunkLength) {
        // The payload continues in later chunks: keep what is here and wait.
        this.#headerFill = HeaderBytes
        this.#payloadLength = length - 6
        this.#type = type
        this.#correlation = correlation
        if (payloadStart < chunkLength) {
          this.#payloadParts.push(chunk.subarray(payloadStart))
          this.#payloadBuffered = chunkLength - payloadStart
        }
        offset = chunkLength
        break
      }
      const frame = make(type, correlation, chunk.subarray(payloadStart, payloadEnd))
      if (frames === undefined) frames = [frame]
      else frames.push(frame)
      offset = payloadEnd
    }
    if (offset < chunkLength) {
      // Fewer than HeaderBytes left: the start of the next header.
      this.#header.set(chunk.subarray(offset), 0)
      this.#headerFill = chunkLength - offset
    }
    return frames === undefined ? succeedNoFrames : Result.succeed(frames)
  }

  /**
   * Ends the stream: fails with `TruncatedFrame` if an incomplete frame is buffered.
   *
   * @since 0.1.0
   */
  end(): Result.Result<void, FrameError> {
    if (this.#failure !== undefined) return this.#failure
    if (this.#headerFill === 0) return succeedVoid
    const needed = this.#payloadLength < 0 ? HeaderBytes : HeaderBytes + this.#payloadLength
    return this.#fail(new TruncatedFrame({ buffered: this.buffered, needed }))
  }

  #check(length: number, type: number): FrameError | undefined {
    if (length < 6) {
      return new MalformedFrame({ reason: `length ${length} is below the 6 bytes of type and correlation` })
    }
    if (length - 6 > this.#maxPayloadBytes) return new FrameTooLarge({ length, max: this.#maxPayloadBytes })
    if (!isKnownType(this.#known, type)) return new UnknownFrameType({ type })
    return undefined
  }

  #assemble(last: Uint8Array): Uint8Array {
    // every byte is written from the parts
    const payload = Bytes.allocUnsafe(this.#payloadLength)
    const parts = this.#payloadParts
    let offset = 0
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!
      payload.set(part, offset)
      offset += part.length
    }
    payload.set(last, offset)
    this.#payloadParts = []
    return payload
  }

  #fail(error: FrameError): Result.Result<never, FrameError> {
    const failure = Result.fail(error)
    this.#failure = failure
    // Drop buffered views so a poisoned decoder holds no chunk alive.
    this.#payloadParts = []
    return failure
  }
}

/**
 * Makes a {@link Decoder} with the {@link FrameLimits} and {@link FrameTypes} in force.
 *
 * @since 0.1.0
 */
export const makeDecoder: Effect.Effect<Decoder> = Effect.gen(function*() {
  const limits = yield* FrameLimits
  const known = yield* FrameTypes
  return new Decoder({ maxPayloadBytes: limits.maxPayloadBytes, known })
})
