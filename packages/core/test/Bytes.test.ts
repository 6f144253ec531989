import { assert, describe, it } from "@effect/vitest"
import { Bytes } from "../src/index.ts"

describe("Bytes", () => {
  it("hands out buffers of the length asked that never overlap while they live, small ones sharing slabs", () => {
    const sizes = Array.from({ length: 2_000 }, (_, i) => (i * 7919) % 700)
    const buffers = sizes.map((size, i) => Bytes.allocUnsafe(size).fill(i & 0xff))
    buffers.forEach((bytes, i) => {
      assert.strictEqual(bytes.length, sizes[i])
      assert.isTrue(bytes.every((byte) => byte === (i & 0xff)), `buffer ${i} was overwritten`)
    })
    const shared = new Set(buffers.map((bytes) => bytes.buffer))
    assert.isBelow(shared.size, buffers.length / 10)
  })

  it("gives a request over a quarter of a slab a buffer of its own, and plain Uint8Arrays whose slice copies", () => {
    const large = Bytes.allocUnsafe(16 * 1024 + 1)
    assert.strictEqual(large.byteOffset, 0)
    assert.strictEqual(large.buffer.byteLength, 16 * 1024 + 1)
    const small = Bytes.allocUnsafe(16)
    assert.strictEqual(Object.getPrototypeOf(small), Uint8Array.prototype)
    small.fill(1)
    const copy = small.slice()
    copy[0] = 9
    assert.strictEqual(small[0], 1)
  })

  it("alloc zero-fills; viewOf sees exactly the bytes, where they lie in their slab", () => {
    Bytes.allocUnsafe(3).fill(0xff)
    const zeroed = Bytes.alloc(40)
    assert.isTrue(zeroed.every((byte) => byte === 0))
    const view = Bytes.viewOf(zeroed)
    assert.strictEqual(view.byteLength, 40)
    view.setUint32(0, 0x01020304)
    assert.deepStrictEqual([...zeroed.subarray(0, 4)], [1, 2, 3, 4])
  })

  it("kept bytes never share a slab with bytes that pass through; keep copies into them", () => {
    const passing = Array.from({ length: 100 }, () => Bytes.allocUnsafe(100))
    const kept = Array.from({ length: 100 }, () => Bytes.allocKept(100))
    const source = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
    const copy = Bytes.keep(source.subarray(10, 20))
    const passingBuffers = new Set(passing.map((bytes) => bytes.buffer))
    assert.isTrue([...kept, copy].every((bytes) => !passingBuffers.has(bytes.buffer)))
    assert.deepStrictEqual([...copy], [...source.subarray(10, 20)])
    assert.notStrictEqual(copy.buffer, source.buffer)
  })
})
