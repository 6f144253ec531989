import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Random, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as MessageId from "../src/MessageId.ts"

// Built by hand: version 01 | MAC 00:1A:2B:3C:4D:5E | pid 0x5678 | 0x01020304 s | sequence 0xDEADBEEF.
const vector = "01" + "001A2B3C4D5E" + "5678" + "01020304" + "DEADBEEF"
const vectorParts = {
  mac: Uint8Array.of(0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e),
  pid: 0x5678,
  secondsSinceEpoch: 0x01020304,
  sequence: 0xdeadbeef
}

const Byte = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xff }))
const Uint16 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff }))
const Uint32 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff_ffff }))

describe("MessageId format and parse", () => {
  it("formats the hand-built vector exactly", () => {
    assert.strictEqual(MessageId.format(vectorParts), vector)
  })

  it("keeps only the low 16 bits of the pid, as RocketMQ does", () => {
    assert.strictEqual(MessageId.format({ ...vectorParts, pid: 0x1234_5678 }), vector)
  })

  it.effect("parses the hand-built vector into its fields", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* MessageId.parse(vector), vectorParts)
    }))

  it.effect.prop(
    "parsing a formatted id gives back its fields",
    { mac: Schema.Tuple([Byte, Byte, Byte, Byte, Byte, Byte]), pid: Uint16, seconds: Uint32, sequence: Uint32 },
    ({ mac, pid, seconds, sequence }) =>
      Effect.gen(function*() {
        const parts = { mac: Uint8Array.from(mac), pid, secondsSinceEpoch: seconds, sequence }
        const id = MessageId.format(parts)
        assert.match(id, /^01[0-9A-F]{32}$/)
        assert.deepStrictEqual(yield* MessageId.parse(id), parts)
      })
  )

  const malformed: ReadonlyArray<{ readonly rule: string; readonly text: string }> = [
    { rule: "empty", text: "" },
    { rule: "blank", text: " ".repeat(34) },
    { rule: "one character short", text: vector.slice(0, 33) },
    { rule: "one character long", text: vector + "0" },
    { rule: "not hexadecimal", text: vector.slice(0, 33) + "G" },
    { rule: "lower-case hexadecimal", text: vector.toLowerCase() },
    { rule: "an unknown version", text: "02" + vector.slice(2) },
    { rule: "version zero", text: "00" + vector.slice(2) }
  ]

  it.effect.each(malformed)("an id that is $rule is rejected", ({ text }) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(MessageId.parse(text))
      assert.strictEqual(error._tag, "IllegalMessageId")
      assert.strictEqual(error.messageId, text)
      assert.isNotEmpty(error.reason)
      assert.isTrue(Exit.isFailure(Schema.decodeUnknownExit(MessageId.MessageId)(text)), "the schema agrees")
    }))

  it("the schema accepts a well-formed id", () => {
    assert.isTrue(Exit.isSuccess(Schema.decodeUnknownExit(MessageId.MessageId)(vector)))
  })
})

describe("MessageIdGenerator", () => {
  const host = { mac: vectorParts.mac, pid: 4242 }
  const next = MessageId.MessageIdGenerator.use((generator) => generator.next)

  it.effect("ids from one generator are unique, carry the host, and count up from sequence 0", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(MessageId.epochMillis + 90_500)
      const ids = yield* Effect.replicateEffect(next, 1000)
      assert.strictEqual(new Set(ids).size, ids.length)
      for (const [index, id] of ids.entries()) {
        const parts = yield* MessageId.parse(id)
        assert.deepStrictEqual(parts.mac, host.mac)
        assert.strictEqual(parts.pid, host.pid)
        assert.strictEqual(parts.sequence, index)
      }
    }).pipe(Effect.provide(MessageId.MessageIdGenerator.layer(host))))

  it.effect("the time field is the Clock's seconds since 2021-01-01", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(MessageId.epochMillis + 90_999)
      const first = yield* MessageId.parse(yield* next)
      yield* TestClock.adjust("10 seconds")
      const second = yield* MessageId.parse(yield* next)
      assert.strictEqual(first.secondsSinceEpoch, 90)
      assert.strictEqual(second.secondsSinceEpoch, 100)
    }).pipe(Effect.provide(MessageId.MessageIdGenerator.layer(host))))

  it.effect("a host whose MAC is not 6 bytes is a defect", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(next.pipe(Effect.provide(MessageId.MessageIdGenerator.layer({ mac: new Uint8Array(4), pid: 1 }))))
      assert.isTrue(Exit.hasDies(exit))
    }))

  it.effect("the test generator draws its host from Random, so a seed fixes it", () =>
    Effect.gen(function*() {
      const hostOf = (seed: number) =>
        next.pipe(
          Effect.flatMap(MessageId.parse),
          Effect.map(({ mac, pid }) => ({ mac, pid })),
          Effect.provide(Layer.fresh(MessageId.MessageIdGenerator.layerTest)),
          Random.withSeed(seed)
        )
      assert.deepStrictEqual(yield* hostOf(7), yield* hostOf(7))
      assert.notDeepEqual(yield* hostOf(7), yield* hostOf(8))
    }))
})
