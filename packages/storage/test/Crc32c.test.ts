import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Crc32c } from "../src/index.ts"

const ascii = (text: string) => new TextEncoder().encode(text)

// The definition, one bit at a time: the reference the table-driven code must agree with.
const bitwise = (bytes: Uint8Array) => {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

describe("Crc32c", () => {
  it("matches the published check values", () => {
    assert.strictEqual(Crc32c.crc32c(ascii("123456789")), 0xe3069283)
    assert.strictEqual(Crc32c.crc32c(new Uint8Array(0)), 0)
    assert.strictEqual(Crc32c.crc32c(ascii("The quick brown fox jumps over the lazy dog")), 0x22620404)
  })

  it("matches the RFC 3720 (iSCSI) test vectors", () => {
    assert.strictEqual(Crc32c.crc32c(new Uint8Array(32)), 0x8a9136aa)
    assert.strictEqual(Crc32c.crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43)
    assert.strictEqual(Crc32c.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e)
    assert.strictEqual(Crc32c.crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c)
  })

  it("the result is an unsigned 32-bit integer", () => {
    // 0xE3069283 has its top bit set: a signed result would be negative
    const crc = Crc32c.crc32c(ascii("123456789"))
    assert.isAbove(crc, 0x7fffffff)
    assert.strictEqual(crc, crc >>> 0)
  })

  it("agrees with the bit-at-a-time definition at every length and offset", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (data, offset) => {
        // an unaligned view exercises the same code as a record sliced out of a larger read
        const shifted = new Uint8Array(data.length + offset).subarray(offset)
        shifted.set(data)
        return Crc32c.crc32c(shifted) === bitwise(data)
      }),
      { seed: 3720, numRuns: 500 }
    )
  })

  it("continued from a previous result, it equals the checksum of the whole", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (head, tail) => {
        const whole = new Uint8Array(head.length + tail.length)
        whole.set(head)
        whole.set(tail, head.length)
        return Crc32c.crc32c(tail, Crc32c.crc32c(head)) === Crc32c.crc32c(whole)
      }),
      { seed: 42, numRuns: 500 }
    )
  })

  it("detects any single flipped bit", () => {
    const record = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff)
    const crc = Crc32c.crc32c(record)
    for (let bit = 0; bit < record.length * 8; bit++) {
      const corrupted = record.slice()
      corrupted[bit >>> 3]! ^= 1 << (bit & 7)
      assert.notStrictEqual(Crc32c.crc32c(corrupted), crc)
    }
  })

  it("the native implementation loads here and agrees with the portable one on any input", () => {
    assert.isTrue(Crc32c.isNative, "@node-rs/crc32 should load on this machine")
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 5000 }), fc.nat(), (bytes, initial) => {
        const seed = initial >>> 0
        return Crc32c.crc32c(bytes, seed) === Crc32c.crc32cPortable(bytes, seed)
      }),
      { seed: 42, numRuns: 500 }
    )
  })
})
