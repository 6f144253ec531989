/**
 * Pop consumption: a consumer group receives messages from any queue of a topic; each stays invisible
 * to the group for a window, until it is acknowledged with its receipt handle or its window ends and
 * it is delivered again with the next attempt number; past the group's maximum attempts it goes to the
 * group's dead-letter topic instead.
 *
 * A message whose time to live (`ttlMillis`, from its store time) has run out is never delivered and
 * is counted. Every window given (a receive, a change of invisibility) and every acknowledgement is
 * also a record of the internal queue `%POP%`, replayed on open: a restarted broker keeps messages
 * in flight invisible until their windows end, continues their attempt counts, and does not deliver
 * acknowledged messages again. State is per (group, topic) and every operation on it runs under one permit, so a pop, an ack and a
 * change of invisibility never interleave. Expiry is evaluated when the state is next used, not by a
 * timer per message; a parked long poll sleeps until the earliest window ends.
 *
 * `snapshot` writes the whole state again as records, after which replay starts from the snapshot.
 * Retention needs nothing kept of `%POP%`: a record always follows the message it is about in the
 * log, and only a prefix of the log is deleted, so a deleted record was about a deleted message.
 * Messages retention deleted are forgotten by each group before its next receive.
 *
 * @since 0.1.0
 */
import { Bytes, ConsumerGroup, Limits, Message, MessageBatch, PlantedBugs, ReceiptHandle, Topic } from "@strait/core"
import type { Disk, Store } from "@strait/storage"
import { Clock, Data, Deferred, Duration, Effect, type Redacted, Result, Schema, Semaphore } from "effect"
import type * as Filter from "./Filter.ts"
import { scanQueue } from "./internal/queues.ts"
import type * as Topics from "./Topics.ts"

/**
 * The handle names a message this group no longer holds under that handle: it was acknowledged, its
 * invisibility was changed (which issued a newer handle), or it was delivered again.
 *
 * @since 0.1.0
 */
export class ReceiptHandleStale extends Schema.TaggedError<ReceiptHandleStale>()("ReceiptHandleStale", {
  topic: Schema.String,
  queueId: Schema.Number,
  offset: Schema.Number
}) {
  override get message() {
    return `the receipt handle of ${this.topic}/${this.queueId}@${this.offset} is no longer valid`
  }
}

/**
 * An invisibility window outside [0, `Limits.maxInvisibilityMillis`] (RocketMQ `ILLEGAL_INVISIBLE_TIME`).
 *
 * @since 0.1.0
 */
export class IllegalInvisibleTime extends Schema.TaggedError<IllegalInvisibleTime>()("IllegalInvisibleTime", {
  millis: Schema.Number,
  max: Schema.Number
}) {}

/**
 * The handle was issued for another topic than the request names.
 *
 * @since 0.1.0
 */
export class ReceiptHandleMismatch extends Schema.TaggedError<ReceiptHandleMismatch>()("ReceiptHandleMismatch", {
  expected: Schema.String,
  actual: Schema.String
}) {}

/**
 * A received message with its receipt handle.
 *
 * @since 0.1.0
 */
export interface Received {
  readonly message: Message.StoredMessage
  readonly receiptHandle: string
  readonly invisibleUntil: number
}

/**
 * A receive: up to `maxMessages` (at most 32) of `topic` for `group`, each invisible for
 * `invisibleDuration`; with `pollTimeout` an empty receive waits for a message.
 *
 * @since 0.1.0
 */
export interface PopRequest {
  readonly group: string
  readonly topic: string
  readonly maxMessages: number
  readonly invisibleDuration: Duration.Input
  readonly pollTimeout?: Duration.Input
  readonly filter?: Filter.Filter
  /** A retry of a receive with this id returns the same messages while they are still held. */
  readonly attemptId?: string
}

/**
 * What a handle operation can fail with.
 *
 * @since 0.1.0
 */
export type HandleError =
  | ReceiptHandle.InvalidReceiptHandle
  | ReceiptHandle.ReceiptHandleExpired
  | ReceiptHandleStale
  | ReceiptHandleMismatch

/**
 * What an acknowledgement can fail with.
 *
 * @since 0.1.0
 */
export type AckError = HandleError | Topics.TopicNotFound

interface InFlight {
  popTime: number
  invisibleUntil: number
  /** The handle issued for this window (absent for windows from before a restart). */
  handle?: string
}

interface QueueState {
  /** The next offset never delivered to the group. */
  cursor: number
  /** Every offset below this is acknowledged (or filtered out, or dead-lettered). */
  consumed: number
  readonly inFlight: Map<number, InFlight>
  /** Offsets whose window ended unacknowledged: delivered again before anything new. */
  readonly visibleAgain: Set<number>
  readonly attempts: Map<number, number>
  /** Acknowledged offsets above `consumed`. */
  readonly done: Set<number>
  /** FIFO: per message group, offsets read but held back behind the group's head, in order. */
  readonly waiting: Map<string, Array<number>>
  /** FIFO: the message group of every offset in flight or visible again (its group's head). */
  readonly heads: Map<number, string>
  /** FIFO: message groups whose head is in flight or visible again. */
  readonly blocked: Set<string>
  waitingTotal: number
  /** PRIORITY: offsets read ahead and not yet delivered. */
  readonly ready: Set<number>
  /** PRIORITY: the rank of every offset read ahead until it is done, so a redelivery keeps it. */
  readonly ranks: Map<number, { readonly priority: number; readonly storeTime: number }>
}

// an in-flight message a handle names
interface Located {
  readonly queue: QueueState
  readonly queueId: number
  readonly offset: number
  readonly entry: InFlight
}

const maxWaitingPerQueue = 10_000
// how far a priority receive looks ahead in each queue for higher-priority messages
const priorityReadAhead = 256

/** Internal: what consumption needs from the broker. */
export interface Dependencies {
  readonly brokerName: string
  readonly store: Store.Store
  readonly topic: (name: string) => Effect.Effect<Topics.TopicSpec, Topics.TopicNotFound>
  readonly group: (name: string) => Effect.Effect<ConsumerGroup.ConsumerGroup>
  readonly committedOffset: (group: string, topic: string, queueId: number) => Effect.Effect<number | undefined>
  /** Stores a message in the group's dead-letter topic. */
  readonly deadLetter: (group: string, message: Message.Message) => Effect.Effect<void, Store.AppendError | Topics.TopicNotFound>
  /** Every consumer group used here. */
  readonly groupNames: () => ReadonlyArray<string>
  /** The offset of `%POP%` where the latest snapshot starts (replay starts there), kept durably elsewhere. */
  readonly snapshotFrom: number
  /** Records durably where the latest snapshot starts. */
  readonly saveSnapshotFrom: (offset: number) => Effect.Effect<void, Disk.DiskError>
  /**
   * FIFO: whether another broker that wrote the queue before still holds earlier messages of the
   * message group for the consumer group (they go first).
   */
  readonly heldElsewhere?: (group: string, topic: string, queueId: number, messageGroup: string) => boolean
}

// The consumer-state log: one record per window given or acknowledgement, durable with the async
// flush. Layout: kind (u8), queue id (u32), offset, pop time, window end (f64), attempt (u32), then
// `group \0 topic` in UTF-8. An acknowledgement leaves the window fields zero. A snapshot writes,
// per queue of each (group, topic), a `Consumed` record (everything below its offset is done: what
// records said of those offsets no longer counts), then its acknowledgements above that and its
// windows; a `SnapshotEnd` record (no key) closes it. Replayed after the records it restates, a
// snapshot agrees with them (acknowledgements only add up, the newest window counts), so replay may
// start anywhere before it.
const stateQueue = { topic: "%POP%", queueId: 0 }
const Window = 1
const Acknowledged = 2
const Consumed = 3
const SnapshotEnd = 4
const fixedBytes = 33
// the consumer-state log is snapshotted once it holds this many records more than twice the last snapshot
const snapshotSlack = 1024
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const encodeState = (kind: number, key: Uint8Array, queueId: number, offset: number, popTime = 0, invisibleUntil = 0, attempt = 0) => {
  const bytes = Bytes.allocKept(fixedBytes + key.length)
  const view = Bytes.viewOf(bytes)
  view.setUint8(0, kind)
  view.setUint32(1, queueId, true)
  view.setFloat64(5, offset, true)
  view.setFloat64(13, popTime, true)
  view.setFloat64(21, invisibleUntil, true)
  view.setUint32(29, attempt, true)
  bytes.set(key, fixedBytes)
  return bytes
}

/** What the consumer-state log says of one queue of one (group, topic). */
interface Recovered {
  /** `group \0 topic` in UTF-8, and the queue, to write the entry again in a snapshot. */
  readonly key: Uint8Array
  readonly queueId: number
  /** Everything below is done (from a snapshot). */
  consumed: number | undefined
  readonly acked: Set<number>
  readonly windows: Map<number, { readonly popTime: number; readonly invisibleUntil: number; readonly attempt: number }>
}

const queueKey = (groupTopic: string, queueId: number) => `${groupTopic}\u0000${queueId}`

class Woken extends Data.Class<{}> {}

/**
 * Builds Pop consumption over the broker's store.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(deps: Dependencies) {
  // bugs a test of the simulator may plant (none otherwise)
  const bugs = yield* PlantedBugs.PlantedBugs
  const fifoHeadSkipped = bugs.has("fifo-head-skipped")
  const attemptNotIncremented = bugs.has("attempt-not-incremented")
  interface GroupTopicState {
    readonly lock: Semaphore.Semaphore
    readonly queues: Array<QueueState>
    /** The last receive that named an attempt id, to answer its retry with the same messages. */
    lastAttempt: { readonly id: string; readonly received: ReadonlyArray<Received> } | undefined
    rotation: number
    /** The store's retention round this state last forgot deleted messages for. */
    retained: number
  }
  const states = new Map<string, GroupTopicState>()
  // the consumer-state log replayed, until each queue's state is first built from it
  const recovered = new Map<string, Recovered>()
  // where the latest snapshot starts: replay starts there
  let snapshotFrom = deps.snapshotFrom
  let snapshotRecords = 0
  yield* scanQueue(deps.store, stateQueue, (record) => {
    const view = new DataView(record.body.buffer, record.body.byteOffset, fixedBytes)
    const kind = view.getUint8(0)
    if (kind === SnapshotEnd) return false
    const keyBytes = record.body.subarray(fixedBytes)
    const queueId = view.getUint32(1, true)
    const key = queueKey(decoder.decode(keyBytes), queueId)
    let entry = recovered.get(key)
    if (entry === undefined) {
      recovered.set(key, entry = { key: keyBytes.slice(), queueId, consumed: undefined, acked: new Set(), windows: new Map() })
    }
    const offset = view.getFloat64(5, true)
    if (kind === Consumed) {
      entry.consumed = Math.max(entry.consumed ?? 0, offset)
      for (const acked of entry.acked) if (acked < offset) entry.acked.delete(acked)
      for (const window of entry.windows.keys()) if (window < offset) entry.windows.delete(window)
    } else if (kind === Acknowledged) {
      entry.acked.add(offset)
      entry.windows.delete(offset)
    } else if (!entry.acked.has(offset)) {
      entry.windows.set(offset, { popTime: view.getFloat64(13, true), invisibleUntil: view.getFloat64(21, true), attempt: view.getUint32(29, true) })
    }
    return false
  }, snapshotFrom)
  const keyBytes = new Map<string, Uint8Array>()
  const keyOf = (group: string, topic: string) => {
    const key = `${group}\u0000${topic}`
    let bytes = keyBytes.get(key)
    if (bytes === undefined) keyBytes.set(key, bytes = encoder.encode(key))
    return bytes
  }
  // written with the store's next batch, not waited for: a record lost in a crash only means a
  // message delivered again (early, or after its acknowledgement), which at-least-once allows
  const record = (bodies: ReadonlyArray<Uint8Array>) =>
    deps.store.appendLater([{ queue: stateQueue, messages: bodies.map((body) => ({ body, tagHash: 0 })) }])
  let expired = 0
  // retention rounds that deleted messages: each state forgets what it held of them before its next pass
  let retentionRounds = 0
  // parked long polls per topic and group, oldest first: an append wakes one per group (not every
  // poll, which would all rescan the topic for what one of them takes)
  const parked = new Map<string, Map<string, Set<Deferred.Deferred<Woken>>>>()
  const wakeOne = (waiting: Set<Deferred.Deferred<Woken>> | undefined) => {
    const first = waiting?.values().next()
    if (first === undefined || first.done === true) return
    waiting!.delete(first.value)
    Deferred.doneUnsafe(first.value, Effect.succeed(new Woken()))
  }

  const stateOf = (group: string, spec: Topics.TopicSpec) =>
    Effect.gen(function*() {
      const key = `${group}\u0000${spec.name}`
      let state = states.get(key)
      if (state === undefined) {
        state = { lock: Semaphore.makeUnsafe(1), queues: [], lastAttempt: undefined, rotation: 0, retained: retentionRounds }
        states.set(key, state)
      }
      // a topic may have grown since: new queues start at their beginning or the committed offset
      while (state.queues.length < spec.queues) {
        const queueId = state.queues.length
        const bounds = yield* deps.store.bounds({ topic: spec.name, queueId })
        const committed = (yield* deps.committedOffset(group, spec.name, queueId)) ?? bounds.start
        // another use of the state built this queue meanwhile
        if (state.queues.length !== queueId) continue
        // From here to the push, one synchronous step: the queue's recovered state moves into the
        // state whole, so a snapshot finds it in one place or the other.
        const before = recovered.get(queueKey(key, queueId))
        recovered.delete(queueKey(key, queueId))
        const start = Math.max(bounds.start, committed, before?.consumed ?? bounds.start)
        const acked = new Set([...(before?.acked ?? [])].filter((offset) => offset >= start))
        let consumed = start
        while (acked.has(consumed)) acked.delete(consumed++)
        // windows given before the restart stay in force, and their attempts count on
        const inFlight = new Map<number, InFlight>()
        const attempts = new Map<number, number>()
        for (const [offset, window] of before?.windows ?? []) {
          if (offset < consumed || acked.has(offset)) continue
          inFlight.set(offset, { popTime: window.popTime, invisibleUntil: window.invisibleUntil })
          attempts.set(offset, window.attempt)
        }
        state.queues.push({
          cursor: consumed,
          consumed,
          inFlight,
          visibleAgain: new Set(),
          attempts,
          done: acked,
          waiting: new Map(),
          heads: new Map(),
          blocked: new Set(),
          waitingTotal: 0,
          ready: new Set(),
          ranks: new Map()
        })
      }
      return state
    })

  /** Takes a message out of the group's books; true when it was a FIFO head, so its message group is free again. */
  const markDone = (queue: QueueState, offset: number): boolean => {
    const messageGroup = queue.heads.get(offset)
    if (messageGroup !== undefined) queue.blocked.delete(messageGroup)
    queue.heads.delete(offset)
    queue.ranks.delete(offset)
    queue.ready.delete(offset)
    queue.inFlight.delete(offset)
    queue.visibleAgain.delete(offset)
    queue.attempts.delete(offset)
    queue.done.add(offset)
    while (queue.done.has(queue.consumed)) queue.done.delete(queue.consumed++)
    return messageGroup !== undefined
  }

  /**
   * Retention deleted the queue's messages below `start`: the group forgets them (in flight or not,
   * nothing can deliver them again) and goes on from `start`.
   */
  const forgetBelow = (queue: QueueState, start: number) => {
    if (queue.consumed >= start) return
    const gone = new Set<number>()
    for (const offsets of [queue.inFlight.keys(), queue.visibleAgain, queue.ready, queue.heads.keys()]) {
      for (const offset of offsets) if (offset < start) gone.add(offset)
    }
    for (const offset of gone) markDone(queue, offset)
    for (const offset of queue.done) if (offset < start) queue.done.delete(offset)
    for (const offset of queue.attempts.keys()) if (offset < start) queue.attempts.delete(offset)
    for (const offset of queue.ranks.keys()) if (offset < start) queue.ranks.delete(offset)
    for (const [messageGroup, line] of queue.waiting) {
      const kept = line.filter((offset) => offset >= start)
      queue.waitingTotal -= line.length - kept.length
      if (kept.length === 0) queue.waiting.delete(messageGroup)
      else queue.waiting.set(messageGroup, kept)
    }
    queue.consumed = start
    queue.cursor = Math.max(queue.cursor, start)
    while (queue.done.has(queue.consumed)) queue.done.delete(queue.consumed++)
  }

  /** Forgets what retention deleted from the state's queues, once per retention round. */
  const catchUpWithRetention = (state: GroupTopicState, topic: string) =>
    Effect.gen(function*() {
      if (state.retained === retentionRounds) return
      state.retained = retentionRounds
      for (let queueId = 0; queueId < state.queues.length; queueId++) {
        forgetBelow(state.queues[queueId]!, (yield* deps.store.bounds({ topic, queueId })).start)
      }
    })

  /** A FIFO message group was freed: the messages behind its head can go out, so a parked receive of the group looks. */
  const wakeGroup = (group: string, topic: string) => wakeOne(parked.get(topic)?.get(group))

  const expire = (queue: QueueState, now: number) => {
    for (const [offset, entry] of queue.inFlight) {
      if (entry.invisibleUntil <= now) {
        queue.inFlight.delete(offset)
        queue.visibleAgain.add(offset)
      }
    }
  }

  const handleFor = (
    key: Redacted.Redacted<Uint8Array>,
    topic: string,
    queueId: number,
    offset: number,
    popTime: number,
    invisibleUntil: number,
    attempt: number
  ) =>
    ReceiptHandle.encodeWith(key, {
      brokerName: deps.brokerName,
      topic: topic as Topic.TopicName,
      queueId: queueId as Topic.QueueId,
      queueOffset: offset as Topic.Offset,
      popTime,
      invisibleUntil,
      fencingEpoch: 0,
      deliveryAttempt: attempt
    })

  /**
   * The queue's records from its cursor on; a retention round that deleted the ones there
   * meanwhile moves the group past them first.
   */
  const readAtCursor = (queue: QueueState, ref: Store.QueueRef, maxCount: number) =>
    deps.store.read(ref, queue.cursor, { maxCount, maxBytes: 4 * 1024 * 1024 }).pipe(
      Effect.catchTag("OffsetBelowStart", (below) =>
        Effect.suspend(() => {
          forgetBelow(queue, below.start)
          return deps.store.read(ref, queue.cursor, { maxCount, maxBytes: 4 * 1024 * 1024 })
        }))
    )

  interface QueueContext {
    readonly queue: QueueState
    readonly ref: Store.QueueRef
    readonly take: (record: Store.StoredRecord, head: boolean) => void
    readonly readOne: (offset: number) => Effect.Effect<Store.StoredRecord | undefined, Store.ReadError>
  }

  /**
   * PRIORITY topics: the highest priority across every queue goes first, equal priorities in store
   * order; a message delivered again keeps its rank.
   */
  const byPriority = Effect.fnUntraced(function*(
    queues: ReadonlyArray<QueueState>,
    context: (queueId: number) => QueueContext,
    now: number,
    max: number,
    out: ReadonlyArray<Received>
  ) {
    const candidates: Array<{ readonly queueId: number; readonly offset: number; readonly priority: number; readonly storeTime: number }> = []
    for (let queueId = 0; queueId < queues.length; queueId++) {
      const { queue, ref } = context(queueId)
      expire(queue, now)
      while (queue.ready.size < priorityReadAhead) {
        const { end } = yield* deps.store.bounds(ref)
        if (queue.cursor >= end) break
        const records = yield* readAtCursor(queue, ref, priorityReadAhead - queue.ready.size)
        if (records.length === 0) break
        for (const record of records) {
          queue.cursor = record.offset + 1
          const decoded = MessageBatch.decode(record.body)
          if (Result.isFailure(decoded)) return yield* Effect.die(decoded.failure)
          if (record.offset < queue.consumed || queue.done.has(record.offset)) continue
          queue.ranks.set(record.offset, { priority: decoded.success[0]!.priority ?? 0, storeTime: record.storeTime })
          // one held since before a restart comes back through its window's end, not as new
          if (!queue.inFlight.has(record.offset) && !queue.visibleAgain.has(record.offset)) queue.ready.add(record.offset)
        }
      }
      for (const offset of [...queue.ready, ...queue.visibleAgain]) {
        const rank = queue.ranks.get(offset) ?? { priority: 0, storeTime: 0 }
        candidates.push({ queueId, offset, ...rank })
      }
    }
    candidates.sort((a, b) => b.priority - a.priority || a.storeTime - b.storeTime || a.queueId - b.queueId || a.offset - b.offset)
    for (const candidate of candidates) {
      if (out.length >= max) break
      const { queue, readOne, take } = context(candidate.queueId)
      queue.ready.delete(candidate.offset)
      const record = yield* readOne(candidate.offset)
      if (record !== undefined) take(record, true)
    }
  })

  /** One pass over the topic's queues; takes up to `max` messages. */
  const popOnce = (
    group: ConsumerGroup.ConsumerGroup,
    spec: Topics.TopicSpec,
    max: number,
    invisibleMillis: number,
    filter: Filter.Filter | undefined,
    attemptId: string | undefined
  ) =>
    Effect.gen(function*() {
      const state = yield* stateOf(group.name, spec)
      // a FIFO group on a FIFO topic gets each message group in order, one message at a time
      const ordered = group.fifo && spec.kind === "FIFO"
      return yield* state.lock.withPermits(1)(Effect.gen(function*() {
        yield* catchUpWithRetention(state, spec.name)
        const now = yield* Clock.currentTimeMillis
        const sealKey = yield* ReceiptHandle.ReceiptHandleKey
        // messages past the group's max attempts, moved to its dead-letter topic after the pass
        const dead: Array<{ readonly queue: QueueState; readonly offset: number; readonly message: Message.Message }> = []
        // a retried receive (same attempt id) whose messages are all still held gets them again
        const previous = state.lastAttempt
        if (attemptId !== undefined && previous?.id === attemptId && previous.received.every((r) => stillHeld(state, r, now))) {
          return previous.received
        }
        const out: Array<Received> = []
        // what a step needs to deliver from one queue
        const elsewhere = (consumerGroup: string, queueId: number, messageGroup: string) =>
          deps.heldElsewhere?.(consumerGroup, spec.name, queueId, messageGroup) === true
        const queueContext = (queueId: number): QueueContext => {
          const queue = state.queues[queueId]!
          const ref = { topic: spec.name, queueId }
          // `head`: the record is its message group's next in line (redelivery, or its turn in the queue)
          const take = (record: Store.StoredRecord, head: boolean): void => {
            // acknowledged (before a restart, or while held from before it, ahead of the cursor)
            if (record.offset < queue.consumed || queue.done.has(record.offset)) return
            const decoded = MessageBatch.decode(record.body)
            // the record passed its CRC: a body that does not decode is a bug
            if (Result.isFailure(decoded)) throw decoded.failure
            const message = decoded.success[0]!
            const messageGroup = ordered ? message.messageGroup : undefined
            if (!head && (queue.inFlight.has(record.offset) || queue.visibleAgain.has(record.offset))) {
              // held since before a restart: its window still runs, and it heads its message group
              if (messageGroup !== undefined) {
                queue.heads.set(record.offset, messageGroup)
                queue.blocked.add(messageGroup)
              }
              return
            }
            if (filter !== undefined && !filter.matches({ tag: message.tag, properties: message.userProperties })) {
              markDone(queue, record.offset) // filtered out: never delivered, never counted
              return
            }
            if (message.ttlMillis !== undefined && record.storeTime + message.ttlMillis <= now) {
              // its time to live ran out (from its store time, on the broker's clock): never delivered
              expired++
              markDone(queue, record.offset)
              return
            }
            if (
              messageGroup !== undefined && !head && !fifoHeadSkipped &&
              (queue.blocked.has(messageGroup) || queue.waiting.has(messageGroup) || elsewhere(group.name, queueId, messageGroup))
            ) {
              // behind its group's head: waits for its turn, in order
              const line = queue.waiting.get(messageGroup)
              if (line === undefined) queue.waiting.set(messageGroup, [record.offset])
              else line.push(record.offset)
              queue.waitingTotal++
              return
            }
            const attempt = attemptNotIncremented ? Math.max(1, queue.attempts.get(record.offset) ?? 1) : (queue.attempts.get(record.offset) ?? 0) + 1
            if (attempt > group.maxDeliveryAttempts) {
              dead.push({ queue, offset: record.offset, message })
              return
            }
            const invisibleUntil = now + invisibleMillis
            queue.attempts.set(record.offset, attempt)
            queue.visibleAgain.delete(record.offset)
            const receiptHandle = handleFor(sealKey, spec.name, queueId, record.offset, now, invisibleUntil, attempt)
            queue.inFlight.set(record.offset, { popTime: now, invisibleUntil, handle: receiptHandle })
            if (messageGroup !== undefined) {
              queue.heads.set(record.offset, messageGroup)
              queue.blocked.add(messageGroup)
            }
            out.push({
              message: MessageBatch.toStored(message, {
                queueId: queueId as Message.StoredMessage["queueId"],
                queueOffset: record.offset as Message.StoredMessage["queueOffset"],
                storeTimestamp: record.storeTime,
                deliveryAttempt: attempt
              }),
              receiptHandle,
              invisibleUntil
            })
          }
          // a message deleted by retention meanwhile is gone (the next pass forgets it)
          const readOne = (offset: number) =>
            deps.store.read(ref, offset, { maxCount: 1, maxBytes: 1 }).pipe(
              Effect.map((records) => records[0]),
              Effect.catchTag("OffsetBelowStart", () => Effect.undefined)
            )
          return { queue, ref, take, readOne }
        }
        if (spec.kind === "PRIORITY") {
          yield* byPriority(state.queues, queueContext, now, max, out)
        } else {
          // each receive of the group starts at the next queue
          const first = state.rotation++
          for (let i = 0; i < spec.queues && out.length < max; i++) {
            const queueId = (first + i) % spec.queues
            const { queue, ref, take, readOne } = queueContext(queueId)
            expire(queue, now)
            // messages whose window ended come first, oldest first
            for (const offset of [...queue.visibleAgain].sort((a, b) => a - b)) {
              if (out.length >= max) break
              const record = yield* readOne(offset)
              if (record !== undefined) take(record, true)
            }
            // FIFO: each unblocked message group's next in line
            for (const [messageGroup, line] of queue.waiting) {
              while (out.length < max && line.length > 0 && !queue.blocked.has(messageGroup) && !elsewhere(group.name, queueId, messageGroup)) {
                queue.waitingTotal--
                const record = yield* readOne(line.shift()!)
                if (record !== undefined) take(record, true)
              }
              if (line.length === 0) queue.waiting.delete(messageGroup)
            }
            // FIFO reads ahead past blocked groups into their lines, up to a bound
            while (out.length < max && queue.waitingTotal < maxWaitingPerQueue) {
              const { end } = yield* deps.store.bounds(ref)
              if (queue.cursor >= end) break
              const records = yield* readAtCursor(queue, ref, max - out.length)
              if (records.length === 0) break
              for (const record of records) {
                queue.cursor = record.offset + 1
                take(record, false)
              }
            }
          }
        }
        for (const { message, offset, queue } of dead) {
          yield* deps.deadLetter(group.name, message)
          markDone(queue, offset)
        }
        // the windows given are recorded before the messages go out
        const stateKey = keyOf(group.name, spec.name)
        yield* record(out.map(({ invisibleUntil, message }) =>
          encodeState(Window, stateKey, message.queueId, message.queueOffset, now, invisibleUntil, message.deliveryAttempt)))
        if (attemptId !== undefined && out.length > 0) state.lastAttempt = { id: attemptId, received: out }
        return out
      }))
    })

  const stillHeld = (state: GroupTopicState, received: Received, now: number) => {
    const entry = state.queues[received.message.queueId]?.inFlight.get(received.message.queueOffset)
    return entry !== undefined && entry.invisibleUntil === received.invisibleUntil && entry.invisibleUntil > now
  }

  /** When the earliest unacknowledged window of the group on the topic ends, if any does. */
  const nextExpiry = (group: string, topic: string) => {
    const state = states.get(`${group}\u0000${topic}`)
    let earliest = Number.POSITIVE_INFINITY
    for (const queue of state?.queues ?? []) {
      for (const entry of queue.inFlight.values()) earliest = Math.min(earliest, entry.invisibleUntil)
    }
    return earliest
  }

  const pop = (request: PopRequest) =>
    Effect.gen(function*() {
      const limits = yield* Limits.Limits
      const invisibleMillis = Duration.toMillis(request.invisibleDuration)
      if (invisibleMillis < 0 || invisibleMillis > limits.maxInvisibilityMillis) {
        return yield* new IllegalInvisibleTime({ millis: invisibleMillis, max: limits.maxInvisibilityMillis })
      }
      const max = Math.max(1, Math.min(32, request.maxMessages))
      const spec = yield* deps.topic(request.topic)
      const group = yield* deps.group(request.group)
      const deadline = (yield* Clock.currentTimeMillis) + (request.pollTimeout === undefined ? 0 : Duration.toMillis(request.pollTimeout))
      while (true) {
        const received = yield* popOnce(group, spec, max, invisibleMillis, request.filter, request.attemptId)
        const now = yield* Clock.currentTimeMillis
        let byGroup = parked.get(spec.name)
        if (byGroup === undefined) parked.set(spec.name, byGroup = new Map())
        let waiting = byGroup.get(group.name)
        if (waiting === undefined) byGroup.set(group.name, waiting = new Set())
        // a full receive may have left more behind: the next parked poll of the group looks
        if (received.length >= max) wakeOne(waiting)
        if (received.length > 0 || now >= deadline) return received
        // park until an append to the topic, a window ending, or the poll's end
        const woken = Deferred.makeUnsafe<Woken>()
        const line = waiting
        line.add(woken)
        const wakeAt = Math.min(deadline, nextExpiry(group.name, spec.name))
        yield* Deferred.await(woken).pipe(
          Effect.timeoutOption(Duration.millis(Math.max(0, wakeAt - now))),
          // woken, then interrupted before looking: the wake-up goes to the next in line
          Effect.onInterrupt(() => Effect.sync(() => line.delete(woken) || wakeOne(line))),
          Effect.ensuring(Effect.sync(() => line.delete(woken)))
        )
      }
    })

  /** Decodes a handle and finds its in-flight entry; checks expiry and that it is the newest handle. */
  const stale = (handle: ReceiptHandle.ReceiptHandle) =>
    new ReceiptHandleStale({ topic: handle.topic, queueId: handle.queueId, offset: handle.queueOffset })

  /**
   * The in-flight message a handle names, checked synchronously: form and seal, topic, expiry, and
   * that it is the message's newest handle. The very handle issued for the current window is
   * recognized by comparison, without a seal check.
   */
  const locate = (
    state: GroupTopicState,
    sealKey: Redacted.Redacted<Uint8Array>,
    now: number,
    topic: string,
    text: string
  ): Located | HandleError => {
    const place = ReceiptHandle.placeOf(text)
    const issued = place === undefined ? undefined : state.queues[place.queueId]?.inFlight.get(place.queueOffset)
    if (place !== undefined && issued !== undefined && issued.handle === text) {
      if (now >= issued.invisibleUntil) return new ReceiptHandle.ReceiptHandleExpired({ invisibleUntil: issued.invisibleUntil, now })
      return { queue: state.queues[place.queueId]!, queueId: place.queueId, offset: place.queueOffset, entry: issued }
    }
    const handle = ReceiptHandle.decodeWith(sealKey, text)
    if (handle instanceof ReceiptHandle.InvalidReceiptHandle) return handle
    if (handle.topic !== topic) return new ReceiptHandleMismatch({ expected: topic, actual: handle.topic })
    const queue = state.queues[handle.queueId]
    const entry = queue?.inFlight.get(handle.queueOffset)
    // the handle of the current window: the window decides (a renewal extends it, keeping the handle)
    if (queue !== undefined && entry !== undefined && entry.popTime === handle.popTime) {
      if (now >= entry.invisibleUntil) return new ReceiptHandle.ReceiptHandleExpired({ invisibleUntil: entry.invisibleUntil, now })
      return { queue, queueId: handle.queueId, offset: handle.queueOffset, entry }
    }
    if (now >= handle.invisibleUntil) return new ReceiptHandle.ReceiptHandleExpired({ invisibleUntil: handle.invisibleUntil, now })
    return stale(handle)
  }

  // No lock: checking each handle and taking its message out of flight happen in one synchronous
  // step; the acknowledgements' records go out with the store's next write (one append for all).
  const ackMany = (group: string, topic: string, receiptHandles: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const found = yield* Effect.result(Effect.flatMap(deps.topic(topic), (spec) => stateOf(group, spec)))
      if (Result.isFailure(found)) return receiptHandles.map(() => Result.fail<AckError>(found.failure))
      const state = found.success
      const key = keyOf(group, topic)
      const results: Array<Result.Result<void, AckError>> = []
      const taken: Array<{ readonly queue: QueueState; readonly offset: number }> = []
      const bodies: Array<Uint8Array> = []
      const sealKey = yield* ReceiptHandle.ReceiptHandleKey
      const now = yield* Clock.currentTimeMillis
      // plain code per handle: checked, and taken out of flight, in one synchronous step
      const check = (text: string): AckError | undefined => {
        const found = locate(state, sealKey, now, topic, text)
        if ("_tag" in found) return found
        found.queue.inFlight.delete(found.offset)
        taken.push({ queue: found.queue, offset: found.offset })
        bodies.push(encodeState(Acknowledged, key, found.queueId, found.offset))
        return undefined
      }
      for (const text of receiptHandles) {
        const problem = check(text)
        results.push(problem === undefined ? Result.void : Result.fail(problem))
      }
      // The books change in the step that checked the handles, before the records go: a snapshot
      // taken meanwhile shows the acknowledgement, or its record comes after the snapshot started.
      let freed = false
      for (const { offset, queue } of taken) freed = markDone(queue, offset) || freed
      yield* record(bodies)
      if (freed) wakeGroup(group, topic)
      return results
    })

  const ack = (group: string, topic: string, receiptHandle: string) =>
    Effect.flatMap(ackMany(group, topic, [receiptHandle]), ([result]) => Effect.fromResult(result!))

  /**
   * Sets a new window of `duration` on the message a handle names, under the state's permit: checks
   * the window asked for, finds the message, and lets `update` move its window (it returns the
   * answer).
   */
  const withWindow = <A>(
    group: string,
    topic: string,
    receiptHandle: string,
    duration: Duration.Input,
    update: (found: Located, now: number, millis: number, sealKey: Redacted.Redacted<Uint8Array>) => Effect.Effect<A>
  ) =>
    Effect.gen(function*() {
      const limits = yield* Limits.Limits
      const millis = Duration.toMillis(duration)
      if (millis < 0 || millis > limits.maxInvisibilityMillis) {
        return yield* new IllegalInvisibleTime({ millis, max: limits.maxInvisibilityMillis })
      }
      const state = yield* stateOf(group, yield* deps.topic(topic))
      return yield* state.lock.withPermits(1)(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const sealKey = yield* ReceiptHandle.ReceiptHandleKey
        const found = locate(state, sealKey, now, topic, receiptHandle)
        if ("_tag" in found) return yield* Effect.fail(found)
        return yield* update(found, now, millis, sealKey)
      }))
    })

  const changeInvisibility = (group: string, topic: string, receiptHandle: string, duration: Duration.Input) =>
    withWindow(group, topic, receiptHandle, duration, ({ entry, offset, queue, queueId }, now, millis, sealKey) =>
      Effect.gen(function*() {
        // the handle's pop time only moves forward, so every older handle is stale: only the newest
        // is honoured, even for changes within one millisecond
        const popTime = Math.max(now, entry.popTime + 1)
        const invisibleUntil = now + millis
        // every message in flight has its attempt count (set when taken, or when recovered)
        const attempt = queue.attempts.get(offset) ?? 1
        yield* record([encodeState(Window, keyOf(group, topic), queueId, offset, popTime, invisibleUntil, attempt)])
        entry.popTime = popTime
        entry.invisibleUntil = invisibleUntil
        entry.handle = handleFor(sealKey, topic, queueId, offset, popTime, invisibleUntil, attempt)
        return entry.handle
      }))

  // Under the state's permit (no receive or change of invisibility interleaves). The message leaves
  // flight at the check (a concurrent ack then finds its handle stale) and comes back if the forward
  // fails; once checked, the forward is not interrupted, so it is never left half done.
  const forwardToDeadLetter = (group: string, topic: string, receiptHandle: string) =>
    Effect.gen(function*() {
      const state = yield* stateOf(group, yield* deps.topic(topic))
      return yield* state.lock.withPermits(1)(Effect.uninterruptible(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const sealKey = yield* ReceiptHandle.ReceiptHandleKey
        const found = locate(state, sealKey, now, topic, receiptHandle)
        if ("_tag" in found) return yield* Effect.fail(found)
        const { entry, offset, queue, queueId } = found
        queue.inFlight.delete(offset)
        yield* Effect.gen(function*() {
          const [stored] = yield* deps.store.read({ topic, queueId }, offset, { maxCount: 1, maxBytes: 1 }).pipe(
            Effect.catchTag("OffsetBelowStart", () => Effect.succeed([]))
          )
          if (stored?.offset !== offset) {
            return yield* Effect.logWarning(`${topic}/${queueId}@${offset} is no longer stored; acknowledged without a dead letter`)
          }
          const decoded = MessageBatch.decode(stored.body)
          // the record passed its CRC: a body that does not decode is a bug
          if (Result.isFailure(decoded)) return yield* Effect.die(decoded.failure)
          yield* deps.deadLetter(group, decoded.success[0]!)
        }).pipe(Effect.onError(() => Effect.sync(() => void queue.inFlight.set(offset, entry))))
        yield* record([encodeState(Acknowledged, keyOf(group, topic), queueId, offset)])
        if (markDone(queue, offset)) wakeGroup(group, topic)
      })))
    })

  /**
   * Extends the window of a received message to end `duration` from now, keeping its handle: the
   * handle the consumer holds stays the one that acknowledges it (automatic renewal for push
   * consumers, which must not depend on anyone remembering a newer handle).
   */
  const renew = (group: string, topic: string, receiptHandle: string, duration: Duration.Input) =>
    withWindow(group, topic, receiptHandle, duration, ({ entry, offset, queue, queueId }, now, millis) =>
      Effect.gen(function*() {
        const invisibleUntil = Math.max(entry.invisibleUntil, now + millis)
        yield* record([encodeState(Window, keyOf(group, topic), queueId, offset, entry.popTime, invisibleUntil, queue.attempts.get(offset) ?? 1)])
        entry.invisibleUntil = invisibleUntil
        return invisibleUntil
      }))

  /**
   * Per consumer group that has consumed `topic` here (FIFO groups only), the message groups of the
   * queue's messages not yet acknowledged, in flight ones included.
   */
  const pendingGroups = (topic: string, queueId: number) =>
    Effect.gen(function*() {
      const spec = yield* Effect.option(deps.topic(topic))
      const pending: Record<string, Array<string>> = {}
      if (spec._tag === "None" || queueId >= spec.value.queues) return pending
      const ref = { topic, queueId }
      for (const name of deps.groupNames()) {
        const key = `${name}\u0000${topic}`
        if (!states.has(key) && !recovered.has(queueKey(key, queueId)) && (yield* deps.committedOffset(name, topic, queueId)) === undefined) continue
        const group = yield* deps.group(name)
        if (!group.fifo) continue
        const queue = (yield* stateOf(name, spec.value)).queues[queueId]!
        const found = new Set<string>()
        let offset = Math.max(queue.consumed, (yield* deps.store.bounds(ref)).start)
        while (true) {
          const { end } = yield* deps.store.bounds(ref)
          if (offset >= end) break
          const records = yield* deps.store.read(ref, offset, { maxCount: 256, maxBytes: 4 * 1024 * 1024 })
          if (records.length === 0) break
          for (const record of records) {
            offset = record.offset + 1
            if (queue.done.has(record.offset) || record.offset < queue.consumed) continue
            const decoded = MessageBatch.decode(record.body)
            if (Result.isSuccess(decoded) && decoded.success[0]!.messageGroup !== undefined) found.add(decoded.success[0]!.messageGroup)
          }
        }
        if (found.size > 0) pending[name] = [...found]
      }
      return pending
    })

  /** A queue's books as snapshot records: where it is consumed to, the acknowledgements above, the windows. */
  const queueRecords = (key: Uint8Array, queueId: number, queue: QueueState, into: Array<Uint8Array>) => {
    into.push(encodeState(Consumed, key, queueId, queue.consumed))
    for (const offset of queue.done) into.push(encodeState(Acknowledged, key, queueId, offset))
    for (const [offset, entry] of queue.inFlight) {
      into.push(encodeState(Window, key, queueId, offset, entry.popTime, entry.invisibleUntil, queue.attempts.get(offset) ?? 1))
    }
    // a window that ended: delivered again first after a restart too, its attempts counting on
    for (const offset of queue.visibleAgain) into.push(encodeState(Window, key, queueId, offset, 0, 0, queue.attempts.get(offset) ?? 1))
  }

  /** What the log said of a queue whose state has not been used since the restart, as snapshot records. */
  const recoveredRecords = (entry: Recovered, into: Array<Uint8Array>) => {
    into.push(encodeState(Consumed, entry.key, entry.queueId, entry.consumed ?? 0))
    for (const offset of entry.acked) into.push(encodeState(Acknowledged, entry.key, entry.queueId, offset))
    for (const [offset, window] of entry.windows) {
      into.push(encodeState(Window, entry.key, entry.queueId, offset, window.popTime, window.invisibleUntil, window.attempt))
    }
  }

  /**
   * Writes every (group, topic)'s books again, makes them durable, and records where replay starts
   * from now on: where the log ended when the snapshot began. Every record written after that is
   * replayed with the snapshot; every change recorded before it shows in the snapshot (a change is
   * made before its record is written, and a state's books are read under its permit, which every
   * change but an acknowledgement takes).
   */
  const snapshot = Effect.gen(function*() {
    const from = (yield* deps.store.bounds(stateQueue)).end
    let written = 0
    const write = (bodies: ReadonlyArray<Uint8Array>) => {
      written += bodies.length
      return deps.store.appendMany([{ queue: stateQueue, messages: bodies.map((body) => ({ body, tagHash: 0 })) }], "async")
    }
    // Queues not used since the restart first: their first use takes them out of `recovered` and into
    // `states` in one step, so each is written from one place or the other, or both.
    const fromRecovery: Array<Uint8Array> = []
    for (const entry of recovered.values()) recoveredRecords(entry, fromRecovery)
    if (fromRecovery.length > 0) yield* write(fromRecovery)
    for (const [name, state] of states) {
      const key = encoder.encode(name)
      yield* state.lock.withPermits(1)(Effect.suspend(() => {
        const bodies: Array<Uint8Array> = []
        for (let queueId = 0; queueId < state.queues.length; queueId++) queueRecords(key, queueId, state.queues[queueId]!, bodies)
        return bodies.length > 0 ? write(bodies) : Effect.void
      }))
    }
    // one sync makes the whole snapshot durable (and what came before it)
    yield* deps.store.append(stateQueue, [{ body: encodeState(SnapshotEnd, new Uint8Array(0), 0, 0), tagHash: 0 }], "sync")
    yield* deps.saveSnapshotFrom(from)
    snapshotFrom = from
    snapshotRecords = written + 1
  })

  return {
    pop,
    ack,
    pendingGroups,
    renew,
    ackMany,
    changeInvisibility,
    /**
     * Moves a popped message to the group's dead-letter topic and acknowledges it; its handle is
     * checked as an acknowledgement's is.
     */
    forwardToDeadLetter,
    /** Wakes one long poll of each group parked on `topic`. */
    appended: (topic: string) => {
      for (const waiting of parked.get(topic)?.values() ?? []) wakeOne(waiting)
    },
    /**
     * Snapshots the books when the consumer-state log has grown well past the last snapshot, so a
     * restart replays little.
     */
    snapshotIfGrown: Effect.gen(function*() {
      const { end } = yield* deps.store.bounds(stateQueue)
      if (end - snapshotFrom > 2 * snapshotRecords + snapshotSlack) yield* snapshot
    }),
    /** After a retention round that deleted something: each group forgets the messages deleted. */
    afterRetention: () => {
      retentionRounds++
    },
    /** Messages never delivered because their time to live ran out. */
    expired: Effect.sync(() => expired),
    /** The group's consumed offset (everything below acknowledged) per queue, for committing. */
    consumed: (group: string, topic: string) =>
      (states.get(`${group}\u0000${topic}`)?.queues ?? []).map((queue) => queue.consumed),
    /** Per queue of the group on the topic: its consumed offset and how many messages are in flight. */
    progress: (group: string, topic: string) =>
      (states.get(`${group}\u0000${topic}`)?.queues ?? []).map((queue) => ({ consumed: queue.consumed, inFlight: queue.inFlight.size }))
  }
})
