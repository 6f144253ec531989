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
      const result = yield* Effect.result(quotas.admitSend(namespace, 1, bytes))
      if (result._tag === "Success") passed++
      else refusal = result.failure
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

  it.effect("a send larger than a full bucket passes when the bucket is full, and the next ones wait for the refill", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 10 } })
      yield* quotas.admitSend("", 25, 0)
      const refused = yield* Effect.flip(quotas.admitSend("", 1, 0))
      // 15 below zero: 1.6 s until one token
      assert.strictEqual(refused.retryAfterMillis, 1600)
      yield* TestClock.adjust("1600 millis")
      yield* quotas.admitSend("", 1, 0)
    }))

  it.effect("a receive is refused while the namespace has nothing left, and what it got is taken afterwards", () =>
    Effect.gen(function*() {
      const quotas = Quotas.make({ default: { messagesPerSecond: 10 } })
      yield* quotas.admitReceive("shop")
      yield* quotas.received("shop", 32, 0)
      assert.strictEqual((yield* Effect.flip(quotas.admitReceive("shop")))._tag, "Throttled")
      assert.strictEqual((yield* Effect.flip(quotas.admitSend("shop", 1, 0)))._tag, "Throttled")
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
