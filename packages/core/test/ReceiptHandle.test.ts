import { Buffer } from "node:buffer"
import { createHmac } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as ReceiptHandle from "../src/ReceiptHandle.ts"

const handle = Schema.decodeUnknownSync(ReceiptHandle.ReceiptHandle)({
  brokerName: "broker-a",
  topic: "orders",
  queueId: 3,
  queueOffset: 1_234_567,
  popTime: 1_735_689_600_000,
  invisibleUntil: 1_735_689_630_000,
  fencingEpoch: 7,
  deliveryAttempt: 2
})

const decodeReason = (text: string) =>
  ReceiptHandle.decode(text).pipe(Effect.flip, Effect.map((error) => error.reason))

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const flipped = Uint8Array.from(bytes)
  flipped[bit >> 3]! ^= 1 << (bit & 7)
  return flipped
}

const toText = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url")
const toBytes = (text: string): Uint8Array => Buffer.from(text, "base64url")

describe("ReceiptHandle", () => {
  it.effect("a decoded handle carries exactly the fields that were encoded", () =>
    Effect.gen(function*() {
      const text = yield* ReceiptHandle.encode(handle)
      assert.match(text, /^[A-Za-z0-9_-]+$/)
      assert.deepStrictEqual(yield* ReceiptHandle.decode(text), handle)
    }))

  it.effect("peek reads which broker and where a handle points, without its seal, and nothing from text that is no handle", () =>
    Effect.gen(function*() {
      const text = yield* ReceiptHandle.encode(handle)
      assert.deepStrictEqual(ReceiptHandle.peek(text), { brokerName: "broker-a", topic: "orders", queueId: 3, queueOffset: 1_234_567 })
      const tampered = toBytes(text)
      tampered[tampered.length - 1]! ^= 1
      assert.deepStrictEqual(ReceiptHandle.peek(toText(tampered)), { brokerName: "broker-a", topic: "orders", queueId: 3, queueOffset: 1_234_567 }, "no seal check")
      assert.isUndefined(ReceiptHandle.peek(""))
      assert.isUndefined(ReceiptHandle.peek("not-a-handle"))
      assert.isUndefined(ReceiptHandle.peek(toText(toBytes(text).subarray(0, 20))))
      // placeOf is peek's queue and offset, and likewise nothing from text that is no handle, even
      // right after a longer handle was read
      assert.deepStrictEqual(ReceiptHandle.placeOf(text), { queueId: 3, queueOffset: 1_234_567 })
      assert.isUndefined(ReceiptHandle.placeOf(toText(toBytes(text).subarray(0, toBytes(text).length - 1))))
      assert.isUndefined(ReceiptHandle.placeOf("not-a-handle"))
    }))

  it.effect("every field survives at its extremes", () =>
    Effect.gen(function*() {
      const extreme = new ReceiptHandle.ReceiptHandle({
        ...handle,
        brokerName: "é".repeat(127) + "b", // 255 UTF-8 bytes
        topic: handle.topic.padEnd(127, "%") as typeof handle.topic,
        queueId: (2 ** 31 - 1) as typeof handle.queueId,
        queueOffset: Number.MAX_SAFE_INTEGER as typeof handle.queueOffset,
        popTime: Number.MAX_SAFE_INTEGER - 1,
        invisibleUntil: Number.MAX_SAFE_INTEGER,
        fencingEpoch: 0xffff_ffff,
        deliveryAttempt: 0xffff_ffff
      })
      const text = yield* ReceiptHandle.encode(extreme)
      assert.deepStrictEqual(yield* ReceiptHandle.decode(text), extreme)
      assert.deepStrictEqual(ReceiptHandle.peek(text), { brokerName: extreme.brokerName, topic: extreme.topic, queueId: extreme.queueId, queueOffset: extreme.queueOffset })
    }))

  it.effect("every single-bit flip of the encoded bytes is rejected", () =>
    Effect.gen(function*() {
      const bytes = toBytes(yield* ReceiptHandle.encode(handle))
      // A flipped version byte is unsupported, a flipped length byte breaks the layout, any other flip breaks the seal.
      const lengthBytes = [1, 2 + handle.brokerName.length]
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const byte = bit >> 3
        const expected = byte === 0 ? "unsupported-version" : lengthBytes.includes(byte) ? "malformed" : "tampered"
        assert.strictEqual(yield* decodeReason(toText(flipBit(bytes, bit))), expected, `bit ${bit}`)
      }
    }))

  it.effect("every single-bit flip of the text is rejected", () =>
    Effect.gen(function*() {
      const text = yield* ReceiptHandle.encode(handle)
      for (let index = 0; index < text.length; index++) {
        for (let bit = 0; bit < 7; bit++) {
          const flipped = text.slice(0, index) + String.fromCharCode(text.charCodeAt(index) ^ (1 << bit)) + text.slice(index + 1)
          yield* decodeReason(flipped) // fails the test if the flipped text decodes
        }
      }
    }))

  it.effect("an unknown version is unsupported even under a valid MAC", () =>
    Effect.gen(function*() {
      const bytes = toBytes(yield* ReceiptHandle.encode(handle))
      bytes[0] = 2
      const key = Redacted.value(yield* ReceiptHandle.ReceiptHandleKey)
      const sealed = bytes.length - 16
      bytes.set(createHmac("sha256", key).update(bytes.subarray(0, sealed)).digest().subarray(0, 16), sealed)
      assert.strictEqual(yield* decodeReason(toText(bytes)), "unsupported-version")
    }))

  it.effect("the seal is HMAC-SHA256 of the sealed bytes, truncated to 16 bytes, for keys shorter and longer than a block and names of any length", () =>
    Effect.gen(function*() {
      for (const keyLength of [1, 32, 64, 65, 200]) {
        const key = Redacted.make(Uint8Array.from({ length: keyLength }, (_, i) => (i * 31 + keyLength) & 0xff))
        for (const nameLength of [1, 60, 127]) {
          const fields = { ...handle, brokerName: "b".repeat(2 * nameLength), topic: "t".repeat(nameLength) as ReceiptHandle.ReceiptHandle["topic"] }
          const bytes = toBytes(ReceiptHandle.encodeWith(key, fields))
          const sealed = bytes.length - 16
          const expected = createHmac("sha256", Redacted.value(key)).update(bytes.subarray(0, sealed)).digest().subarray(0, 16)
          assert.deepStrictEqual([...bytes.subarray(sealed)], [...expected], `key of ${keyLength}, names of ${nameLength}`)
          const opened = ReceiptHandle.decodeWith(key, ReceiptHandle.encodeWith(key, fields))
          assert.deepStrictEqual({ ...opened }, fields)
        }
      }
    }))

  it.effect("empty, truncated and garbage text is malformed", () =>
    Effect.gen(function*() {
      const text = yield* ReceiptHandle.encode(handle)
      const bad = [
        "",
        text.slice(0, -1),
        text.slice(0, -4),
        text.slice(0, text.length / 2),
        text + "A",
        text + "=",
        `${text.slice(0, 10)}!${text.slice(11)}`,
        "AAAA",
        "not a receipt handle",
        "x".repeat(10_000)
      ]
      for (const candidate of bad) {
        assert.strictEqual(yield* decodeReason(candidate), "malformed", JSON.stringify(candidate.slice(0, 40)))
      }
    }))

  it.effect("a handle sealed under another key is tampered", () =>
    Effect.gen(function*() {
      const text = yield* ReceiptHandle.encode(handle).pipe(
        Effect.provideService(ReceiptHandle.ReceiptHandleKey, Redacted.make(new TextEncoder().encode("another cluster")))
      )
      assert.strictEqual(yield* decodeReason(text), "tampered")
    }))

  it.effect("a handle is valid until invisibleUntil and expired from that millisecond on", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(handle.invisibleUntil - 1)
      assert.strictEqual(yield* ReceiptHandle.checkNotExpired(handle), handle)
      yield* TestClock.adjust(1)
      const expired = yield* Effect.flip(ReceiptHandle.checkNotExpired(handle))
      assert.strictEqual(expired._tag, "ReceiptHandleExpired")
      assert.strictEqual(expired.now, handle.invisibleUntil)
      assert.strictEqual(expired.invisibleUntil, handle.invisibleUntil)
    }))
})
