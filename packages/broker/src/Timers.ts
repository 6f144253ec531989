/**
 * Delayed delivery: a message sent for a future time waits in a durable timer store and reaches its
 * topic at that time, once, even across restarts; until then it can be recalled.
 *
 * Timers are records of the internal topic `%TIMER%`, queue 0 (the destination queue id, then the
 * encoded message); queue 1 holds a marker for each timer that fired or was recalled. Opening rebuilds
 * the pending timers as "timers without a marker". Firing appends the message to its destination and
 * then writes the marker; a crash between the two would fire again, so a timer that came due before
 * the restart is first looked for in its destination queue (by message id, from its due time on) and
 * only fired if it is not there.
 *
 * @since 0.1.0
 */
import { Message, MessageBatch } from "@strait/core"
import type { Store } from "@strait/storage"
import { Clock, Deferred, Duration, Effect, Result, Schema } from "effect"
import { Buffer } from "node:buffer"

const timerQueue = { topic: "%TIMER%", queueId: 0 }
const markerQueue = { topic: "%TIMER%", queueId: 1 }
const Fired = 1
const Recalled = 2

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

interface Pending {
  readonly offset: number
  readonly due: number
  readonly topic: string
  readonly queueId: number
  readonly messageId: string
  /** It came due before this broker opened: it may have fired just before a crash. */
  readonly maybeFired: boolean
}

const recallHandleOf = (topic: string, offset: number, due: number, messageId: string) =>
  Buffer.from(`v1 ${topic} ${offset} ${due} ${messageId}`, "utf8").toString("base64url")

const parseRecallHandle = (handle: string) => {
  const parts = Buffer.from(handle, "base64url").toString("utf8").split(" ")
  if (parts.length !== 5 || parts[0] !== "v1") return undefined
  const offset = Number(parts[2])
  const due = Number(parts[3])
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(due)) return undefined
  return { topic: parts[1]!, offset, due, messageId: parts[4]! }
}

const encodeTimer = (queueId: number, message: Message.Message) => {
  const encoded = MessageBatch.encode([message])
  const bytes = new Uint8Array(4 + encoded.length)
  new DataView(bytes.buffer).setUint32(0, queueId, true)
  bytes.set(encoded, 4)
  return bytes
}

const decodeTimer = (bytes: Uint8Array) => {
  const queueId = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
  const decoded = MessageBatch.decode(bytes.subarray(4))
  return Result.isSuccess(decoded) ? { queueId, message: decoded.success[0]! } : undefined
}

const encodeMarker = (kind: number, offset: number) => {
  const bytes = new Uint8Array(9)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, kind)
  view.setFloat64(1, offset, true)
  return bytes
}

/** Reads a whole internal queue from its start. */
const readAll = (store: Store.Store, queue: Store.QueueRef) =>
  Effect.gen(function*() {
    const { end, start } = yield* store.bounds(queue)
    const out: Array<Store.StoredRecord> = []
    let offset = start
    while (offset < end) {
      const records = yield* store.read(queue, offset, { maxCount: 4096, maxBytes: 16 * 1024 * 1024 })
      if (records.length === 0) break
      out.push(...records)
      offset = records[records.length - 1]!.offset + 1
    }
    return out
  })

/**
 * Opens the timer store and starts firing; runs until the scope closes.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(deps: {
  readonly store: Store.Store
  /** Appends a message to its destination queue (and wakes that topic's consumers). */
  readonly deliver: (queueId: number, message: Message.Message) => Effect.Effect<void, Store.AppendError>
}) {
  const openedAt = yield* Clock.currentTimeMillis
  const settled = new Set<number>()
  for (const marker of yield* readAll(deps.store, markerQueue)) {
    settled.add(new DataView(marker.body.buffer, marker.body.byteOffset, 9).getFloat64(1, true))
  }
  // pending timers by offset, and their order by (due, offset)
  const pending = new Map<number, Pending>()
  for (const record of yield* readAll(deps.store, timerQueue)) {
    if (settled.has(record.offset)) continue
    const timer = decodeTimer(record.body)
    // the record passed its CRC: a timer that does not decode is a bug
    if (timer === undefined) return yield* Effect.die(new Error(`timer ${record.offset} does not decode`))
    const due = timer.message.deliveryTimestamp ?? 0
    pending.set(record.offset, {
      offset: record.offset,
      due,
      topic: timer.message.topic,
      queueId: timer.queueId,
      messageId: timer.message.messageId,
      maybeFired: due <= openedAt
    })
  }
  let wake = Deferred.makeUnsafe<void>()
  const nudge = () => {
    const waiting = wake
    wake = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(waiting, Effect.void)
  }

  /** Whether the destination already holds the message (fired just before a crash). */
  const alreadyDelivered = (timer: Pending) =>
    Effect.gen(function*() {
      const queue = { topic: timer.topic, queueId: timer.queueId }
      let offset = yield* deps.store.offsetForTime(queue, timer.due)
      const { end } = yield* deps.store.bounds(queue)
      while (offset < end) {
        const records = yield* deps.store.read(queue, offset, { maxCount: 1024, maxBytes: 16 * 1024 * 1024 })
        if (records.length === 0) break
        for (const record of records) {
          const decoded = MessageBatch.decode(record.body)
          if (Result.isSuccess(decoded) && decoded.success[0]!.messageId === timer.messageId) return true
        }
        offset = records[records.length - 1]!.offset + 1
      }
      return false
    })

  // A firing timer leaves `pending` first, so a recall racing it fails rather than "succeeding" for a
  // message already on its way; if firing fails the timer goes back.
  const fire = (timer: Pending) =>
    Effect.gen(function*() {
      pending.delete(timer.offset)
      const [record] = yield* deps.store.read(timerQueue, timer.offset, { maxCount: 1, maxBytes: 1 })
      const decoded = record === undefined ? undefined : decodeTimer(record.body)
      if (decoded === undefined) return yield* Effect.die(new Error(`timer ${timer.offset} cannot be read back`))
      if (!timer.maybeFired || !(yield* alreadyDelivered(timer))) yield* deps.deliver(decoded.queueId, decoded.message)
      yield* deps.store.append(markerQueue, [{ body: encodeMarker(Fired, timer.offset), tagHash: 0 }], "sync")
    }).pipe(Effect.tapError(() => Effect.sync(() => pending.set(timer.offset, { ...timer, maybeFired: true }))))

  const earliest = () => {
    let first: Pending | undefined
    for (const timer of pending.values()) {
      if (first === undefined || timer.due < first.due || (timer.due === first.due && timer.offset < first.offset)) first = timer
    }
    return first
  }

  // The wheel: sleep until the earliest timer (or a new, earlier one), fire what is due, repeat.
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const next = earliest()
    const now = yield* Clock.currentTimeMillis
    if (next === undefined || next.due > now) {
      const waitFor = Deferred.await(wake)
      yield* next === undefined ? waitFor : Effect.timeoutOption(waitFor, Duration.millis(next.due - now))
      return
    }
    yield* fire(next).pipe(
      Effect.catch((error) =>
        Effect.logWarning(`timer ${next.offset} did not fire; retrying in a second`, error).pipe(
          Effect.andThen(Effect.sleep(Duration.seconds(1)))
        ))
    )
  })))

  return {
    /** Stores a message for delivery at its `deliveryTimestamp` to `queueId`; returns its recall handle. */
    schedule: (queueId: number, message: Message.Message, flush: Store.FlushPolicy) =>
      Effect.gen(function*() {
        const [appended] = yield* deps.store.append(timerQueue, [{ body: encodeTimer(queueId, message), tagHash: 0 }], flush)
        const due = message.deliveryTimestamp ?? 0
        pending.set(appended!.offset, {
          offset: appended!.offset,
          due,
          topic: message.topic,
          queueId,
          messageId: message.messageId,
          maybeFired: false
        })
        nudge()
        return { ...appended!, recallHandle: recallHandleOf(message.topic, appended!.offset, due, message.messageId) }
      }),
    /** Cancels a delayed message that has not been delivered yet; returns its message id. */
    recall: (topic: string, handle: string) =>
      Effect.gen(function*() {
        const parsed = parseRecallHandle(handle)
        if (parsed === undefined) return yield* new RecallFailed({ topic, reason: "the recall handle is malformed" })
        const timer = pending.get(parsed.offset)
        if (parsed.topic !== topic || timer === undefined || timer.messageId !== parsed.messageId || timer.topic !== topic) {
          return yield* new RecallFailed({ topic, reason: "no pending delayed message has that handle (delivered, recalled, or never sent)" })
        }
        pending.delete(parsed.offset)
        yield* deps.store.append(markerQueue, [{ body: encodeMarker(Recalled, parsed.offset), tagHash: 0 }], "sync").pipe(
          Effect.tapError(() => Effect.sync(() => pending.set(parsed.offset, timer)))
        )
        nudge()
        return timer.messageId
      }),
    pending: Effect.sync(() => pending.size)
  }
})
