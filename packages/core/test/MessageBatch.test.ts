// The message batch codec as a specification: what goes in comes out, field by field and as instances
// of the same classes; bodies are views of the input; and no bytes at all make the decoder throw.
import { assert, describe, it } from "@effect/vitest"
import { Equal, Result } from "effect"
import * as fc from "fast-check"
import { Buffer } from "node:buffer"
import { Message, StoredMessage } from "../src/Message.ts"
import * as MessageBatch from "../src/MessageBatch.ts"
import type { Offset, QueueId } from "../src/Topic.ts"
import { patterned } from "./fixtures.ts"

// ---------------------------------------------------------------------------------------------- fixtures

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))

const messageFields = {
  topic: "orders",
  body: new Uint8Array([1, 2, 3]),
  keys: ["order-1"],
  userProperties: { region: "eu" },
  bornTimestamp: 1_700_000_000_000,
  bornHost: "10.0.0.1",
  messageId: "0A0000010001"
}

const storedFields = {
  queueId: 3 as QueueId,
  queueOffset: 42 as Offset,
  storeTimestamp: 1_700_000_000_500,
  deliveryAttempt: 1
}

const decodeOk = (bytes: Uint8Array): Array<Message> => {
  const result = MessageBatch.decode(bytes)
  if (Result.isFailure(result)) assert.fail(`decode failed: ${result.failure.message}`)
  return result.success
}

const decodeStoredOk = (bytes: Uint8Array): Array<StoredMessage> => {
  const result = MessageBatch.decodeStored(bytes)
  if (Result.isFailure(result)) assert.fail(`decodeStored failed: ${result.failure.message}`)
  return result.success
}

const decodeFailure = (result: Result.Result<unknown, MessageBatch.MalformedMessageBatch>) => {
  if (Result.isSuccess(result)) return assert.fail("decoded bytes that should have been rejected")
  assert.instanceOf(result.failure, MessageBatch.MalformedMessageBatch)
  return result.failure
}

const messageKeys = [
  "topic", "tag", "keys", "userProperties", "messageGroup", "deliveryTimestamp", "priority", "ttlMillis",
  "bornTimestamp", "bornHost", "traceContext", "messageId"
] as const
const storedKeys = ["queueId", "queueOffset", "storeTimestamp", "deliveryAttempt"] as const

/** The decoded message is an instance of the same class with the same fields, in the same order. */
const assertSameMessage = (actual: Message, expected: Message, where: string): void => {
  assert.strictEqual(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: class`)
  assert.deepStrictEqual(Object.keys(actual), Object.keys(expected), `${where}: own keys and their order`)
  const fields = expected instanceof StoredMessage ? [...messageKeys, ...storedKeys] : messageKeys
  for (const key of fields) {
    assert.deepStrictEqual(
      (actual as unknown as Record<string, unknown>)[key],
      (expected as unknown as Record<string, unknown>)[key],
      `${where}: ${key}`
    )
  }
  assert.isTrue(sameBytes(actual.body, expected.body), `${where}: body bytes`)
  assert.isTrue(Equal.equals(actual, expected), `${where}: Equal.equals`)
}

const assertSameBatch = (actual: ReadonlyArray<Message>, expected: ReadonlyArray<Message>): void => {
  assert.strictEqual(actual.length, expected.length, "message count")
  for (let i = 0; i < expected.length; i++) assertSameMessage(actual[i]!, expected[i]!, `message ${i}`)
}

/** Whatever the decoder accepts passes the class constructor's own checks. */
const assertConstructible = (messages: ReadonlyArray<Message>, stored: boolean): void => {
  for (const message of messages) {
    assert.instanceOf(message, stored ? StoredMessage : Message)
    try {
      if (stored) new StoredMessage({ ...(message as StoredMessage) })
      else new Message({ ...message })
    } catch (error) {
      assert.fail(`the decoder accepted a message its class rejects: ${String(error)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------- arbitraries

/** Strings of every kind: ASCII, Latin-1 (not ASCII), any code point including astral ones, graphemes. */
const text = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: "binary-ascii", maxLength: 24 }),
  fc.string({ unit: "binary", maxLength: 24 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  // long enough for a two-byte length
  fc.string({ minLength: 130, maxLength: 400 })
)

/** Mostly small bodies, empty ones, and now and then one large enough to need its own buffer. */
const body = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 16_000, max: 70_000 }), fc.nat()).map(([n, s]) => patterned(n, s)) }
)

const properties = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(text, text, { maxKeys: 4, noNullPrototype: true }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), text, { minKeys: 20, maxKeys: 60, noNullPrototype: true }) }
)

const messageRecord = {
  topic: text,
  body,
  tag: text,
  keys: fc.array(text, { maxLength: 5 }),
  userProperties: properties,
  messageGroup: text,
  deliveryTimestamp: fc.maxSafeInteger(),
  priority: fc.maxSafeInteger(),
  ttlMillis: fc.maxSafeInteger(),
  bornTimestamp: fc.maxSafeInteger(),
  bornHost: text,
  traceContext: text,
  messageId: text
}
const requiredKeys = ["topic", "body", "keys", "userProperties", "bornTimestamp", "bornHost", "messageId"] as const

const messageArb = fc.record(messageRecord, { requiredKeys: [...requiredKeys], noNullPrototype: true })
  .map((fields) => new Message(fields))

const storedArb = fc.record({
  ...messageRecord,
  queueId: fc.integer({ min: 0, max: 2 ** 31 - 1 }).map((n) => n as QueueId),
  queueOffset: fc.maxSafeNat().map((n) => n as Offset),
  storeTimestamp: fc.maxSafeInteger(),
  deliveryAttempt: fc.integer({ min: 1, max: 0xffff_ffff })
}, {
  requiredKeys: [...requiredKeys, "queueId", "queueOffset", "storeTimestamp", "deliveryAttempt"],
  noNullPrototype: true
}).map((fields) => new StoredMessage(fields))

/** Small batches of small messages, so that every prefix of their encoding can be tried. */
const smallMessageArb = fc.record({
  topic: fc.string({ unit: "binary", maxLength: 8 }),
  body: fc.uint8Array({ maxLength: 16 }),
  tag: fc.string({ maxLength: 6 }),
  keys: fc.array(fc.string({ unit: "binary", maxLength: 6 }), { maxLength: 2 }),
  userProperties: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ unit: "binary", maxLength: 6 }), {
    maxKeys: 2,
    noNullPrototype: true
  }),
  priority: fc.integer({ min: -5, max: 5 }),
  bornTimestamp: fc.maxSafeInteger(),
  bornHost: fc.string({ maxLength: 6 }),
  messageId: fc.string({ maxLength: 6 })
}, { requiredKeys: [...requiredKeys], noNullPrototype: true }).map((fields) => new Message(fields))

const smallBatch = fc.array(smallMessageArb, { maxLength: 3 })

// ---------------------------------------------------------------------------------------------- specification

describe("MessageBatch", () => {
  describe("round trip", () => {
    it("a batch of messages decodes to equal Message instances, field by field", () => {
      fc.assert(
        fc.property(fc.array(messageArb, { maxLength: 12 }), (messages) => {
          const decoded = decodeOk(MessageBatch.encode(messages))
          assertSameBatch(decoded, messages)
          for (const message of decoded) assert.instanceOf(message, Message)
        }),
        { seed: 42, numRuns: 150 }
      )
    })

    it("a batch of stored messages decodes to equal StoredMessage instances, field by field", () => {
      fc.assert(
        fc.property(fc.array(storedArb, { maxLength: 12 }), (messages) => {
          const decoded = decodeStoredOk(MessageBatch.encodeStored(messages))
          assertSameBatch(decoded, messages)
          for (const message of decoded) assert.instanceOf(message, StoredMessage)
        }),
        { seed: 42, numRuns: 150 }
      )
    })

    it("a batch of many messages round trips, across the shared buffer's refills", () => {
      const messages = Array.from({ length: 300 }, (_, i) =>
        new Message({
          ...messageFields,
          body: patterned(i * 37 % 2_000, i),
          keys: [`order-${i}`, `customer-${i % 7}`],
          userProperties: { region: "eu-west-1", source: "checkout", tenant: `t${i % 3}` },
          messageId: `id-${i}`
        }))
      assertSameBatch(decodeOk(MessageBatch.encode(messages)), messages)
      for (let i = 0; i < messages.length; i += 10) {
        const batch = messages.slice(i, i + 10)
        assertSameBatch(decodeOk(MessageBatch.encode(batch)), batch)
      }
    })

    it("a batch with hundreds of thousands of characters of strings round trips, ASCII or not", () => {
      for (const letter of ["a", "é", "😀"]) {
        const messages = Array.from({ length: 50 }, (_, i) =>
          new Message({ ...messageFields, userProperties: { note: `${i}${letter.repeat(5_000)}` }, messageId: `id-${i}` }))
        assertSameBatch(decodeOk(MessageBatch.encode(messages)), messages)
      }
    })

    it("property keys keep their own names, however many keys of one length come by", () => {
      // More distinct keys of one length than any bounded cache of decoded keys has room for.
      const names = Array.from({ length: 2_000 }, (_, i) => `k${String.fromCharCode(65 + (i % 40), 65 + Math.floor(i / 40))}`)
      const messages = Array.from({ length: 40 }, (_, m) =>
        new Message({
          ...messageFields,
          userProperties: Object.fromEntries(names.slice(m * 50, m * 50 + 50).map((name) => [name, name]))
        }))
      for (let round = 0; round < 2; round++) assertSameBatch(decodeOk(MessageBatch.encode(messages)), messages)
    })

    it("an empty batch round trips", () => {
      assert.deepStrictEqual(decodeOk(MessageBatch.encode([])), [])
      assert.deepStrictEqual(decodeStoredOk(MessageBatch.encodeStored([])), [])
    })

    it("the same batch always encodes to the same bytes", () => {
      const messages = [new Message({ ...messageFields, tag: "TagA", ttlMillis: 60_000 }), new Message(messageFields)]
      const first = MessageBatch.encode(messages)
      for (let i = 0; i < 100; i++) assert.isTrue(sameBytes(MessageBatch.encode(messages), first))
    })

    it("optional fields that are absent stay absent, not undefined", () => {
      const [decoded] = decodeOk(MessageBatch.encode([new Message(messageFields)]))
      for (const key of ["tag", "messageGroup", "deliveryTimestamp", "priority", "ttlMillis", "traceContext"]) {
        assert.isFalse(Object.hasOwn(decoded!, key), key)
      }
    })

    it("a property named __proto__ is an own property, not the prototype", () => {
      const userProperties: Record<string, string> = {}
      Object.defineProperty(userProperties, "__proto__", { value: "x", enumerable: true, writable: true, configurable: true })
      const message = new Message({ ...messageFields, userProperties })
      const [decoded] = decodeOk(MessageBatch.encode([message]))
      assert.deepStrictEqual(Object.keys(decoded!.userProperties), ["__proto__"])
      assert.strictEqual(decoded!.userProperties["__proto__"], "x")
      assert.strictEqual(Object.getPrototypeOf(decoded!.userProperties), Object.prototype)
    })

    it("a string that starts with a byte order mark keeps it", () => {
      const message = new Message({ ...messageFields, tag: "\uFEFFtag", keys: ["\uFEFF"] })
      const [decoded] = decodeOk(MessageBatch.encode([message]))
      assert.strictEqual(decoded!.tag, "\uFEFFtag")
      assert.deepStrictEqual(decoded!.keys, ["\uFEFF"])
    })

    it("a lone surrogate is written as U+FFFD, in its own string only", () => {
      // Next to each other the two halves would make one character; each string is encoded alone.
      const message = new Message({ ...messageFields, keys: ["a\uD83D", "\uDE00b"] })
      const [decoded] = decodeOk(MessageBatch.encode([message]))
      assert.deepStrictEqual(decoded!.keys, ["a\uFFFD", "\uFFFDb"])
    })
  })

  describe("bodies", () => {
    it("a decoded body is a view of the input, not a copy", () => {
      const bytes = MessageBatch.encode([new Message(messageFields), new Message({ ...messageFields, body: patterned(500, 7) })])
      const decoded = decodeOk(bytes)
      for (const message of decoded) {
        assert.strictEqual(message.body.buffer, bytes.buffer)
        assert.isAtLeast(message.body.byteOffset, bytes.byteOffset)
        assert.isAtMost(message.body.byteOffset + message.body.length, bytes.byteOffset + bytes.length)
      }
      const last = decoded[1]!.body
      const at = last.byteOffset - bytes.byteOffset
      bytes[at] = bytes[at]! ^ 0xff
      assert.strictEqual(last[0], bytes[at], "changing the input changes the body")
    })

    it("an empty body is allowed by the codec", () => {
      const message = new Message({ ...messageFields, body: new Uint8Array(0) })
      const [decoded] = decodeOk(MessageBatch.encode([message]))
      assert.strictEqual(decoded!.body.length, 0)
    })
  })

  describe("encoding", () => {
    it("is a plain Uint8Array of exactly the batch's bytes", () => {
      const bytes = MessageBatch.encode([new Message(messageFields)])
      assert.strictEqual(Object.getPrototypeOf(bytes), Uint8Array.prototype)
      assert.strictEqual(bytes[0], MessageBatch.Version)
      assert.isTrue(sameBytes(decodeOk(bytes.slice())[0]!.body, messageFields.body))
    })

    it("a number the decoder would reject is a RangeError, not a batch", () => {
      const fractional = { ...messageFields, bornTimestamp: 1.5 }
      assert.throws(() => MessageBatch.encode([new Message(fractional, { disableChecks: true })]), RangeError)
      const attempt = { ...messageFields, ...storedFields, deliveryAttempt: 2 ** 32 }
      assert.throws(() => MessageBatch.encodeStored([new StoredMessage(attempt)]), RangeError)
      const queueId = { ...messageFields, ...storedFields, queueId: -1 as QueueId }
      assert.throws(() => MessageBatch.encodeStored([new StoredMessage(queueId, { disableChecks: true })]), RangeError)
    })
  })

  describe("malformed input", () => {
    const valid = MessageBatch.encode([new Message({ ...messageFields, tag: "créé" }), new Message(messageFields)])
    const validStored = MessageBatch.encodeStored([new StoredMessage({ ...messageFields, ...storedFields })])

    it("an unknown version is rejected with a reason naming it", () => {
      const bytes = valid.slice()
      bytes[0] = 7
      const failure = decodeFailure(MessageBatch.decode(bytes))
      assert.include(failure.reason, "version 7")
      assert.strictEqual(failure.offset, 0)
      assert.include(failure.message, "version 7")
    })

    it("a batch of stored messages is not a batch of messages, nor the other way round", () => {
      assert.include(decodeFailure(MessageBatch.decode(validStored)).reason, "decodeStored")
      assert.include(decodeFailure(MessageBatch.decodeStored(valid)).reason, "decode it with decode")
    })

    it("a count larger than the table can hold is rejected before anything is allocated", () => {
      const bytes = valid.slice()
      new DataView(bytes.buffer).setUint32(2, 0xffff_ffff, true)
      const failure = decodeFailure(MessageBatch.decode(bytes))
      assert.strictEqual(failure.offset, 2)
    })

    it("strings that are not UTF-8 are rejected", () => {
      // the first string of the heap is the topic; 0xff never occurs in UTF-8
      const bytes = valid.slice()
      const tableBytes = new DataView(bytes.buffer).getUint32(6, true)
      bytes[14 + tableBytes] = 0xff
      assert.include(decodeFailure(MessageBatch.decode(bytes)).reason, "UTF-8")
    })

    it("a string boundary inside a UTF-8 sequence is rejected", () => {
      // "é" is two bytes: moving one of them from the tag into the key leaves the string section valid
      const message = new Message({ ...messageFields, tag: "é", keys: ["k"] })
      const bytes = MessageBatch.encode([message]).slice()
      const tableBytes = new DataView(bytes.buffer).getUint32(6, true)
      // table: flags, f64, body, key count, property count, then the lengths of topic and tag
      const tagLength = 14 + 1 + 8 + 3 + 1
      assert.strictEqual(bytes[tagLength], 2)
      assert.strictEqual(bytes[tagLength + 1], 1)
      bytes[tagLength] = 1
      bytes[tagLength + 1] = 2
      assert.isBelow(tagLength + 1, 14 + tableBytes)
      assert.include(decodeFailure(MessageBatch.decode(bytes)).reason, "inside a UTF-8 sequence")
    })

    it("trailing bytes are rejected", () => {
      const bytes = new Uint8Array(valid.length + 1)
      bytes.set(valid)
      assert.include(decodeFailure(MessageBatch.decode(bytes)).reason, "left after the last body")
    })

    it("a value that is not a Uint8Array is rejected, not thrown on", () => {
      decodeFailure(MessageBatch.decode("not bytes" as unknown as Uint8Array))
      decodeFailure(MessageBatch.decode(undefined as unknown as Uint8Array))
    })

    it("every proper prefix of a valid batch is rejected", () => {
      fc.assert(
        fc.property(smallBatch, fc.boolean(), (messages, stored) => {
          const bytes = stored
            ? MessageBatch.encodeStored(messages.map((m) => new StoredMessage({ ...m, ...storedFields })))
            : MessageBatch.encode(messages)
          const decode = stored ? MessageBatch.decodeStored : MessageBatch.decode
          for (let end = 0; end < bytes.length; end++) decodeFailure(decode(bytes.subarray(0, end)))
        }),
        { seed: 42, numRuns: 200 }
      )
    })

    it("random bytes give messages that pass their class's checks, or MalformedMessageBatch; never a throw", () => {
      const header = fc.tuple(fc.constantFrom(0, 1), fc.nat({ max: 4 }), fc.nat({ max: 300 }), fc.nat({ max: 300 }))
        .map(([kind, count, tableBytes, heapBytes]) => {
          const bytes = new Uint8Array(14)
          const view = new DataView(bytes.buffer)
          bytes[0] = MessageBatch.Version
          bytes[1] = kind
          view.setUint32(2, count, true)
          view.setUint32(6, tableBytes, true)
          view.setUint32(10, heapBytes, true)
          return bytes
        })
      const input = fc.oneof(
        fc.uint8Array({ maxLength: 256 }),
        fc.tuple(header, fc.uint8Array({ maxLength: 600 })).map(([h, rest]) => Buffer.concat([h, rest]))
      )
      fc.assert(
        fc.property(input, (bytes) => {
          for (const stored of [false, true]) {
            const result = stored ? MessageBatch.decodeStored(bytes) : MessageBatch.decode(bytes)
            if (Result.isSuccess(result)) assertConstructible(result.success, stored)
            else assert.instanceOf(result.failure, MessageBatch.MalformedMessageBatch)
          }
        }),
        { seed: 42, numRuns: 3_000 }
      )
    })

    it("bit flips and overwritten bytes in a valid batch give messages or MalformedMessageBatch; never a throw", () => {
      const batch = fc.oneof(
        smallBatch.map((messages) => ({ stored: false, bytes: MessageBatch.encode(messages) })),
        smallBatch.map((messages) => ({
          stored: true,
          bytes: MessageBatch.encodeStored(messages.map((m) => new StoredMessage({ ...m, ...storedFields })))
        }))
      )
      const edits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 }), fc.boolean(), fc.nat({ max: 255 })), {
        minLength: 1,
        maxLength: 4
      })
      fc.assert(
        fc.property(batch, edits, ({ bytes: original, stored }, changes) => {
          const bytes = original.slice()
          for (const [at, bit, overwrite, value] of changes) {
            const index = at % bytes.length
            bytes[index] = overwrite ? value : bytes[index]! ^ (1 << bit)
          }
          const result = stored ? MessageBatch.decodeStored(bytes) : MessageBatch.decode(bytes)
          if (Result.isSuccess(result)) assertConstructible(result.success, stored)
          else assert.instanceOf(result.failure, MessageBatch.MalformedMessageBatch)
        }),
        { seed: 42, numRuns: 3_000 }
      )
    })
  })
})
