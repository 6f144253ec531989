import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import type { ConsumerGroupName } from "../src/ConsumerGroup.ts"
import * as Topic from "../src/Topic.ts"

interface Row {
  readonly label: string
  readonly name: string
  readonly valid: boolean
}

const row = (name: string, valid: boolean, label = name): Row => ({ label, name, valid })

const topicNames: ReadonlyArray<Row> = [
  row("orders", true),
  row("Orders_2024-eu", true),
  row("%RETRY%group_orders", true),
  row("a|b", true),
  row("x".repeat(127), true, "of 127 characters"),
  row("x".repeat(128), false, "of 128 characters"),
  row("", false, "that is empty"),
  row("with space", false),
  row("dotted.name", false),
  row("slash/name", false),
  row("naïve", false),
  row("tab\tname", false, "with a tab")
]

describe("TopicName", () => {
  it.effect.each(topicNames)("a topic name $label is accepted: $valid", ({ name, valid }) =>
    Effect.gen(function*() {
      const validated = yield* Effect.exit(Topic.validateName(name))
      assert.strictEqual(Exit.isSuccess(validated), valid)
      assert.strictEqual(Exit.isSuccess(Schema.decodeUnknownExit(Topic.TopicName)(name)), valid, "the schema agrees")
    }))

  it.effect("a rejected topic name is reported with the name and the reason", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Topic.validateName("x".repeat(128)))
      assert.strictEqual(error._tag, "IllegalTopicName")
      assert.strictEqual(error.topic, "x".repeat(128))
      assert.include(error.reason, "127")
    }))
})

describe("Namespace", () => {
  const namespaces: ReadonlyArray<Row> = [
    row("", true, "that is empty"),
    row("MQ_INST_1380156306793859_BXxxxxxx", true),
    row("rmq-cn-7mz3vqbkb01", true),
    row("n".repeat(64), true, "of 64 characters"),
    row("n".repeat(65), false, "of 65 characters"),
    row("tenant%a", false),
    row("tenant|a", false),
    row("tenant a", false)
  ]

  it.effect.each(namespaces)("a namespace $label is accepted: $valid", ({ name: namespace, valid }) =>
    Effect.gen(function*() {
      const validated = yield* Effect.exit(Topic.validateNamespace(namespace))
      assert.strictEqual(Exit.isSuccess(validated), valid)
      assert.strictEqual(Exit.isSuccess(Schema.decodeUnknownExit(Topic.Namespace)(namespace)), valid, "the schema agrees")
    }))

  it.effect("a rejected namespace is reported with the namespace and the reason", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Topic.validateNamespace("tenant%a"))
      assert.strictEqual(error._tag, "IllegalNamespace")
      assert.strictEqual(error.namespace, "tenant%a")
      assert.isNotEmpty(error.reason)
    }))

  it("the default namespace is the empty one", () => {
    assert.strictEqual(Topic.defaultNamespace, "")
  })
})

describe("TopicKind", () => {
  it("decodes exactly the five RocketMQ topic kinds", () => {
    for (const kind of ["NORMAL", "FIFO", "DELAY", "TRANSACTION", "PRIORITY"]) {
      assert.isTrue(Exit.isSuccess(Schema.decodeUnknownExit(Topic.TopicKind)(kind)), kind)
    }
    for (const kind of ["normal", "LITE", "MIXED", ""]) {
      assert.isTrue(Exit.isFailure(Schema.decodeUnknownExit(Topic.TopicKind)(kind)), kind)
    }
  })
})

describe("QueueId and Offset", () => {
  it("a queue id is a non-negative Java int", () => {
    const decodes = (value: number) => Exit.isSuccess(Schema.decodeUnknownExit(Topic.QueueId)(value))
    assert.deepStrictEqual([0, 7, 2 ** 31 - 1].map(decodes), [true, true, true])
    assert.deepStrictEqual([-1, 1.5, 2 ** 31, Number.NaN].map(decodes), [false, false, false, false])
  })

  it("an offset is a non-negative safe integer", () => {
    const decodes = (value: number) => Exit.isSuccess(Schema.decodeUnknownExit(Topic.Offset)(value))
    assert.deepStrictEqual([0, 1, Number.MAX_SAFE_INTEGER].map(decodes), [true, true, true])
    assert.deepStrictEqual([-1, 0.5, 2 ** 53, Number.POSITIVE_INFINITY].map(decodes), [false, false, false, false])
  })
})

describe("dead-letter topics", () => {
  it.effect("a group's dead-letter topic is %DLQ%<group>, a valid topic even for the longest group", () =>
    Effect.gen(function*() {
      assert.strictEqual(Topic.deadLetterTopic("billing" as ConsumerGroupName), "%DLQ%billing")
      const longest = Topic.deadLetterTopic("g".repeat(120) as ConsumerGroupName)
      assert.strictEqual(yield* Topic.validateName(longest), longest)
    }))

  it("only %DLQ% topics are dead-letter topics", () => {
    assert.isTrue(Topic.isDeadLetterTopic("%DLQ%billing"))
    assert.isFalse(Topic.isDeadLetterTopic("billing"))
    assert.isFalse(Topic.isDeadLetterTopic("%RETRY%billing"))
  })
})
