/**
 * Transactional messages: a half message is held (see `HeldMessages`, internal topic `%HALF%`) and
 * invisible until its producer commits it, which delivers it to its topic once, or rolls it back,
 * which drops it. A half left unresolved is checked back with its producer after a delay, and again at
 * an interval, up to a number of times; then it is discarded and logged.
 *
 * @since 0.1.0
 */
import { type Message, MinHeap } from "@strait/core"
import type { Store } from "@strait/storage"
import { Clock, Context, Duration, Effect, Schema } from "effect"
import * as HeldMessages from "./HeldMessages.ts"
import { wakeup } from "./internal/queues.ts"

/**
 * No unresolved half message of that topic has that transaction id (RocketMQ answers
 * `INVALID_TRANSACTION_ID`): wrong id, or already committed, rolled back or discarded.
 *
 * @since 0.1.0
 */
export class TransactionNotFound extends Schema.TaggedError<TransactionNotFound>()("TransactionNotFound", {
  topic: Schema.String,
  transactionId: Schema.String
}) {
  override get message() {
    return `no open transaction ${this.transactionId} on ${this.topic}`
  }
}

/**
 * How a transaction ends.
 *
 * @since 0.1.0
 */
export type Resolution = "COMMIT" | "ROLLBACK"

/**
 * Who the broker asks about a half message left unresolved: the proxy implements it by sending the
 * producer that sent the half a check-back, whose answer comes back as `endTransaction`.
 *
 * **Gotchas**
 *
 * The default asks nobody: without a proxy, an unresolved half is discarded when its checks run out.
 *
 * @since 0.1.0
 */
export interface TransactionChecker {
  readonly check: (half: { readonly transactionId: string; readonly message: Message.Message; readonly attempt: number }) => Effect.Effect<void>
}

/**
 * Transaction tunables (RocketMQ: first check after 6 s, then every 30 s, at most 15 checks).
 *
 * @since 0.1.0
 */
export const TransactionSettings = Context.Reference<{
  readonly firstCheckAfter: Duration.Input
  readonly checkInterval: Duration.Input
  readonly maxChecks: number
}>("@strait/broker/Transactions/TransactionSettings", {
  defaultValue: () => ({ firstCheckAfter: Duration.seconds(6), checkInterval: Duration.seconds(30), maxChecks: 15 })
})

/**
 * Opens the half messages and starts checking them; runs until the scope closes.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(deps: {
  readonly store: Store.Store
  readonly deliver: (queueId: number, message: Message.Message) => Effect.Effect<void, Store.AppendError>
  readonly checker: TransactionChecker
}) {
  const settings = yield* TransactionSettings
  const halves = yield* HeldMessages.open("%HALF%", deps)
  const firstCheck = Duration.toMillis(settings.firstCheckAfter)
  const interval = Duration.toMillis(settings.checkInterval)
  // checks done and the next one's time, per half (in memory: a restart starts the count again)
  const checks = new Map<number, { done: number; nextAt: number }>()
  // (time, half) of every check to come; an entry that no longer matches its half's schedule (checked
  // since, or resolved) is dropped when it surfaces
  const due = new MinHeap.MinHeap<{ readonly at: number; readonly offset: number }>((a, b) => a.at - b.at || a.offset - b.offset)
  const scheduleOf = (half: HeldMessages.Held) => {
    let schedule = checks.get(half.offset)
    if (schedule === undefined) {
      checks.set(half.offset, schedule = { done: 0, nextAt: half.heldAt + firstCheck })
      due.insert({ at: schedule.nextAt, offset: half.offset })
    }
    return schedule
  }
  for (const half of halves.held.values()) scheduleOf(half)
  const nextCheck = () => {
    for (let top = due.peek(); top !== undefined; top = due.peek()) {
      const half = halves.held.get(top.offset)
      if (half !== undefined && checks.get(top.offset)?.nextAt === top.at) return { half, at: top.at }
      due.pop()
    }
    return undefined
  }
  const { nudge, wait } = wakeup()

  const checkOne = (half: HeldMessages.Held, now: number) =>
    Effect.gen(function*() {
      const schedule = scheduleOf(half)
      if (schedule.done >= settings.maxChecks) {
        yield* Effect.logWarning(`transaction ${half.messageId} on ${half.topic} unresolved after ${schedule.done} checks; discarded`)
        checks.delete(half.offset)
        return yield* halves.release(half, "discard")
      }
      schedule.done++
      schedule.nextAt = now + interval
      due.insert({ at: schedule.nextAt, offset: half.offset })
      const message = yield* halves.read(half.offset)
      yield* Effect.forkScoped(deps.checker.check({ transactionId: half.messageId, message, attempt: schedule.done }))
    })

  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const next = nextCheck()
    if (next === undefined || next.at > now) {
      const waitFor = wait
      yield* next === undefined ? waitFor : Effect.timeoutOption(waitFor, Duration.millis(next.at - now))
      return
    }
    yield* checkOne(next.half, now).pipe(
      Effect.catch((error) =>
        Effect.logWarning(`check-back of ${next.half.messageId} failed; retrying in a second`, error).pipe(
          Effect.andThen(Effect.sleep(Duration.seconds(1)))
        ))
    )
  })))

  return {
    /** Holds a half message for `queueId` of its topic. */
    prepare: (queueId: number, message: Message.Message, flush: Store.FlushPolicy) =>
      Effect.map(halves.hold(queueId, message, flush), (half) => {
        scheduleOf(half)
        nudge()
        return { offset: half.offset, storeTime: half.heldAt }
      }),
    /** The receipts of every half message prepared at or after `time`, resolved since or not. */
    preparedSince: (time: number) =>
      Effect.map(halves.heldSince(time), (found) =>
        found.map(({ heldAt, message, offset, queueId }) => ({ message, queueId, offset, storeTime: heldAt }))),
    /** Commits (delivers once) or rolls back (drops) an open transaction. */
    end: (topic: string, transactionId: string, resolution: Resolution) =>
      Effect.gen(function*() {
        let found: HeldMessages.Held | undefined
        for (const half of halves.held.values()) {
          if (half.messageId === transactionId && half.topic === topic) found = half
        }
        if (found === undefined) return yield* new TransactionNotFound({ topic, transactionId })
        checks.delete(found.offset)
        yield* halves.release(found, resolution === "COMMIT" ? "deliver" : "discard")
        nudge()
      })
  }
})
