// Tenant water levels: a namespace over its quota is throttled, the others are not.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Quotas } from "../src/index.ts"

// sends of one message each, at one instant: how many pass
const burst = (quotas: Quotas.Quotas, namespace: string, count: number, bytes = 1) =>
  Effect.gen(function*() {
    let passed = 0
    let refusal: Quotas.Throttled | undefined
    for (let i = 0; i < count; i++) {
      const admission = yield* quotas.admitSend(namespace, [bytes])
      if (admission.admitted === 1) passed++
      else refusal = admission.refusal
    }
    return { passed, refusal }
  })

describe("Quotas", () => {
  it.effect("a noisy namespace is throttled at its rate while another namespace's sends all pass", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 10 } })
      const noisy = yield* burst(quotas, "noisy", 30)
      assert.strictEqual(noisy.passed, 10)
      assert.deepStrictEqual([noisy.refusal?.namespace, noisy.refusal?.limit, noisy.refusal?.retryAfterMillis], ["noisy", "10 messages/s", 100])
      assert.strictEqual((yield* burst(quotas, "quiet", 10)).passed, 10)
      // the bucket refills with the clock: half a second is five sends
      yield* TestClock.adjust("500 millis")
      assert.strictEqual((yield* burst(quotas, "noisy", 30)).passed, 5)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* burst(quotas, "noisy", 30)).passed, 10)
    }))

  it.effect("a namespace named in the settings has its own limits; bytes count as well as messages", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 1000 }, namespaces: { small: { bytesPerSecond: 1000 } } })
      const small = yield* burst(quotas, "small", 10, 300)
      assert.strictEqual(small.passed, 3)
      assert.strictEqual(small.refusal?.limit, "1000 bytes/s")
      assert.strictEqual((yield* burst(quotas, "other", 10, 300)).passed, 10)
    }))

  it.effect("a batch of sends is taken in order while the bucket holds enough: the rest is refused, each message on its own", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 10 } })
      const first = yield* quotas.admitSend("", Array.from({ length: 25 }, () => 0))
      assert.strictEqual(first.admitted, 10)
      assert.strictEqual(first.refusal?.retryAfterMillis, 100)
      // the bucket refills with the clock: 300 ms is three more
      yield* TestClock.adjust("300 millis")
      assert.strictEqual((yield* quotas.admitSend("", Array.from({ length: 15 }, () => 0))).admitted, 3)
    }))

  it.effect("a message larger than a full bytes bucket passes when the bucket is full, and the next ones wait for the refill", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { bytesPerSecond: 1000 } })
      assert.strictEqual((yield* quotas.admitSend("", [2500])).admitted, 1)
      const refused = yield* quotas.admitSend("", [1])
      // 1500 below zero: 1.501 s until one byte
      assert.deepStrictEqual([refused.admitted, refused.refusal?.retryAfterMillis], [0, 1501])
      yield* TestClock.adjust("1501 millis")
      assert.strictEqual((yield* quotas.admitSend("", [1])).admitted, 1)
    }))

  it.effect("a receive is refused while the namespace has nothing left, and what it got is taken afterwards", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 10 } })
      yield* quotas.admitReceive("shop")
      yield* quotas.received("shop", 32, 0)
      assert.strictEqual((yield* Effect.flip(quotas.admitReceive("shop")))._tag, "Throttled")
      assert.strictEqual((yield* quotas.admitSend("shop", [0])).refusal?._tag, "Throttled")
      yield* TestClock.adjust("3 seconds")
      yield* quotas.admitReceive("shop")
    }))

  it.effect("without limits nothing is ever refused", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* burst(Quotas.make(), "any", 10_000, 1_000_000)).passed, 10_000)
    }))

  it("a namespace may have as many clients as its connections quota, and the default applies to any other", () => {
    const quotas = Quotas.make({ default: { connections: 3 }, namespaces: { big: { connections: 100 } } })
    assert.isUndefined(quotas.admitConnection("shop", 2))
    assert.strictEqual(quotas.admitConnection("shop", 3)?.limit, "3 connections")
    assert.isUndefined(quotas.admitConnection("big", 99))
    assert.isUndefined(Quotas.make().admitConnection("any", 1_000_000))
  })
})
