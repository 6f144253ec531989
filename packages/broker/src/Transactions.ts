/**
 * Transactional messages: a half message is held (see `HeldMessages`, internal topic `%HALF%`) and
 * invisible until its producer commits it, which delivers it to its topic once, or rolls it back,
 * which drops it. A half left unresolved is checked back with its producer after a delay, and again at
 * an interval, up to a number of times; then it is discarded and logged. A check goes to the
 * `TransactionChecker` given, or, without one, waits in a bounded buffer until someone takes it
 * (`awaitChecks`: a proxy long-polling the broker over the data plane).
 *
 * @since 0.1.0
 */
import { type Message, MinHeap } from "@strait/core"
import type { Store } from "@strait/storage"
import { Clock, Context, Duration, Effect, Exit, Schema } from "effect"
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
 * One check-back of an unresolved half message: its transaction id, the half itself, and which check
 * of it this is (from 1).
 *
 * @since 0.1.0
 */
export interface TransactionCheck {
  readonly transactionId: string
  readonly message: Message.Message
  readonly attempt: number
}

/**
 * Who the broker asks about a half message left unresolved: the proxy implements it by sending the
 * producer that sent the half a check-back, whose answer comes back as `endTransaction`.
 *
 * **When to use**
 *
 * For a proxy in the broker's process. A proxy across the data plane takes the checks with
 * `awaitChecks` instead (what the broker does when no checker is given).
 *
 * **Gotchas**
 *
 * With neither, nobody is asked: an unresolved half is discarded when its checks run out.
 *
 * @since 0.1.0
 */
export interface TransactionChecker {
  readonly check: (half: TransactionCheck) => Effect.Effect<void>
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
  /**
   * Without a checker: at most this many checks wait to be taken by `awaitChecks`; past it the oldest
   * is dropped (its half is checked again at the next interval anyway).
   */
  readonly maxDueChecks: number
}>("@strait/broker/Transactions/TransactionSettings", {
  defaultValue: () => ({ firstCheckAfter: Duration.seconds(6), checkInterval: Duration.seconds(30), maxChecks: 15, maxDueChecks: 10_000 })
})

// at most this many checks per take, as a receive takes at most 32 messages
const maxChecksPerTake = 32

/**
 * Opens the half messages and starts checking them; runs until the scope closes. Without a `checker`,
 * the checks due are kept for `awaitChecks`.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(deps: {
  readonly store: Store.Store
  readonly deliver: (queueId: number, message: Message.Message) => Effect.Effect<void, Store.AppendError>
  readonly checker?: TransactionChecker | undefined
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

  // Without a checker: the checks due, oldest first, by the half's offset and the check's number (the
  // half is read when the check is taken, so the buffer holds no message bodies)
  const dueChecks: Array<{ readonly offset: number; readonly attempt: number }> = []
  const checksArrived = wakeup()
  // past the bound the oldest go; a waiting taker looks
  const arrived = () => {
    if (dueChecks.length > settings.maxDueChecks) dueChecks.splice(0, dueChecks.length - settings.maxDueChecks)
    checksArrived.nudge()
  }
  const keep = (offset: number, attempt: number) => {
    dueChecks.push({ offset, attempt })
    arrived()
  }
  // Takes up to `max` checks still current, synchronously: a check of a half resolved since, or
  // superseded by a later check of it, is dropped.
  const takeDue = (max: number) => {
    const taken: Array<{ readonly offset: number; readonly attempt: number; readonly half: HeldMessages.Held }> = []
    let i = 0
    for (; i < dueChecks.length && taken.length < max; i++) {
      const { attempt, offset } = dueChecks[i]!
      const half = halves.held.get(offset)
      if (half !== undefined && checks.get(offset)?.done === attempt) taken.push({ offset, attempt, half })
    }
    dueChecks.splice(0, i)
    return taken
  }
  const putBack = (taken: ReadonlyArray<{ readonly offset: number; readonly attempt: number }>) => {
    dueChecks.unshift(...taken.map(({ attempt, offset }) => ({ offset, attempt })))
    arrived()
  }

  // Takes up to `limit` checks and reads their halves. A take whose reads fail or are interrupted goes
  // back for the next taker; the take runs inside that guard, after any wait.
  const takeChecks = (limit: number) => {
    let taken: ReadonlyArray<{ readonly offset: number; readonly attempt: number; readonly half: HeldMessages.Held }> = []
    return Effect.suspend(() => {
      taken = takeDue(limit)
      return Effect.forEach(taken, ({ attempt, half }) =>
        Effect.map(halves.read(half.offset), (message): TransactionCheck => ({ transactionId: half.messageId, message, attempt })))
    }).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => putBack(taken))))
  }

  const awaitChecks = (max: number, wait: Duration.Input) =>
    Effect.gen(function*() {
      const limit = Math.max(1, Math.min(maxChecksPerTake, Math.floor(max) || 1))
      const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(wait)
      while (true) {
        const found = yield* takeChecks(limit)
        const now = yield* Clock.currentTimeMillis
        if (found.length > 0 || now >= deadline) return found
        // nothing is taken while waiting: an interrupted wait loses no check
        yield* Effect.timeoutOption(checksArrived.wait, Duration.millis(deadline - now))
      }
    })

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
      if (deps.checker === undefined) return keep(half.offset, schedule.done)
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
    /** How many half messages wait for their transaction's end. */
    open: () => halves.held.size,
    /** What retention must keep of the half messages. */
    keep: halves.keep,
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
      }),
    /**
     * Up to `max` (at most 32) checks due (without a checker), waiting up to `wait` for the first.
     * With a checker nothing is kept here: it waits `wait` and returns none.
     */
    awaitChecks
  }
})
