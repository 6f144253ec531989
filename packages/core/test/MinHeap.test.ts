import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { MinHeap } from "../src/index.ts"

describe("MinHeap", () => {
  it("pops items smallest first, whatever the insertion order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), (values) => {
        const heap = new MinHeap.MinHeap<number>((a, b) => a - b)
        for (const value of values) heap.insert(value)
        const popped: Array<number> = []
        while (heap.size > 0) popped.push(heap.pop()!)
        assert.deepStrictEqual(popped, [...values].sort((a, b) => a - b))
      }),
      { seed: 42, numRuns: 500 }
    )
  })

  it("peek shows the smallest without removing it; an empty heap has nothing", () => {
    const heap = new MinHeap.MinHeap<string>((a, b) => a.localeCompare(b))
    assert.isUndefined(heap.peek())
    assert.isUndefined(heap.pop())
    heap.insert("b")
    heap.insert("a")
    assert.strictEqual(heap.peek(), "a")
    assert.strictEqual(heap.size, 2)
  })
})
