import { assert, describe, it } from "@effect/vitest"
import { Broker, Consumption, Topics } from "@strait/broker"
import { Message, ReceiptHandle } from "@strait/core"
import { Proxy, Quotas } from "@strait/proxy"
import { crc32 } from "node:zlib"
import { Codes, Messages } from "../src/index.ts"

const wire = (extra: Partial<Messages.WireMessage["system_properties"] & object> = {}, properties: Record<string, string> = {}): Messages.WireMessage => ({
  topic: { name: "orders", resource_namespace: "" },
  user_properties: properties,
  system_properties: {
    tag: "created",
    keys: ["order-1"],
    message_id: "0102FC00000001194E0B18061600000000",
    body_encoding: "IDENTITY",
    message_type: "NORMAL",
    born_timestamp: { seconds: 1_764_000_000, nanos: 123_000_000 },
    born_host: "shop-1",
    ...extra
  },
  body: new TextEncoder().encode("hello")
})

describe("RocketMQ messages", () => {
  it("a sent message keeps its fields: topic, body, tag, keys, properties, id, birth", () => {
    const { message, transactional } = Messages.fromWire(wire({}, { color: "blue" }))
    assert.isFalse(transactional)
    assert.strictEqual(message.topic, "orders")
    assert.strictEqual(new TextDecoder().decode(message.body), "hello")
    assert.strictEqual(message.tag, "created")
    assert.deepStrictEqual(message.keys, ["order-1"])
    assert.deepStrictEqual(message.userProperties, { color: "blue" })
    assert.strictEqual(message.messageId, "0102FC00000001194E0B18061600000000")
    assert.strictEqual(message.bornTimestamp, 1_764_000_000_123)
    assert.strictEqual(message.bornHost, "shop-1")
  })

  it("the message type TRANSACTION makes a half message; group, delivery time and priority carry over", () => {
    assert.isTrue(Messages.fromWire(wire({ message_type: "TRANSACTION" })).transactional)
    const fifo = Messages.fromWire(wire({ message_type: "FIFO", message_group: "user-7" })).message
    assert.strictEqual(fifo.messageGroup, "user-7")
    const delayed = Messages.fromWire(wire({ message_type: "DELAY", delivery_timestamp: { seconds: 1_764_000_010, nanos: 0 } })).message
    assert.strictEqual(delayed.deliveryTimestamp, 1_764_000_010_000)
    const urgent = Messages.fromWire(wire({ message_type: "PRIORITY", priority: 9 })).message
    assert.strictEqual(urgent.priority, 9)
  })

  it("the user property x-ttl-ms is the message's time to live", () => {
    assert.strictEqual(Messages.fromWire(wire({}, { [Messages.ttlProperty]: "5000" })).message.ttlMillis, 5000)
    assert.isUndefined(Messages.fromWire(wire({}, { [Messages.ttlProperty]: "soon" })).message.ttlMillis)
  })

  it("a delivered message carries the CRC32 body digest as an unsigned decimal, its handle and its attempt", () => {
    const stored = new Message.StoredMessage({
      ...Messages.fromWire(wire()).message,
      queueId: 3 as never,
      queueOffset: 41 as never,
      storeTimestamp: 1_764_000_001_000,
      deliveryAttempt: 2
    })
    const delivered = Messages.toWire(stored, { topic: "orders", namespace: "", receiptHandle: "h", invisibleMillis: 30_000, storeHost: "127.0.0.1:8081" })
    assert.deepStrictEqual(delivered.system_properties.body_digest, { type: "CRC32", checksum: String(crc32(new TextEncoder().encode("hello"))) })
    assert.strictEqual(delivered.system_properties.receipt_handle, "h")
    assert.strictEqual(delivered.system_properties.delivery_attempt, 2)
    assert.strictEqual(delivered.system_properties.queue_offset, 41)
    assert.strictEqual(delivered.system_properties.message_type, "NORMAL")
  })

  it("a dead letter says where it came from, and its origin properties stay out of the user properties", () => {
    const dead = new Message.StoredMessage({
      ...Messages.fromWire(wire({}, { DLQ_ORIGIN_TOPIC: "orders", DLQ_ORIGIN_MESSAGE_ID: "0102FC00000001194E0B18061600000000", color: "red" })).message,
      topic: "%DLQ%billing",
      queueId: 0 as never,
      queueOffset: 0 as never,
      storeTimestamp: 0,
      deliveryAttempt: 1
    })
    const delivered = Messages.toWire(dead, { topic: "%DLQ%billing", namespace: "", storeHost: "h", deadLetterOrigin: "orders" })
    assert.deepStrictEqual(delivered.system_properties.dead_letter_queue, { topic: "orders", message_id: "0102FC00000001194E0B18061600000000" })
    assert.deepStrictEqual(delivered.user_properties, { color: "red" })
  })
})

describe("RocketMQ status codes", () => {
  it("each typed error maps to the code RocketMQ clients know for it", () => {
    assert.strictEqual(Codes.statusOf(new Topics.TopicNotFound({ topic: "x" })).code, "TOPIC_NOT_FOUND")
    assert.strictEqual(Codes.statusOf(new Message.MessageBodyEmpty()).code, "MESSAGE_BODY_EMPTY")
    assert.strictEqual(Codes.statusOf(new Consumption.ReceiptHandleStale({ topic: "x", queueId: 0, offset: 0 })).code, "INVALID_RECEIPT_HANDLE")
    assert.strictEqual(Codes.statusOf(new ReceiptHandle.InvalidReceiptHandle({ reason: "tampered" })).code, "INVALID_RECEIPT_HANDLE")
    assert.strictEqual(Codes.statusOf(new Broker.MessageTypeMismatch({ topic: "x", topicKind: "NORMAL", messageKind: "FIFO" })).code, "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE")
    assert.strictEqual(Codes.statusOf(new Proxy.ClientIdRequired()).code, "CLIENT_ID_REQUIRED")
    const throttled = Codes.statusOf(new Quotas.Throttled({ namespace: "shop", limit: "10 messages/s", retryAfterMillis: 300 }))
    assert.strictEqual(throttled.code, "TOO_MANY_REQUESTS")
    assert.include(throttled.message, "try again in 300 ms")
  })

  it("an error nobody mapped is an internal error, never OK", () => {
    assert.strictEqual(Codes.statusOf(new Error("boom")).code, "INTERNAL_SERVER_ERROR")
    assert.strictEqual(Codes.statusOf("boom").code, "INTERNAL_SERVER_ERROR")
  })
})
