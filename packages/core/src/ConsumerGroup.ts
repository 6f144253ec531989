/**
 * Consumer groups: their names, their settings, and how long a failed message waits before it is
 * delivered again.
 */
import { Effect, Schema } from "effect"
import { maxConsumerGroupNameLength } from "./Limits.ts"
import { nameCharacters } from "./Topic.ts"

const groupNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "is empty"
  if (name.length > maxConsumerGroupNameLength) {
    return `is ${name.length} characters long, the maximum is ${maxConsumerGroupNameLength}`
  }
  return nameCharacters.test(name) ? undefined : "may contain only letters, digits, %, |, _ and -"
}

/** A consumer group name: 1 to 120 of `[%|a-zA-Z0-9_-]`. */
export const ConsumerGroupName = Schema.String.check(
  Schema.makeFilter(groupNameProblem, { expected: "a consumer group name" })
).pipe(Schema.brand("ConsumerGroupName"))

/** A consumer group name that passed {@link validateName} or decoding with {@link ConsumerGroupName}. */
export type ConsumerGroupName = typeof ConsumerGroupName.Type

/** A consumer group name broke the naming rule (RocketMQ `ILLEGAL_CONSUMER_GROUP`). */
export class IllegalConsumerGroup extends Schema.TaggedError<IllegalConsumerGroup>()("IllegalConsumerGroup", {
  group: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `consumer group ${JSON.stringify(this.group)} ${this.reason}`
  }
}

/** Checks a consumer group name, failing with the reason it is not one. */
export const validateName = (name: string): Effect.Effect<ConsumerGroupName, IllegalConsumerGroup> => {
  const reason = groupNameProblem(name)
  return reason === undefined
    ? Effect.succeed(name as ConsumerGroupName)
    : Effect.fail(new IllegalConsumerGroup({ group: name, reason }))
}

const Millis = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * Retry delays from a table of levels, RocketMQ's `CUSTOMIZED` policy.
 *
 * **Gotchas**
 *
 * As in RocketMQ, the first retry waits the *third* level and later ones step through the table,
 * staying on the last level: RocketMQ keeps the first two levels (1 s, 5 s) of its old delay-level
 * table for compatibility and starts retries at level 3 (10 s).
 */
export const CustomizedRetry = Schema.TaggedStruct("Customized", { levelsMillis: Schema.NonEmptyArray(Millis) })

/** Retry delays that grow by a factor from an initial delay up to a maximum, RocketMQ's `EXPONENTIAL` policy. */
export const ExponentialRetry = Schema.TaggedStruct("Exponential", {
  initialMillis: Millis,
  maxMillis: Millis,
  multiplier: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(1))
})

/** How long a message waits after a failed delivery before it is delivered again. */
export const RetryPolicy = Schema.Union([CustomizedRetry, ExponentialRetry])

/** A {@link RetryPolicy} value. */
export type RetryPolicy = typeof RetryPolicy.Type

const second = 1000
const minute = 60 * second
const hour = 60 * minute

/** RocketMQ's default policy: levels `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`. */
export const defaultRetryPolicy: RetryPolicy = {
  _tag: "Customized",
  levelsMillis: [
    1 * second, 5 * second, 10 * second, 30 * second,
    1 * minute, 2 * minute, 3 * minute, 4 * minute, 5 * minute, 6 * minute, 7 * minute, 8 * minute, 9 * minute,
    10 * minute, 20 * minute, 30 * minute,
    1 * hour, 2 * hour
  ]
}

/** RocketMQ's default exponential policy: 5 s, doubling, at most 2 h. */
export const defaultExponentialRetryPolicy: RetryPolicy = {
  _tag: "Exponential",
  initialMillis: 5 * second,
  maxMillis: 2 * hour,
  multiplier: 2
}

/**
 * How long to wait before delivering a message again after delivery attempt `deliveryAttempt`
 * (1-based) failed.
 *
 * **Details**
 *
 * Follows RocketMQ's `nextDelayDuration(reconsumeTimes)` with `reconsumeTimes = deliveryAttempt - 1`:
 * under the default policy attempt 1 waits 10 s, attempt 16 waits 2 h, and later attempts stay at 2 h.
 */
export const retryDelayMillis = (policy: RetryPolicy, deliveryAttempt: number): number => {
  const reconsumeTimes = Math.max(0, deliveryAttempt - 1)
  switch (policy._tag) {
    case "Customized": {
      const levels = policy.levelsMillis
      return levels[Math.min(reconsumeTimes + 2, levels.length - 1)] ?? levels[0]
    }
    case "Exponential":
      // RocketMQ caps the exponent at 32, which also keeps the product finite.
      return Math.min(policy.maxMillis, policy.initialMillis * policy.multiplier ** Math.min(reconsumeTimes, 32))
  }
}

/** RocketMQ's default: 16 retries after the first delivery (`retryMaxTimes` 16, settings `max_attempts` 17). */
export const defaultMaxDeliveryAttempts = 17

/**
 * A consumer group's settings.
 *
 * **Details**
 *
 * Only `name` is required; the rest default to RocketMQ's defaults when constructed or decoded.
 * A `fifo` group receives each message group's messages in order, one in flight at a time.
 */
export class ConsumerGroup extends Schema.Class<ConsumerGroup>("@strait/core/ConsumerGroup")({
  name: ConsumerGroupName,
  maxDeliveryAttempts: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)).pipe(
    Schema.withDecodingDefaultTypeKey(Effect.succeed(defaultMaxDeliveryAttempts)),
    Schema.withConstructorDefault(Effect.succeed(defaultMaxDeliveryAttempts))
  ),
  fifo: Schema.Boolean.pipe(
    Schema.withDecodingDefaultTypeKey(Effect.succeed(false)),
    Schema.withConstructorDefault(Effect.succeed(false))
  ),
  retryPolicy: RetryPolicy.pipe(
    Schema.withDecodingDefaultTypeKey(Effect.succeed(defaultRetryPolicy)),
    Schema.withConstructorDefault(Effect.succeed(defaultRetryPolicy))
  )
}) {}
