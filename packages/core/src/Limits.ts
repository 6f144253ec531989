/**
 * The limits a broker enforces on what producers send and consumers ask for, with RocketMQ's
 * defaults, stated up front instead of buried in the code that checks them.
 */
import { Context } from "effect"

/**
 * The longest topic name, in characters (RocketMQ `TopicValidator.TOPIC_MAX_LENGTH`).
 *
 * **Details**
 *
 * Name lengths are fixed rather than tunable: a name is an identity that every node must accept
 * alike, and the schemas that decode names at the boundary cannot read services.
 */
export const maxTopicNameLength = 127

/** The longest consumer group name, in characters (RocketMQ `CHARACTER_MAX_LENGTH` for groups). */
export const maxConsumerGroupNameLength = 120

/**
 * The longest namespace, in characters.
 *
 * **Details**
 *
 * RocketMQ sets no limit. 64 holds every ApsaraMQ instance id (`MQ_INST_<16 digits>_<8 chars>`,
 * `rmq-cn-<id>`) with room to spare, keeps `namespace + topic` metadata keys bounded, and matches
 * the DNS-label size operators already use to name tenants.
 */
export const maxNamespaceLength = 64

/**
 * The tunable limits, read by the validators at run time.
 */
export interface Limits {
  /** Largest message body in bytes; RocketMQ `maxMessageSize`, also sent to clients as `max_body_size`. */
  readonly maxBodyBytes: number
  /** Largest UTF-8 size of user property keys and values plus the tag and keys together. */
  readonly maxPropertiesBytes: number
  /** Most user properties one message may carry. */
  readonly maxPropertyCount: number
  /** Largest message group in UTF-8 bytes (RocketMQ rejects `≥ maxMessageGroupSize = 64`, i.e. allows 63). */
  readonly maxMessageGroupBytes: number
  /** Farthest a delivery timestamp may lie ahead of the broker's clock (RocketMQ proxy `maxDelayTimeMills`). */
  readonly maxDeliveryDelayMillis: number
  /** Longest invisibility window a receive or change-invisibility may ask for. */
  readonly maxInvisibilityMillis: number
}

/**
 * RocketMQ 5's defaults.
 */
export const defaults: Limits = {
  maxBodyBytes: 4 * 1024 * 1024,
  maxPropertiesBytes: 16 * 1024,
  maxPropertyCount: 128,
  maxMessageGroupBytes: 63,
  maxDeliveryDelayMillis: 24 * 60 * 60 * 1000,
  maxInvisibilityMillis: 12 * 60 * 60 * 1000
}

/**
 * The limits in force, {@link defaults} unless overridden.
 *
 * **Details**
 *
 * Override for a node or a test with `Effect.provideService(effect, Limits, { ...defaults, maxBodyBytes })`.
 */
export const Limits = Context.Reference<Limits>("@strait/core/Limits", { defaultValue: () => defaults })
