import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Limits from "../src/Limits.ts"
import * as Message from "../src/Message.ts"

const now = 1_735_689_600_000 // 2025-01-01T00:00:00Z
const day = 24 * 60 * 60 * 1000
const mebibyte = 1024 * 1024

type Fields = ConstructorParameters<typeof Message.Message>[0]

const base: Fields = {
  topic: "orders",
  body: Uint8Array.of(1, 2, 3),
  keys: ["order-1"],
  userProperties: { region: "eu" },
  bornTimestamp: now - 5,
  bornHost: "producer-1",
  messageId: "01001A2B3C4D5E567801020304DEADBEEF"
}

const message = (change: Partial<Fields> = {}): Message.Message => new Message.Message({ ...base, ...change })

const manyProperties = (count: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, "v"]))

interface Row {
  readonly rule: string
  readonly message: Message.Message
  readonly limits?: Partial<Limits.Limits>
  /** The error's tag and fields, or undefined when the message passes. */
  readonly error?: { readonly _tag: Message.MessageValidationError["_tag"]; readonly [field: string]: unknown }
}

const rows: ReadonlyArray<Row> = [
  { rule: "a message that breaks no rule passes", message: message() },

  { rule: "an illegal topic name is rejected", message: message({ topic: "bad topic" }), error: { _tag: "IllegalTopicName", topic: "bad topic" } },
  { rule: "a topic name of 127 characters passes", message: message({ topic: "t".repeat(127) }) },
  { rule: "a topic name of 128 characters is rejected", message: message({ topic: "t".repeat(128) }), error: { _tag: "IllegalTopicName" } },

  { rule: "an empty message id is rejected", message: message({ messageId: "" }), error: { _tag: "IllegalMessageId", messageId: "" } },
  { rule: "a blank message id is rejected", message: message({ messageId: "   " }), error: { _tag: "IllegalMessageId" } },
  { rule: "a malformed message id is rejected", message: message({ messageId: "not-an-id" }), error: { _tag: "IllegalMessageId" } },

  { rule: "an empty body is rejected", message: message({ body: new Uint8Array(0) }), error: { _tag: "MessageBodyEmpty" } },
  { rule: "a body at the configured maximum passes", message: message({ body: new Uint8Array(16) }), limits: { maxBodyBytes: 16 } },
  {
    rule: "a body one byte over the configured maximum is rejected",
    message: message({ body: new Uint8Array(17) }),
    limits: { maxBodyBytes: 16 },
    error: { _tag: "MessageBodyTooLarge", bytes: 17, maxBytes: 16 }
  },
  { rule: "a body of exactly 4 MiB passes by default", message: message({ body: new Uint8Array(4 * mebibyte) }) },
  {
    rule: "a body one byte over 4 MiB is rejected by default",
    message: message({ body: new Uint8Array(4 * mebibyte + 1) }),
    error: { _tag: "MessageBodyTooLarge", bytes: 4 * mebibyte + 1, maxBytes: 4 * mebibyte }
  },

  { rule: "a tag passes", message: message({ tag: "TagA" }) },
  { rule: "an empty tag is rejected", message: message({ tag: "" }), error: { _tag: "IllegalMessageTag", tag: "" } },
  { rule: "a blank tag is rejected", message: message({ tag: "  " }), error: { _tag: "IllegalMessageTag" } },
  { rule: "a tag containing | is rejected", message: message({ tag: "a|b" }), error: { _tag: "IllegalMessageTag", tag: "a|b" } },
  { rule: "a tag with a C0 control character is rejected", message: message({ tag: "a\u0001" }), error: { _tag: "IllegalMessageTag" } },
  { rule: "a tag with a C1 control character is rejected", message: message({ tag: "a\u0085" }), error: { _tag: "IllegalMessageTag" } },

  { rule: "a blank key is rejected", message: message({ keys: ["ok", " "] }), error: { _tag: "IllegalMessageKey", key: " " } },
  { rule: "an empty key is rejected", message: message({ keys: [""] }), error: { _tag: "IllegalMessageKey" } },
  { rule: "a key with a control character is rejected", message: message({ keys: ["k\n"] }), error: { _tag: "IllegalMessageKey" } },

  { rule: "a message group of 63 bytes passes", message: message({ messageGroup: "g".repeat(63) }) },
  {
    rule: "a message group of 64 bytes is rejected",
    message: message({ messageGroup: "g".repeat(64) }),
    error: { _tag: "IllegalMessageGroup", messageGroup: "g".repeat(64) }
  },
  {
    rule: "a message group is measured in UTF-8 bytes, not characters",
    message: message({ messageGroup: "é".repeat(32) }),
    error: { _tag: "IllegalMessageGroup" }
  },
  { rule: "an empty message group is rejected", message: message({ messageGroup: "" }), error: { _tag: "IllegalMessageGroup" } },
  { rule: "a blank message group is rejected", message: message({ messageGroup: " \t" }), error: { _tag: "IllegalMessageGroup" } },
  { rule: "a message group with a control character is rejected", message: message({ messageGroup: "g\u0000" }), error: { _tag: "IllegalMessageGroup" } },

  { rule: "the reserved property UNIQ_KEY is rejected", message: message({ userProperties: { UNIQ_KEY: "x" } }), error: { _tag: "IllegalPropertyKey", key: "UNIQ_KEY" } },
  { rule: "the reserved property TTL is rejected", message: message({ userProperties: { TTL: "10" } }), error: { _tag: "IllegalPropertyKey", key: "TTL" } },
  { rule: "the reserved property __STARTDELIVERTIME is rejected", message: message({ userProperties: { __STARTDELIVERTIME: "1" } }), error: { _tag: "IllegalPropertyKey" } },
  { rule: "a property key with a control character is rejected", message: message({ userProperties: { "bad\u0007key": "v" } }), error: { _tag: "IllegalPropertyKey" } },
  {
    rule: "a property value with a control character is rejected",
    message: message({ userProperties: { note: "line\nbreak" } }),
    error: { _tag: "IllegalPropertyValue", key: "note", value: "line\nbreak" }
  },

  { rule: "128 user properties pass", message: message({ userProperties: manyProperties(128) }) },
  {
    rule: "129 user properties are rejected",
    message: message({ userProperties: manyProperties(129) }),
    error: { _tag: "MessagePropertiesTooLarge", exceeded: "count", actual: 129, max: 128 }
  },
  {
    rule: "properties, tag and keys of exactly 16 KiB pass",
    message: message({ tag: "t", keys: ["k"], userProperties: { p: "v".repeat(16 * 1024 - 3) } })
  },
  {
    rule: "properties, tag and keys one byte over 16 KiB are rejected",
    message: message({ tag: "t", keys: ["k"], userProperties: { p: "v".repeat(16 * 1024 - 2) } }),
    error: { _tag: "MessagePropertiesTooLarge", exceeded: "bytes", actual: 16 * 1024 + 1, max: 16 * 1024 }
  },

  { rule: "a delivery exactly one day ahead passes", message: message({ deliveryTimestamp: now + day }) },
  {
    rule: "a delivery one millisecond more than a day ahead is rejected",
    message: message({ deliveryTimestamp: now + day + 1 }),
    error: { _tag: "IllegalDeliveryTime", deliveryTimestamp: now + day + 1, now, maxDelayMillis: day }
  },
  { rule: "a delivery in the past passes", message: message({ deliveryTimestamp: now - 20_000 }) },

  { rule: "priority 0 passes", message: message({ priority: 0 }) },
  { rule: "a negative priority is rejected", message: message({ priority: -1 }), error: { _tag: "IllegalMessagePriority", priority: -1 } },
  { rule: "a ttl of 1 ms passes", message: message({ ttlMillis: 1 }) },
  { rule: "a ttl of 0 is rejected", message: message({ ttlMillis: 0 }), error: { _tag: "IllegalMessageTtl", ttlMillis: 0 } },
  { rule: "a negative ttl is rejected", message: message({ ttlMillis: -5 }), error: { _tag: "IllegalMessageTtl" } },

  {
    rule: "priority together with a delivery time is a conflict",
    message: message({ priority: 1, deliveryTimestamp: now + 1000 }),
    error: { _tag: "MessagePropertyConflict", properties: ["priority", "deliveryTimestamp"] }
  },
  {
    rule: "priority together with a message group is a conflict",
    message: message({ priority: 1, messageGroup: "g" }),
    error: { _tag: "MessagePropertyConflict", properties: ["priority", "messageGroup"] }
  },
  { rule: "a message group with a delivery time passes", message: message({ messageGroup: "g", deliveryTimestamp: now + 1000 }) }
]

describe("Message.validate", () => {
  it.effect.each(rows)("$rule", ({ message, limits, error }) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const validate = Effect.provideService(Message.validate(message), Limits.Limits, { ...Limits.defaults, ...limits })
      if (error === undefined) {
        assert.strictEqual(yield* validate, message)
        return
      }
      const failure = yield* Effect.flip(validate)
      for (const [field, expected] of Object.entries(error)) {
        assert.deepStrictEqual((failure as unknown as Record<string, unknown>)[field], expected, field)
      }
      assert.isNotEmpty(failure.message)
    }))
})

describe("StoredMessage", () => {
  it.effect("a stored message is a message, with its queue position and a delivery attempt of at least 1", () =>
    Effect.gen(function*() {
      const stored = { ...base, queueId: 3, queueOffset: 42, storeTimestamp: now, deliveryAttempt: 1 }
      const decoded = yield* Schema.decodeUnknownEffect(Message.StoredMessage)(stored)
      assert.instanceOf(decoded, Message.Message)
      assert.strictEqual(decoded.queueOffset, 42)
      yield* TestClock.setTime(now)
      assert.strictEqual(yield* Message.validate(decoded), decoded)
      const zeroth = Schema.decodeUnknownExit(Message.StoredMessage)({ ...stored, deliveryAttempt: 0 })
      assert.isTrue(Exit.isFailure(zeroth))
    }))
})

describe("messages made without a parse", () => {
  it("fromFields makes a Message with exactly the fields given, as the constructor would", () => {
    const made = Message.fromFields({ ...base, tag: "paid" })
    const constructed = new Message.Message({ ...base, tag: "paid" })
    assert.instanceOf(made, Message.Message)
    assert.deepStrictEqual({ ...made }, { ...constructed })
  })

  it("withTopic copies a message or a stored message under another topic, keeping its class and leaving the original as it was", () => {
    const stored = new Message.StoredMessage({ ...base, queueId: 2, queueOffset: 9, storeTimestamp: now, deliveryAttempt: 1 } as ConstructorParameters<typeof Message.StoredMessage>[0])
    const renamed = Message.withTopic(stored, "ns%orders")
    assert.instanceOf(renamed, Message.StoredMessage)
    assert.deepStrictEqual({ ...renamed }, { ...stored, topic: "ns%orders" })
    assert.strictEqual(stored.topic, "orders")
    const plain = Message.withTopic(message(), "other")
    assert.instanceOf(plain, Message.Message)
    assert.notInstanceOf(plain, Message.StoredMessage)
    assert.strictEqual(plain.topic, "other")
  })
})
