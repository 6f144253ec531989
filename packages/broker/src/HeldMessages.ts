/**
 * Messages the broker holds back from their topic until something releases them: delayed messages
 * until their time, transactional half messages until they are committed.
 *
 * A held message is a record of an internal topic's queue 0 (its destination queue id, then the
 * encoded message); queue 1 holds a marker for each one released (delivered or discarded). Opening
 * rebuilds what is held as "records without a marker". Releasing with delivery appends the message to
 * its destination and then writes the marker; a crash between the two would deliver twice, so a
 * message held before the restart is first looked for in its destination queue (by message id, from
 * the time it was held) and only delivered if it is not there.
 *
 * @since 0.1.0
 */
import { Bytes, type Message, MessageBatch } from "@strait/core"
import type { Store } from "@strait/storage"
import { Effect, Result } from "effect"
import { scanQueue } from "./internal/queues.ts"

const Delivered = 1
const Discarded = 2

/**
 * What is known of a held message without reading it back.
 *
 * @since 0.1.0
 */
export interface Held {
  readonly offset: number
  readonly heldAt: number
  readonly topic: string
  readonly queueId: number
  readonly messageId: string
  /** When it should be released (its delivery time; 0 when the owner decides otherwise). */
  readonly due: number
  /** Held before this broker opened: it may have been delivered just before a crash. */
  readonly fromBeforeRestart: boolean
}

const encodeHeld = (queueId: number, message: Message.Message) => {
  const encoded = MessageBatch.encode([message])
  const bytes = Bytes.allocKept(4 + encoded.length)
  Bytes.viewOf(bytes).setUint32(0, queueId, true)
  bytes.set(encoded, 4)
  return bytes
}

const decodeHeld = (bytes: Uint8Array) => {
  const queueId = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
  const decoded = MessageBatch.decode(bytes.subarray(4))
  return Result.isSuccess(decoded) ? { queueId, message: decoded.success[0]! } : undefined
}

const encodeMarker = (kind: number, offset: number) => {
  const bytes = Bytes.allocKept(9)
  const view = Bytes.viewOf(bytes)
  view.setUint8(0, kind)
  view.setFloat64(1, offset, true)
  return bytes
}

/**
 * Opens the held messages of the internal topic `topic`.
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(topic: string, deps: {
  readonly store: Store.Store
  /** Appends a message to its destination queue (and wakes that topic's consumers). */
  readonly deliver: (queueId: number, message: Message.Message) => Effect.Effect<void, Store.AppendError>
}) {
  const heldQueue = { topic, queueId: 0 }
  const markerQueue = { topic, queueId: 1 }
  const released = new Set<number>()
  yield* scanQueue(deps.store, markerQueue, (marker) => {
    released.add(new DataView(marker.body.buffer, marker.body.byteOffset, 9).getFloat64(1, true))
    return false
  })
  const held = new Map<number, Held>()
  let undecodable: number | undefined
  yield* scanQueue(deps.store, heldQueue, (record) => {
    if (released.has(record.offset)) return false
    const decoded = decodeHeld(record.body)
    if (decoded === undefined) {
      undecodable = record.offset
      return true
    }
    held.set(record.offset, {
      offset: record.offset,
      heldAt: record.storeTime,
      topic: decoded.message.topic,
      queueId: decoded.queueId,
      messageId: decoded.message.messageId,
      due: decoded.message.deliveryTimestamp ?? 0,
      fromBeforeRestart: true
    })
    return false
  })
  // the record passed its CRC: one that does not decode is a bug
  if (undecodable !== undefined) return yield* Effect.die(new Error(`held message ${topic}@${undecodable} does not decode`))

  const read = (offset: number) =>
    Effect.gen(function*() {
      const [record] = yield* deps.store.read(heldQueue, offset, { maxCount: 1, maxBytes: 1 })
      const decoded = record === undefined ? undefined : decodeHeld(record.body)
      if (decoded === undefined) return yield* Effect.die(new Error(`held message ${topic}@${offset} cannot be read back`))
      return decoded
    })

  /** Whether the destination already holds the message (delivered just before a crash). */
  const alreadyDelivered = (item: Held) =>
    Effect.gen(function*() {
      const queue = { topic: item.topic, queueId: item.queueId }
      const from = yield* deps.store.offsetForTime(queue, item.heldAt)
      return yield* scanQueue(deps.store, queue, (record) => {
        const decoded = MessageBatch.decode(record.body)
        return Result.isSuccess(decoded) && decoded.success[0]!.messageId === item.messageId
      }, from)
    })

  // released but not yet marked: retention keeps these too (the message is read back to deliver it)
  const releasing = new Set<number>()

  return {
    /** What is held, by offset. */
    held: held as ReadonlyMap<number, Held>,
    /**
     * What retention must keep: the oldest message still held (a marker is written after its
     * message, so the markers still needed are kept with it).
     */
    keep: (): ReadonlyArray<Store.Keep> => {
      let oldest = Number.POSITIVE_INFINITY
      for (const offset of held.keys()) oldest = Math.min(oldest, offset)
      for (const offset of releasing) oldest = Math.min(oldest, offset)
      return oldest === Number.POSITIVE_INFINITY ? [] : [{ queue: heldQueue, offset: oldest }]
    },
    /** Holds a message for `queueId` of its topic. */
    hold: (queueId: number, message: Message.Message, flush: Store.FlushPolicy) =>
      Effect.gen(function*() {
        const [appended] = yield* deps.store.append(heldQueue, [{ body: encodeHeld(queueId, message), tagHash: 0 }], flush)
        const item: Held = {
          offset: appended!.offset,
          heldAt: appended!.storeTime,
          topic: message.topic,
          queueId,
          messageId: message.messageId,
          due: message.deliveryTimestamp ?? 0,
          fromBeforeRestart: false
        }
        held.set(item.offset, item)
        return item
      }),
    /**
     * Every message held at or after `time`, released since or not, in the order held (what a
     * restarted broker needs to answer a producer's retry with the first receipt).
     */
    heldSince: (time: number) =>
      Effect.gen(function*() {
        const found: Array<{ readonly offset: number; readonly heldAt: number; readonly queueId: number; readonly message: Message.Message }> = []
        yield* scanQueue(deps.store, heldQueue, (record) => {
          const decoded = decodeHeld(record.body)
          if (decoded !== undefined) found.push({ offset: record.offset, heldAt: record.storeTime, ...decoded })
          return false
        }, yield* deps.store.offsetForTime(heldQueue, time))
        return found
      }),
    /** The held message itself. */
    read: (offset: number) => Effect.map(read(offset), (decoded) => decoded.message),
    /**
     * Releases a held message: `deliver` appends it to its destination (once), `discard` drops it.
     *
     * **Gotchas**
     *
     * It leaves `held` before anything is written, so a second release racing it finds nothing; if
     * the release fails it is held again.
     */
    release: (item: Held, outcome: "deliver" | "discard") =>
      Effect.gen(function*() {
        held.delete(item.offset)
        releasing.add(item.offset)
        if (outcome === "deliver") {
          const { message, queueId } = yield* read(item.offset)
          if (!item.fromBeforeRestart || !(yield* alreadyDelivered(item))) yield* deps.deliver(queueId, message)
        }
        yield* deps.store.append(
          markerQueue,
          [{ body: encodeMarker(outcome === "deliver" ? Delivered : Discarded, item.offset), tagHash: 0 }],
          "sync"
        )
      }).pipe(
        Effect.tapError(() => Effect.sync(() => held.set(item.offset, { ...item, fromBeforeRestart: true }))),
        Effect.ensuring(Effect.sync(() => releasing.delete(item.offset)))
      )
  }
})
