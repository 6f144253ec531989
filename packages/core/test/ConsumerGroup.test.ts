import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as ConsumerGroup from "../src/ConsumerGroup.ts"

const second = 1000
const minute = 60 * second
const hour = 60 * minute

describe("ConsumerGroupName", () => {
  const row = (name: string, valid: boolean, label = name) => ({ label, name, valid })
  const names = [
    row("billing", true),
    row("GID_billing-eu_1", true),
    row("%SYS%|group", true),
    row("g".repeat(120), true, "of 120 characters"),
    row("g".repeat(121), false, "of 121 characters"),
    row("", false, "that is empty"),
    row("billing eu", false),
    row("billing.eu", false),
    row("bill\ning", false, "with a newline")
  ]

  it.effect.each(names)("a group name $label is accepted: $valid", ({ name, valid }) =>
    Effect.gen(function*() {
      const validated = yield* Effect.exit(ConsumerGroup.validateName(name))
      assert.strictEqual(Exit.isSuccess(validated), valid)
      assert.strictEqual(
        Exit.isSuccess(Schema.decodeUnknownExit(ConsumerGroup.ConsumerGroupName)(name)),
        valid,
        "the schema agrees"
      )
    }))

  it.effect("a rejected group name is reported with the name and the reason", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ConsumerGroup.validateName("g".repeat(121)))
      assert.strictEqual(error._tag, "IllegalConsumerGroup")
      assert.strictEqual(error.group, "g".repeat(121))
      assert.include(error.reason, "120")
    }))
})

describe("ConsumerGroup settings", () => {
  it.effect("a group constructed or decoded with only a name takes RocketMQ's defaults", () =>
    Effect.gen(function*() {
      const name = yield* ConsumerGroup.validateName("billing")
      const decoded = yield* Schema.decodeUnknownEffect(ConsumerGroup.ConsumerGroup)({ name: "billing" })
      for (const group of [new ConsumerGroup.ConsumerGroup({ name }), decoded]) {
        assert.strictEqual(group.name, "billing")
        assert.strictEqual(group.maxDeliveryAttempts, 17)
        assert.isFalse(group.fifo)
        assert.deepStrictEqual(group.retryPolicy, ConsumerGroup.defaultRetryPolicy)
      }
    }))

  it.effect("decoding rejects an illegal name and fewer than one delivery attempt", () =>
    Effect.gen(function*() {
      const decode = Schema.decodeUnknownExit(ConsumerGroup.ConsumerGroup)
      assert.isTrue(Exit.isFailure(decode({ name: "bad name" })))
      assert.isTrue(Exit.isFailure(decode({ name: "billing", maxDeliveryAttempts: 0 })))
      assert.isTrue(Exit.isSuccess(decode({ name: "billing", maxDeliveryAttempts: 1, fifo: true })))
    }))

  it("the default policy is RocketMQ's delay-level table", () => {
    assert.deepStrictEqual(ConsumerGroup.defaultRetryPolicy, {
      _tag: "Customized",
      levelsMillis: [
        1 * second, 5 * second, 10 * second, 30 * second,
        1 * minute, 2 * minute, 3 * minute, 4 * minute, 5 * minute, 6 * minute, 7 * minute, 8 * minute, 9 * minute,
        10 * minute, 20 * minute, 30 * minute, 1 * hour, 2 * hour
      ]
    })
  })
})

describe("retryDelayMillis", () => {
  const customized: ReadonlyArray<readonly [attempt: number, delay: number]> = [
    [1, 10 * second],
    [2, 30 * second],
    [3, 1 * minute],
    [4, 2 * minute],
    [12, 10 * minute],
    [13, 20 * minute],
    [14, 30 * minute],
    [15, 1 * hour],
    [16, 2 * hour],
    [17, 2 * hour],
    [1000, 2 * hour]
  ]

  it.each(customized)("under the default policy, delivery attempt %i is retried after %i ms", (attempt, delay) => {
    assert.strictEqual(ConsumerGroup.retryDelayMillis(ConsumerGroup.defaultRetryPolicy, attempt), delay)
  })

  it("a customized table shorter than three levels stays on its last level", () => {
    const policy: ConsumerGroup.RetryPolicy = { _tag: "Customized", levelsMillis: [100, 200] }
    assert.deepStrictEqual([1, 2, 5].map((attempt) => ConsumerGroup.retryDelayMillis(policy, attempt)), [200, 200, 200])
  })

  const exponential: ReadonlyArray<readonly [attempt: number, delay: number]> = [
    [1, 5 * second],
    [2, 10 * second],
    [3, 20 * second],
    [11, 5120 * second],
    [12, 2 * hour],
    [10_000, 2 * hour]
  ]

  it.each(exponential)("under the default exponential policy, delivery attempt %i is retried after %i ms", (attempt, delay) => {
    assert.strictEqual(ConsumerGroup.retryDelayMillis(ConsumerGroup.defaultExponentialRetryPolicy, attempt), delay)
  })

  it("an attempt below 1 is treated as the first", () => {
    for (const policy of [ConsumerGroup.defaultRetryPolicy, ConsumerGroup.defaultExponentialRetryPolicy]) {
      assert.strictEqual(ConsumerGroup.retryDelayMillis(policy, 0), ConsumerGroup.retryDelayMillis(policy, 1))
      assert.strictEqual(ConsumerGroup.retryDelayMillis(policy, -3), ConsumerGroup.retryDelayMillis(policy, 1))
    }
  })
})
