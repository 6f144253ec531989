// The decoder under fast-check: whatever bytes arrive, in whatever chunks, it answers with frames or
// with one of its typed errors, and never throws.
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import * as Frame from "../src/Frame.ts"

const errorTags = new Set(["FrameTooLarge", "UnknownFrameType", "MalformedFrame", "TruncatedFrame"])
const known = new Set([Frame.Type.Echo])
const runs = { seed: 42, numRuns: 2_000 }

/** Feeds `bytes` in chunks cut at `cuts`, then ends; returns every outcome. */
const feed = (bytes: Uint8Array, cuts: ReadonlyArray<number>) => {
  const decoder = new Frame.Decoder({ maxPayloadBytes: 1 << 16, known })
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const outcomes: Array<Result.Result<unknown, Frame.FrameError>> = []
  let from = 0
  for (const to of [...points, bytes.length]) {
    outcomes.push(decoder.push(bytes.subarray(from, to)))
    from = to
  }
  outcomes.push(decoder.end())
  return outcomes
}

const onlyTypedOutcomes = (outcomes: ReadonlyArray<Result.Result<unknown, Frame.FrameError>>) =>
  outcomes.every((outcome) => Result.isSuccess(outcome) || errorTags.has(outcome.failure._tag))

const frameArb = fc.record({
  type: fc.constantFrom(Frame.Type.Echo, Frame.responseType(Frame.Type.Echo), Frame.Control.Heartbeat),
  correlation: fc.nat({ max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 300 })
}).map(({ correlation, payload, type }) => Frame.make(type, correlation, payload))

const encoded = fc.array(frameArb, { minLength: 1, maxLength: 8 }).map(Frame.encodeToBytes)
const cuts = fc.array(fc.nat(), { maxLength: 12 })

describe("Frame decoder fuzzing (fast-check)", () => {
  it("random bytes in random chunks give frames or a typed error, never a throw", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), cuts, (bytes, at) => onlyTypedOutcomes(feed(bytes, at))), runs)
  })

  it("a valid encoding truncated anywhere gives frames or a typed error, never a throw", () => {
    fc.assert(
      fc.property(encoded, fc.nat(), cuts, (bytes, length, at) => onlyTypedOutcomes(feed(bytes.subarray(0, length % (bytes.length + 1)), at))),
      runs
    )
  })

  it("a valid encoding with flipped bits gives frames or a typed error, never a throw", () => {
    fc.assert(
      fc.property(encoded, fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), cuts, (bytes, flips, at) => {
        const damaged = Uint8Array.from(bytes)
        for (const flip of flips) {
          const bit = flip % (damaged.length * 8)
          damaged[bit >> 3] = damaged[bit >> 3]! ^ (1 << (bit & 7))
        }
        return onlyTypedOutcomes(feed(damaged, at))
      }),
      runs
    )
  })

  it("an undamaged encoding decodes to the same frames however it is chunked", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), cuts, (frames, at) => {
        const outcomes = feed(Frame.encodeToBytes(frames), at)
        assert.isTrue(outcomes.every(Result.isSuccess))
        const decoded = outcomes.flatMap((o) => Result.isSuccess(o) && Array.isArray(o.success) ? o.success as Array<Frame.Frame> : [])
        assert.deepStrictEqual(decoded.map((f) => [f.type, f.correlation, [...f.payload]]), frames.map((f) => [f.type, f.correlation, [...f.payload]]))
      }),
      { seed: 42, numRuns: 500 }
    )
  })
})
