import { assert, describe, it } from "@effect/vitest"
import { createHmac } from "node:crypto"
import * as HmacSha256 from "../src/internal/hmacSha256.ts"

// deterministic bytes of a length, from a seed
const bytesOf = (length: number, seed: number) => Uint8Array.from({ length }, (_, i) => (i * 131 + seed * 17 + (i >> 3)) & 0xff)

describe("HMAC-SHA256 in plain code", () => {
  it("gives the bytes Node's createHmac gives, for keys and messages of every length around the block boundaries", () => {
    for (const keyLength of [0, 1, 31, 32, 63, 64, 65, 128, 200]) {
      const key = bytesOf(keyLength, keyLength)
      const seal = HmacSha256.make(key)
      for (let length = 0; length <= 260; length++) {
        const data = bytesOf(length, length + keyLength)
        const out = new Uint8Array(40).fill(0xaa)
        seal(data, out, 4, 32)
        const expected = createHmac("sha256", key).update(data).digest()
        assert.deepStrictEqual([...out.subarray(4, 36)], [...expected], `key of ${keyLength}, data of ${length}`)
        // the bytes around the output are left alone
        assert.deepStrictEqual([...out.subarray(0, 4), ...out.subarray(36)], [0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa])
      }
    }
  })

  it("writes only the bytes asked for: a truncated seal is the seal's prefix", () => {
    const seal = HmacSha256.make(bytesOf(32, 1))
    const data = bytesOf(80, 2)
    const whole = new Uint8Array(32)
    const truncated = new Uint8Array(20).fill(0xaa)
    seal(data, whole, 0, 32)
    seal(data, truncated, 0, 16)
    assert.deepStrictEqual([...truncated.subarray(0, 16)], [...whole.subarray(0, 16)])
    assert.deepStrictEqual([...truncated.subarray(16)], [0xaa, 0xaa, 0xaa, 0xaa])
  })
})
