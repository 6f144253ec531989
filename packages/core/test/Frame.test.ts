import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Result, Schema } from "effect"
import { Buffer } from "node:buffer"
import * as Frame from "../src/Frame.ts"
import { patterned } from "./fixtures.ts"

// ---------------------------------------------------------------------------------------------- fixtures

const errorTags: ReadonlySet<string> = new Set(["FrameTooLarge", "UnknownFrameType", "MalformedFrame", "TruncatedFrame"])

/** Request types the test decoders know: core's, plus the edges of the application range. */
const knownTypes: ReadonlySet<number> = new Set([Frame.Type.Echo, 0x0200, 0x7eff])

/** Every type a peer of the test decoders may send: known requests, their responses, control frames. */
const sendableTypes: ReadonlyArray<number> = [
  ...[...knownTypes, Frame.Control.Heartbeat, Frame.Control.Close, Frame.Control.GoAway, 0x0000, 0x00ff]
    .flatMap((type) => [type, Frame.responseType(type)])
]

/** Every request type, so that only the length can stop this decoder. */
const everyType: ReadonlySet<number> = new Set(Array.from({ length: 0x8000 }, (_, type) => type))

const decoder = (maxPayloadBytes = 256 * 1024, known = knownTypes) => new Frame.Decoder({ maxPayloadBytes, known })

const header = (length: number, type: number, correlation: number): Uint8Array => {
  const bytes = new Uint8Array(Frame.HeaderBytes)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, length)
  view.setUint16(4, type)
  view.setUint32(6, correlation)
  return bytes
}

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(chunks)

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))

const assertSameFrames = (actual: ReadonlyArray<Frame.Frame>, expected: ReadonlyArray<Frame.Frame>): void => {
  assert.strictEqual(actual.length, expected.length, "frame count")
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!
    const e = expected[i]!
    assert.strictEqual(a.type, e.type, `type of frame ${i}`)
    assert.strictEqual(a.correlation, e.correlation, `correlation of frame ${i}`)
    assert.strictEqual(a.payload.length, e.payload.length, `payload length of frame ${i}`)
    assert.isTrue(sameBytes(a.payload, e.payload), `payload bytes of frame ${i}`)
  }
}

/** Splits bytes at the given points (taken modulo the length, so any u32 is a point); repeats give empty chunks. */
const split = (bytes: Uint8Array, points: ReadonlyArray<number>): Array<Uint8Array> => {
  const cuts = points.map((point) => point % (bytes.length + 1)).sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut))
    start = cut
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

/** Cuts that make every byte in `[at, at + length)` a chunk of its own. */
const oneByteRun = (bytes: Uint8Array, at: number, length: number): Array<number> => {
  const start = at % (bytes.length + 1)
  return Array.from({ length: Math.min(length, bytes.length - start) }, (_, i) => start + i + 1)
}

/** Fails the test unless a push or end result is frames (or nothing) or one of the four typed errors. */
const assertTyped = <A>(result: Result.Result<A, Frame.FrameError>, maxPayloadBytes: number): void => {
  if (Result.isFailure(result)) {
    assert.isTrue(errorTags.has(result.failure._tag), `unexpected error ${String(result.failure)}`)
    return
  }
  const frames = result.success
  if (frames === undefined) return
  assert.isTrue(Array.isArray(frames))
  for (const frame of frames as ReadonlyArray<Frame.Frame>) {
    assert.instanceOf(frame.payload, Uint8Array)
    assert.isTrue(Number.isInteger(frame.type) && frame.type >= 0 && frame.type <= 0xffff)
    assert.isTrue(Number.isInteger(frame.correlation) && frame.correlation >= 0 && frame.correlation <= 0xffff_ffff)
    assert.isAtMost(frame.payload.length, maxPayloadBytes)
  }
}

interface Outcome {
  readonly frames: Array<Frame.Frame>
  readonly error: Frame.FrameError | undefined
}

/** Pushes every chunk and then ends, checking every result on the way; stops at the first error. */
const decodeAll = (make: () => Frame.Decoder, chunks: ReadonlyArray<Uint8Array>, maxPayloadBytes: number): Outcome => {
  const decoder = make()
  const frames: Array<Frame.Frame> = []
  for (const chunk of chunks) {
    const result = decoder.push(chunk)
    assertTyped(result, maxPayloadBytes)
    if (Result.isFailure(result)) return { frames, error: result.failure }
    for (const frame of result.success) frames.push(frame)
  }
  const end = decoder.end()
  assertTyped(end, maxPayloadBytes)
  return { frames, error: Result.isFailure(end) ? end.failure : undefined }
}

const errorFields = (error: Frame.FrameError | undefined): Record<string, unknown> | undefined =>
  error === undefined ? undefined : { ...error }

/**
 * Decoding is a function of the bytes alone: the same bytes chunked differently give the same frames
 * and the same first error (frames completed by the failing push are not returned, so only the
 * error is compared then).
 */
const assertChunkingIndependent = (whole: Outcome, chunked: Outcome): void => {
  assert.deepStrictEqual(errorFields(chunked.error), errorFields(whole.error))
  if (whole.error === undefined) assertSameFrames(chunked.frames, whole.frames)
}

// ---------------------------------------------------------------------------------------------- arbitraries

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
const u32 = int(0, 0xffff_ffff)

/** A frame described by small numbers, so a shrunk counterexample prints readably. */
const frameSpec = (maxPayload: number) =>
  Arbitrary.all({
    typeIndex: int(0, sendableTypes.length - 1),
    correlation: u32,
    payloadBytes: int(0, maxPayload),
    small: Arbitrary.schema(Schema.Boolean),
    seed: u32
  })

type FrameSpec = {
  readonly typeIndex: number
  readonly correlation: number
  readonly payloadBytes: number
  readonly small: boolean
  readonly seed: number
}

const toFrame = (spec: FrameSpec): Frame.Frame =>
  Frame.make(
    sendableTypes[spec.typeIndex]!,
    spec.correlation,
    // half the frames are small, as most are in practice; the rest spread up to the maximum
    patterned(spec.small ? spec.payloadBytes % 300 : spec.payloadBytes, spec.seed)
  )

const batchOf = (maxPayload: number, maxFrames: number) =>
  Arbitrary.array(frameSpec(maxPayload), { maxLength: maxFrames })
const cuts = Arbitrary.array(u32, { maxLength: 24 })
const byteRun = Arbitrary.all({ at: u32, length: int(0, 40) })

const seeded = (runs: number) => ({ arbitrary: { seed: 42, runs } })

// ---------------------------------------------------------------------------------------------- tests

describe("Frame types", () => {
  it("a response type is the request type with the top bit set", () => {
    assert.strictEqual(Frame.responseType(Frame.Type.Echo), 0x8100)
    assert.isTrue(Frame.isResponse(0x8100))
    assert.isFalse(Frame.isResponse(0x0100))
    assert.strictEqual(Frame.requestType(0x8100), 0x0100)
  })

  it("types below 0x0100 and their responses are control types", () => {
    for (const type of [0x0000, Frame.Control.Heartbeat, Frame.Control.Close, Frame.Control.GoAway, 0x00ff]) {
      assert.isTrue(Frame.isControl(type), `0x${type.toString(16)}`)
      assert.isTrue(Frame.isControl(Frame.responseType(type)), `response to 0x${type.toString(16)}`)
    }
    assert.isFalse(Frame.isControl(0x0100))
    assert.isFalse(Frame.isControl(0x8100))
  })

  it("a request type in the set and its response are known, others are not, control types always are", () => {
    const known = new Set([0x0200])
    assert.isTrue(Frame.isKnownType(known, 0x0200))
    assert.isTrue(Frame.isKnownType(known, 0x8200))
    assert.isFalse(Frame.isKnownType(known, 0x0201))
    assert.isFalse(Frame.isKnownType(known, 0x8201))
    assert.isTrue(Frame.isKnownType(new Set(), Frame.Control.Heartbeat))
    assert.isTrue(Frame.isKnownType(new Set(), Frame.responseType(Frame.Control.GoAway)))
  })
})

describe("Frame encode", () => {
  it("lays out a frame as u32 length, u16 type, u32 correlation, payload, big-endian", () => {
    const frame = Frame.make(0x8100, 0x01020304, Uint8Array.of(0xaa, 0xbb, 0xcc))
    const expected = [0x00, 0x00, 0x00, 0x09, 0x81, 0x00, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc]
    assert.deepStrictEqual([...Frame.encodeToBytes([frame])], expected)
    assert.deepStrictEqual([...concat(Frame.encode([frame]))], expected)
  })

  it("an empty batch encodes to no chunks and no bytes", () => {
    assert.deepStrictEqual(Frame.encode([]), [])
    assert.strictEqual(Frame.encodeToBytes([]).length, 0)
  })

  it("a batch of small frames is one chunk", () => {
    const frames = [1, 2, 3].map((i) => Frame.make(Frame.Type.Echo, i, patterned(100 * i, i)))
    const chunks = Frame.encode(frames)
    assert.strictEqual(chunks.length, 1)
    assert.isTrue(sameBytes(chunks[0]!, Frame.encodeToBytes(frames)))
  })

  it("a payload at the pass-through size is its own chunk, the very buffer given, between copied chunks", () => {
    const large = patterned(Frame.PassThroughBytes, 7)
    const smallest = patterned(Frame.PassThroughBytes - 1, 8)
    const frames = [Frame.make(0x0100, 1, smallest), Frame.make(0x0100, 2, large), Frame.make(0x8100, 3, smallest)]
    const chunks = Frame.encode(frames)
    assert.deepStrictEqual(chunks.map((chunk) => chunk.length), [
      2 * Frame.HeaderBytes + smallest.length,
      large.length,
      Frame.HeaderBytes + smallest.length
    ])
    assert.strictEqual(chunks[1], large)
    // the copied chunks share one allocation
    assert.strictEqual(chunks[0]!.buffer, chunks[2]!.buffer)
  })

  it("a frame that cannot be written exactly is a defect, not silent truncation", () => {
    assert.throws(() => Frame.encode([Frame.make(0x1_0000, 1, new Uint8Array(0))]), RangeError)
    assert.throws(() => Frame.encode([Frame.make(-1, 1, new Uint8Array(0))]), RangeError)
    assert.throws(() => Frame.encodeToBytes([Frame.make(0x0100, 0x1_0000_0000, new Uint8Array(0))]), RangeError)
    assert.throws(() => Frame.encodeToBytes([Frame.make(0x0100, 1.5, new Uint8Array(0))]), RangeError)
  })

  it.prop(
    "encodeToBytes equals the concatenation of encode's chunks, and both decode to the batch",
    { batch: batchOf(200 * 1024, 6) },
    ({ batch }) => {
      const frames = batch.map(toFrame)
      const chunks = Frame.encode(frames)
      const bytes = Frame.encodeToBytes(frames)
      assert.isTrue(sameBytes(concat(chunks), bytes))
      assertSameFrames(decodeAll(decoder, chunks, 256 * 1024).frames, frames)
      assertSameFrames(decodeAll(decoder, [bytes], 256 * 1024).frames, frames)
    },
    seeded(200)
  )
})

describe("Frame round trip", () => {
  it.prop(
    "a batch survives encode and any chunking of its bytes, in order",
    { batch: batchOf(200 * 1024, 8), cuts, run: byteRun },
    ({ batch, cuts, run }) => {
      const frames = batch.map(toFrame)
      const bytes = Frame.encodeToBytes(frames)
      const chunks = split(bytes, [...cuts, ...oneByteRun(bytes, run.at, run.length)])
      const outcome = decodeAll(decoder, chunks, 256 * 1024)
      assert.isUndefined(outcome.error)
      assertSameFrames(outcome.frames, frames)
    },
    seeded(300)
  )

  it.prop(
    "a batch survives every byte arriving in a chunk of its own",
    { batch: batchOf(600, 5) },
    ({ batch }) => {
      const frames = batch.map(toFrame)
      const bytes = Frame.encodeToBytes(frames)
      const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))
      const outcome = decodeAll(decoder, chunks, 256 * 1024)
      assert.isUndefined(outcome.error)
      assertSameFrames(outcome.frames, frames)
    },
    seeded(200)
  )

  it.effect("a 16 MiB payload passes the default limits, and neither encode nor decode copies it", () =>
    Effect.gen(function*() {
      const payload = patterned(16 * 1024 * 1024, 16)
      const frame = Frame.make(Frame.Type.Echo, 0xfeed_f00d, payload)
      const chunks = Frame.encode([frame])
      assert.strictEqual(chunks.length, 2)
      assert.strictEqual(chunks[1], payload)
      const decoder = yield* Frame.makeDecoder
      assert.deepStrictEqual(decoder.push(chunks[0]!), Result.succeed([]))
      const result = decoder.push(chunks[1]!)
      assert.isTrue(Result.isSuccess(result))
      const decoded = Result.getOrThrow(result)
      assert.strictEqual(decoded.length, 1)
      assert.strictEqual(decoded[0]!.correlation, 0xfeed_f00d)
      assert.strictEqual(decoded[0]!.payload.buffer, payload.buffer)
      assert.strictEqual(decoded[0]!.payload.length, payload.length)
      assert.isTrue(Result.isSuccess(decoder.end()))
    }))

  it("a 16 MiB payload arriving in 64 KiB chunks is assembled once, intact", () => {
    const frame = Frame.make(Frame.Type.Echo, 9, patterned(16 * 1024 * 1024, 17))
    const bytes = Frame.encodeToBytes([frame])
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) =>
      bytes.subarray(i * 65536, (i + 1) * 65536))
    const outcome = decodeAll(() => decoder(64 * 1024 * 1024), chunks, 64 * 1024 * 1024)
    assert.isUndefined(outcome.error)
    assertSameFrames(outcome.frames, [frame])
  })
})

describe("Frame Decoder", () => {
  it("a frame inside one chunk has a payload that is a view into that chunk", () => {
    const bytes = Frame.encodeToBytes([Frame.make(0x0100, 1, patterned(50, 1)), Frame.make(0x0100, 2, patterned(70, 2))])
    const frames = Result.getOrThrow(decoder().push(bytes))
    assert.strictEqual(frames.length, 2)
    assert.strictEqual(frames[1]!.payload.buffer, bytes.buffer)
    assert.strictEqual(frames[1]!.payload.byteOffset, bytes.byteOffset + 2 * Frame.HeaderBytes + 50)
  })

  it("buffered counts the bytes of the incomplete frame, header included", () => {
    const bytes = Frame.encodeToBytes([Frame.make(0x0100, 1, patterned(20, 1)), Frame.make(0x0100, 2, patterned(20, 2))])
    const d = decoder()
    assert.strictEqual(d.buffered, 0)
    d.push(bytes.subarray(0, 4))
    assert.strictEqual(d.buffered, 4)
    d.push(bytes.subarray(4, 15))
    assert.strictEqual(d.buffered, 15)
    d.push(bytes.subarray(15, 33))
    assert.strictEqual(d.buffered, 3)
    d.push(bytes.subarray(33))
    assert.strictEqual(d.buffered, 0)
  })

  it("a length above the maximum fails with FrameTooLarge as soon as the header arrives", () => {
    const d = decoder(1024)
    const oversized = header(6 + 1025, Frame.Type.Echo, 1)
    for (let i = 0; i < Frame.HeaderBytes - 1; i++) {
      assert.deepStrictEqual(d.push(oversized.subarray(i, i + 1)), Result.succeed([]))
    }
    const result = d.push(oversized.subarray(Frame.HeaderBytes - 1))
    assert.deepStrictEqual(result, Result.fail(new Frame.FrameTooLarge({ length: 6 + 1025, max: 1024 })))
  })

  it("a payload of exactly the maximum is accepted", () => {
    const frame = Frame.make(Frame.Type.Echo, 1, patterned(1024, 3))
    const outcome = decodeAll(() => decoder(1024), [Frame.encodeToBytes([frame])], 1024)
    assert.isUndefined(outcome.error)
    assertSameFrames(outcome.frames, [frame])
  })

  it("a length below 6 fails with MalformedFrame", () => {
    for (let length = 0; length < 6; length++) {
      const result = decoder().push(header(length, Frame.Type.Echo, 1))
      assert.isTrue(Result.isFailure(result), `length ${length}`)
      assert.strictEqual(Result.isFailure(result) && result.failure._tag, "MalformedFrame")
    }
  })

  it("an unknown request type fails with UnknownFrameType before its payload arrives", () => {
    const result = decoder().push(header(6 + 100, 0x0300, 1))
    assert.deepStrictEqual(result, Result.fail(new Frame.UnknownFrameType({ type: 0x0300 })))
  })

  it("the response form of an unknown request type fails with UnknownFrameType", () => {
    const result = decoder().push(header(6, 0x8300, 1))
    assert.deepStrictEqual(result, Result.fail(new Frame.UnknownFrameType({ type: 0x8300 })))
  })

  it("control types are accepted even by a decoder that knows no request type", () => {
    const frames = [0x0000, 0x0001, 0x0002, 0x0003, 0x00ff, 0x8001, 0x80ff].map((type, i) =>
      Frame.make(type, i, patterned(i, i)))
    const outcome = decodeAll(() => decoder(1024, new Set()), [Frame.encodeToBytes(frames)], 1024)
    assert.isUndefined(outcome.error)
    assertSameFrames(outcome.frames, frames)
    const echo = decoder(1024, new Set()).push(header(6, Frame.Type.Echo, 1))
    assert.deepStrictEqual(echo, Result.fail(new Frame.UnknownFrameType({ type: Frame.Type.Echo })))
  })

  it("a stream ending inside a header or a payload fails end() with TruncatedFrame", () => {
    const bytes = Frame.encodeToBytes([Frame.make(0x0100, 1, patterned(20, 1))])
    const insideHeader = decoder()
    insideHeader.push(bytes.subarray(0, 7))
    assert.deepStrictEqual(insideHeader.end(), Result.fail(new Frame.TruncatedFrame({ buffered: 7, needed: 10 })))
    const insidePayload = decoder()
    insidePayload.push(bytes.subarray(0, 25))
    assert.deepStrictEqual(insidePayload.end(), Result.fail(new Frame.TruncatedFrame({ buffered: 25, needed: 30 })))
  })

  it("end() after whole frames, or after nothing, succeeds", () => {
    const d = decoder()
    assert.isTrue(Result.isSuccess(d.end()))
    const bytes = Frame.encodeToBytes([Frame.make(0x0100, 1, patterned(20, 1)), Frame.make(0x8100, 1, new Uint8Array(0))])
    assert.strictEqual(Result.getOrThrow(d.push(bytes)).length, 2)
    assert.isTrue(Result.isSuccess(d.end()))
  })

  it("a poisoned decoder returns the same error for every later push and end", () => {
    const d = decoder()
    const first = d.push(header(3, Frame.Type.Echo, 1))
    assert.isTrue(Result.isFailure(first))
    const valid = Frame.encodeToBytes([Frame.make(Frame.Type.Echo, 2, patterned(5, 1))])
    assert.strictEqual(d.push(valid), first)
    assert.strictEqual(d.push(new Uint8Array(0)), first)
    assert.strictEqual<unknown>(d.end(), first)
  })

  it("a push of something that is not a Uint8Array fails with MalformedFrame instead of throwing", () => {
    const result = decoder().push("not bytes" as unknown as Uint8Array)
    assert.strictEqual(Result.isFailure(result) && result.failure._tag, "MalformedFrame")
  })

  it.effect("the default FrameTypes are core's request types, and an override replaces them", () =>
    Effect.gen(function*() {
      const byDefault = yield* Frame.makeDecoder
      assert.isTrue(Result.isSuccess(byDefault.push(header(6, Frame.Type.Echo, 1))))
      assert.isTrue(Result.isFailure(byDefault.push(header(6, 0x0200, 1))))
      const overridden = yield* Frame.makeDecoder.pipe(Effect.provideService(Frame.FrameTypes, new Set([0x0200])))
      assert.isTrue(Result.isSuccess(overridden.push(header(6, 0x0200, 1))))
      assert.isTrue(Result.isFailure(overridden.push(header(6, Frame.Type.Echo, 1))))
    }))

  it.effect("FrameLimits sets the decoder's maximum payload", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Frame.FrameLimits).maxPayloadBytes, 64 * 1024 * 1024)
      const d = yield* Frame.makeDecoder.pipe(Effect.provideService(Frame.FrameLimits, { maxPayloadBytes: 100 }))
      assert.deepStrictEqual(
        d.push(header(6 + 101, Frame.Type.Echo, 1)),
        Result.fail(new Frame.FrameTooLarge({ length: 107, max: 100 }))
      )
    }))
})

describe("Frame Decoder fuzz: it never throws and fails only with a FrameError", () => {
  it.prop(
    "random bytes in random chunks",
    { bytes: Arbitrary.array(int(0, 255), { maxLength: 300 }), cuts, permissive: Arbitrary.schema(Schema.Boolean) },
    ({ bytes, cuts, permissive }) => {
      const data = Uint8Array.from(bytes)
      // a permissive decoder accepts every type and length, so random bytes get past the header checks
      const max = permissive ? 0xffff_ffff : 1024
      const make = () => permissive ? decoder(max, everyType) : decoder(max)
      const whole = decodeAll(make, [data], max)
      assertChunkingIndependent(whole, decodeAll(make, split(data, cuts), max))
    },
    seeded(3000)
  )

  it.prop(
    "a valid encoding cut at every position gives the whole frames before the cut, then TruncatedFrame",
    { batch: batchOf(40, 4), cuts },
    ({ batch, cuts }) => {
      const frames = batch.map(toFrame)
      const bytes = Frame.encodeToBytes(frames)
      const ends = frames.map((_, i) => Frame.encodeToBytes(frames.slice(0, i + 1)).length)
      for (let cut = 0; cut <= bytes.length; cut++) {
        const prefix = bytes.subarray(0, cut)
        const outcome = decodeAll(decoder, split(prefix, cuts), 256 * 1024)
        const complete = ends.filter((end) => end <= cut).length
        assertSameFrames(outcome.frames, frames.slice(0, complete))
        const frameStart = complete === 0 ? 0 : ends[complete - 1]!
        if (cut === frameStart) {
          assert.isUndefined(outcome.error)
        } else {
          const buffered = cut - frameStart
          const needed = buffered < Frame.HeaderBytes ? Frame.HeaderBytes : ends[complete]! - frameStart
          assert.deepStrictEqual(errorFields(outcome.error), { _tag: "TruncatedFrame", buffered, needed })
        }
      }
    },
    seeded(300)
  )

  it.prop(
    "a valid encoding of large frames cut at a random position in random chunks",
    { batch: batchOf(200 * 1024, 4), cut: u32, cuts },
    ({ batch, cut, cuts }) => {
      const bytes = Frame.encodeToBytes(batch.map(toFrame))
      const prefix = bytes.subarray(0, cut % (bytes.length + 1))
      const whole = decodeAll(decoder, [prefix], 256 * 1024)
      assert.isTrue(whole.error === undefined || whole.error._tag === "TruncatedFrame")
      assertChunkingIndependent(whole, decodeAll(decoder, split(prefix, cuts), 256 * 1024))
    },
    seeded(300)
  )

  it.prop(
    "a valid encoding with random bits flipped, in random chunks",
    { batch: batchOf(300, 6), flips: Arbitrary.array(u32, { minLength: 1, maxLength: 8 }), cuts },
    ({ batch, flips, cuts }) => {
      const bytes = Frame.encodeToBytes(batch.map(toFrame))
      if (bytes.length === 0) return
      for (const flip of flips) {
        const bit = flip % (bytes.length * 8)
        bytes[bit >>> 3]! ^= 1 << (bit & 7)
      }
      const whole = decodeAll(() => decoder(1024), [bytes], 1024)
      assertChunkingIndependent(whole, decodeAll(() => decoder(1024), split(bytes, cuts), 1024))
    },
    seeded(3000)
  )
})
