// Request slots: a request holds its slot until it is answered or its lease runs out, and a slot
// freed by a lease is not freed again by the answer that comes later.
import { assert, describe, it } from "@effect/vitest"
import { RequestSlots } from "../src/index.ts"

describe("RequestSlots", () => {
  it("at most `max` requests hold a slot; an answer frees its slot", () => {
    const slots = new RequestSlots.RequestSlots(2)
    const first = slots.start(0)
    slots.start(0)
    assert.isFalse(slots.free)
    assert.isTrue(slots.end(first))
    assert.isTrue(slots.free)
    assert.strictEqual(slots.out, 1)
  })

  it("without a lease nothing expires", () => {
    const slots = new RequestSlots.RequestSlots(1)
    slots.start(0)
    assert.strictEqual(slots.expire(1_000_000), Number.POSITIVE_INFINITY)
    assert.isFalse(slots.free)
  })

  it("a lease frees the slot of a request unanswered that long; the request stays out until answered", () => {
    const slots = new RequestSlots.RequestSlots(1, 5_000)
    const lost = slots.start(1_000)
    // the next lease runs out at 6 s
    assert.strictEqual(slots.expire(5_999), 6_000)
    assert.isFalse(slots.free)
    assert.strictEqual(slots.expire(6_000), Number.POSITIVE_INFINITY)
    assert.isTrue(slots.free)
    assert.strictEqual(slots.out, 1)
    // a later request takes the slot; the lost one's answer frees nothing more
    const next = slots.start(6_000)
    assert.isFalse(slots.end(lost))
    assert.isFalse(slots.free)
    assert.isTrue(slots.end(next))
    assert.strictEqual(slots.holding, 0)
  })

  it("the next expiry is the oldest held slot's", () => {
    const slots = new RequestSlots.RequestSlots(3, 100)
    slots.start(10)
    slots.start(20)
    slots.start(30)
    assert.strictEqual(slots.expire(110), 120)
    assert.strictEqual(slots.holding, 2)
  })
})
