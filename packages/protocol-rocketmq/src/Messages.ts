/**
 * RocketMQ messages (`apache.rocketmq.v2.Message`) to Strait messages and back.
 *
 * **Details**
 *
 * - A message's time to live is the user property `x-ttl-ms` (milliseconds from its store time): the
 *   RocketMQ protocol has no field for it, and upstream servers treat the property as any other.
 * - A delivered message carries the `body_digest` every RocketMQ client checks (CRC32, as the unsigned
 *   decimal string), and a dead letter says where it came from in `dead_letter_queue`.
 *
 * @since 0.1.0
 */
import { Broker } from "@strait/broker"
import { Message } from "@strait/core"
import { Buffer } from "node:buffer"
import { crc32, gunzipSync } from "node:zlib"
import * as Protos from "./Protos.ts"

/**
 * The user property holding a message's time to live in milliseconds.
 *
 * @since 0.1.0
 */
export const ttlProperty = "x-ttl-ms"

/**
 * A message as the protos decode it.
 *
 * @since 0.1.0
 */
export interface WireMessage {
  readonly topic?: { readonly name?: string; readonly resource_namespace?: string } | null
  readonly user_properties?: Record<string, string> | null
  readonly system_properties?: {
    readonly tag?: string | null
    readonly keys?: ReadonlyArray<string> | null
    readonly message_id?: string
    readonly body_encoding?: string
    readonly message_type?: string
    readonly born_timestamp?: Protos.Seconds | null
    readonly born_host?: string
    readonly delivery_timestamp?: Protos.Seconds | null
    readonly message_group?: string | null
    readonly priority?: number | null
    readonly trace_context?: string | null
  } | null
  readonly body?: Uint8Array | null
}

/**
 * A received message's message as it is sent.
 *
 * @since 0.1.0
 */
export interface Incoming {
  readonly message: Message.Message
  readonly transactional: boolean
}

/**
 * A Strait message from a RocketMQ one; the message type `TRANSACTION` makes it a half message.
 *
 * @since 0.1.0
 */
export const fromWire = (wire: WireMessage): Incoming => {
  const system = wire.system_properties ?? {}
  const properties: Record<string, string> = { ...(wire.user_properties ?? {}) }
  const ttl = properties[ttlProperty]
  const ttlMillis = ttl === undefined || !/^\d+$/.test(ttl) ? undefined : Number(ttl)
  const rawBody = wire.body ?? new Uint8Array(0)
  const body = system.body_encoding === "GZIP" ? new Uint8Array(gunzipSync(rawBody)) : new Uint8Array(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength)
  const deliveryTimestamp = Protos.millisOf(system.delivery_timestamp)
  const message = new Message.Message({
    topic: wire.topic?.name ?? "",
    body,
    ...(system.tag === undefined || system.tag === null ? {} : { tag: system.tag }),
    keys: [...(system.keys ?? [])],
    userProperties: properties,
    ...(system.message_group === undefined || system.message_group === null ? {} : { messageGroup: system.message_group }),
    ...(deliveryTimestamp === undefined ? {} : { deliveryTimestamp }),
    ...(system.priority === undefined || system.priority === null ? {} : { priority: system.priority }),
    ...(ttlMillis === undefined ? {} : { ttlMillis }),
    bornTimestamp: Protos.millisOf(system.born_timestamp) ?? 0,
    bornHost: system.born_host ?? "",
    ...(system.trace_context === undefined || system.trace_context === null || system.trace_context === "" ? {} : { traceContext: system.trace_context }),
    messageId: system.message_id ?? ""
  })
  return { message, transactional: system.message_type === "TRANSACTION" }
}

/**
 * A RocketMQ message to deliver (or a half message to check back), with the receive's details. `topic` and
 * `deadLetterOrigin` are the names the client knows.
 *
 * @since 0.1.0
 */
export const toWire = (
  message: Message.Message | Message.StoredMessage,
  delivery: {
    readonly topic: string
    readonly namespace: string
    readonly receiptHandle?: string
    readonly invisibleMillis?: number
    readonly storeHost: string
    readonly deadLetterOrigin?: string
  }
) => {
  const { DLQ_ORIGIN_MESSAGE_ID: originId, DLQ_ORIGIN_TOPIC: _originTopic, ...userProperties } = message.userProperties
  // a half message being checked back has not reached its queue yet
  const stored = "queueOffset" in message ? message : undefined
  return {
    topic: { name: delivery.topic, resource_namespace: delivery.namespace },
    user_properties: userProperties,
    system_properties: {
      ...(message.tag === undefined ? {} : { tag: message.tag }),
      keys: message.keys,
      message_id: message.messageId,
      body_digest: { type: "CRC32", checksum: String(crc32(message.body)) },
      body_encoding: "IDENTITY",
      message_type: Broker.messageKind(message),
      born_timestamp: Protos.fromMillis(message.bornTimestamp),
      born_host: message.bornHost,
      ...(stored === undefined ? {} : { store_timestamp: Protos.fromMillis(stored.storeTimestamp) }),
      store_host: delivery.storeHost,
      ...(message.deliveryTimestamp === undefined ? {} : { delivery_timestamp: Protos.fromMillis(message.deliveryTimestamp) }),
      ...(delivery.receiptHandle === undefined ? {} : { receipt_handle: delivery.receiptHandle }),
      queue_id: stored?.queueId ?? 0,
      ...(stored === undefined ? {} : { queue_offset: stored.queueOffset }),
      ...(delivery.invisibleMillis === undefined ? {} : { invisible_duration: Protos.fromMillis(delivery.invisibleMillis) }),
      ...(stored === undefined ? {} : { delivery_attempt: stored.deliveryAttempt }),
      ...(message.messageGroup === undefined ? {} : { message_group: message.messageGroup }),
      ...(message.traceContext === undefined ? {} : { trace_context: message.traceContext }),
      ...(message.priority === undefined ? {} : { priority: message.priority }),
      ...(delivery.deadLetterOrigin === undefined ? {} : { dead_letter_queue: { topic: delivery.deadLetterOrigin, message_id: originId ?? message.messageId } })
    },
    body: Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength)
  }
}
