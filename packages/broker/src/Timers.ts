/**
 * Delayed delivery: a message sent for a future time is held (see `HeldMessages`, internal topic
 * `%TIMER%`) and reaches its topic at that time, once, even across restarts; until then it can be
 * recalled by the handle its receipt carries.
 *
 * @since 0.1.0
 */
import { type Message, MinHeap, PlantedBugs } from "@strait/core"
import type { Store } from "@strait/storage"
import { Clock, Duration, Effect, Schema } from "effect"
import { Buffer } from "node:buffer"
import * as HeldMessages from "./HeldMessages.ts"
import { wakeup } from "./internal/queues.ts"

/**
 * The recall handle does not name a delayed message this broker still holds for that topic
 * (RocketMQ `ILLEGAL_OPERATION`: wrong handle, already delivered, or already recalled).
 *
 * @since 0.1.0
 */
export class RecallFailed extends Schema.TaggedError<RecallFailed>()("RecallFailed", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot recall from ${this.topic}: ${this.reason}`
  }
}

const recallHandleOf = (topic: string, offset: number, due: number, messageId: string) =>
  Buffer.from(`v1 ${topic} ${offset} ${due} ${messageId}`, "utf8").toString("base64url")

const parseRecallHandle = (handle: string) => {
  const parts = Buffer.from(handle, "base64url").toString("utf8").split(" ")
  if (parts.length !== 5 || parts[0] !== "v1") return undefined
  const offset = Number(parts[2])
  if (!Number.isSafeInteger(offset)) return undefined
  return { topic: parts[1]!, offset, messageId: parts[4]! }
}

/**
 * Opens the timer store and starts firing; runs until the scope closes.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(deps: {
  readonly store: Store.Store
  readonly deliver: (queueId: number, message: Message.Message) => Effect.Effect<void, Store.AppendError>
}) {
  const timers = yield* HeldMessages.open("%TIMER%", deps)
  const { nudge, wait } = wakeup()
  // by due time; an entry whose timer was released (fired or recalled) is dropped when it surfaces
  const order = new MinHeap.MinHeap<HeldMessages.Held>((a, b) => a.due - b.due || a.offset - b.offset)
  for (const timer of timers.held.values()) order.insert(timer)
  const earliest = () => {
    for (let top = order.peek(); top !== undefined; top = order.peek()) {
      const current = timers.held.get(top.offset)
      if (current !== undefined) return current
      order.pop()
    }
    return undefined
  }

  // The wheel: sleep until the earliest timer (or a new, earlier one), fire what is due, repeat.
  // bugs a test of the simulator may plant (none otherwise): timers a second early
  const early = (yield* PlantedBugs.PlantedBugs).has("timer-early") ? 1_000 : 0
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const next = earliest()
    const now = (yield* Clock.currentTimeMillis) + early
    if (next === undefined || next.due > now) {
      const waitFor = wait
      yield* next === undefined ? waitFor : Effect.timeoutOption(waitFor, Duration.millis(next.due - now))
      return
    }
    yield* timers.release(next, "deliver").pipe(
      Effect.catch((error) =>
        Effect.logWarning(`timer ${next.offset} did not fire; retrying in a second`, error).pipe(
          Effect.andThen(Effect.sleep(Duration.seconds(1)))
        ))
    )
  })))

  return {
    /** How many delayed messages wait for their time. */
    pending: () => timers.held.size,
    /** What retention must keep of the delayed messages. */
    keep: timers.keep,
    /** Holds a message until its `deliveryTimestamp`, for `queueId`; returns its place and recall handle. */
    schedule: (queueId: number, message: Message.Message, flush: Store.FlushPolicy) =>
      Effect.map(timers.hold(queueId, message, flush), (timer) => {
        order.insert(timer)
        nudge()
        return { offset: timer.offset, storeTime: timer.heldAt, recallHandle: recallHandleOf(message.topic, timer.offset, timer.due, message.messageId) }
      }),
    /** The receipts of every delayed message scheduled at or after `time`, fired or recalled since or not. */
    scheduledSince: (time: number) =>
      Effect.map(timers.heldSince(time), (found) =>
        found.map(({ heldAt, message, offset, queueId }) => ({
          message,
          queueId,
          offset,
          storeTime: heldAt,
          recallHandle: recallHandleOf(message.topic, offset, message.deliveryTimestamp ?? 0, message.messageId)
        }))),
    /** Cancels a delayed message that has not been delivered yet; returns its message id. */
    recall: (topic: string, handle: string) =>
      Effect.gen(function*() {
        const parsed = parseRecallHandle(handle)
        if (parsed === undefined) return yield* new RecallFailed({ topic, reason: "the recall handle is malformed" })
        const timer = timers.held.get(parsed.offset)
        if (parsed.topic !== topic || timer === undefined || timer.messageId !== parsed.messageId || timer.topic !== topic) {
          return yield* new RecallFailed({ topic, reason: "no pending delayed message has that handle (delivered, recalled, or never sent)" })
        }
        yield* timers.release(timer, "discard")
        nudge()
        return timer.messageId
      })
  }
})
