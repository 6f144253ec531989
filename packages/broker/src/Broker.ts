/**
 * The broker: topics, produce, pull consumption and committed offsets over the storage engine.
 *
 * A send is validated (RocketMQ's rules, `Message.validate`), checked against its topic's kind, placed
 * on a queue by the broker (round-robin, or by the hash of the message group for FIFO so a group
 * stays in one queue and in order), and stored with the topic's flush policy. A retried send with a
 * message id seen within the idempotency window returns the first receipt and stores nothing.
 *
 * @since 0.1.0
 */
import { ConsumerGroup, Limits, Message, MessageBatch, PlantedBugs, Topic, Trace } from "@strait/core"
import { Disk, Store } from "@strait/storage"
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Layer, PubSub, Result, Schedule, Schema, Stream } from "effect"
import * as ConsumerOffsets from "./ConsumerOffsets.ts"
import * as Consumption from "./Consumption.ts"
import * as Filter from "./Filter.ts"
import * as Groups from "./Groups.ts"
import { scanQueue } from "./internal/queues.ts"
import * as Timers from "./Timers.ts"
import * as Transactions from "./Transactions.ts"
import * as Topics from "./Topics.ts"
import { PartitionLeases } from "@strait/control"

/**
 * Broker tunables.
 *
 * @since 0.1.0
 */
export const BrokerSettings = Context.Reference<{
  /** Reject a message whose kind (FIFO, DELAY, PRIORITY, NORMAL) differs from its topic's, as RocketMQ does. Read per send. */
  readonly validateMessageType: boolean
  /** How long a message id is remembered for idempotent retries. */
  readonly idempotencyWindow: Duration.Input
  /** At most this many remembered ids; the oldest go first. */
  readonly idempotencyMaxEntries: number
  /** The name receipt handles carry. */
  readonly brokerName: string
  /** How often Pop consumers' acknowledged progress is committed as their offsets. */
  readonly commitInterval: Duration.Input
  /**
   * How long the messages of every topic are kept (RocketMQ's `fileReservedTime`, 72 hours), and
   * optionally how many bytes each topic keeps: whole segments of the log go once every message of
   * theirs is past it, consumed or not.
   */
  readonly retention: Store.Retention
  /** How often retention runs. */
  readonly retentionInterval: Duration.Input
}>("@strait/broker/Broker/BrokerSettings", {
  defaultValue: () => ({
    validateMessageType: true,
    idempotencyWindow: Duration.minutes(2),
    idempotencyMaxEntries: 1_000_000,
    brokerName: "broker-0",
    commitInterval: Duration.seconds(1),
    retention: { maxAgeMillis: Duration.toMillis(Duration.hours(72)) },
    retentionInterval: Duration.minutes(1)
  })
})

/**
 * The message's kind does not match its topic's (RocketMQ `MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`).
 *
 * @since 0.1.0
 */
export class MessageTypeMismatch extends Schema.TaggedError<MessageTypeMismatch>()("MessageTypeMismatch", {
  topic: Schema.String,
  topicKind: Schema.String,
  messageKind: Schema.String
}) {
  override get message() {
    return `a ${this.messageKind} message cannot go to ${this.topicKind} topic ${this.topic}`
  }
}

/**
 * The topic has no queue with that id.
 *
 * @since 0.1.0
 */
export class QueueNotFound extends Schema.TaggedError<QueueNotFound>()("QueueNotFound", {
  topic: Schema.String,
  queueId: Schema.Number
}) {}

/**
 * An offset outside what the queue holds (`start` ≤ offset ≤ `end`): deleted by retention, or not
 * written yet.
 *
 * @since 0.1.0
 */
export class OffsetOutOfRange extends Schema.TaggedError<OffsetOutOfRange>()("OffsetOutOfRange", {
  topic: Schema.String,
  queueId: Schema.Number,
  offset: Schema.Number,
  start: Schema.Number,
  end: Schema.Number
}) {
  override get message() {
    return `offset ${this.offset} of ${this.topic}/${this.queueId} is outside [${this.start}, ${this.end}]`
  }
}

/**
 * Where a sent message went. `transactionId` equals the message id, as RocketMQ answers.
 *
 * @since 0.1.0
 */
export interface SendReceipt {
  readonly messageId: string
  readonly transactionId: string
  readonly topic: string
  readonly queueId: number
  /** The offset in the queue; for a delayed message, its place in the timer store. */
  readonly offset: number
  readonly storeTimestamp: number
  /** For a message delayed to a future time: the handle that recalls it before delivery. */
  readonly recallHandle?: string
}

/**
 * What a pull returns: matching messages, the offset to pull from next, and the queue's bounds.
 *
 * @since 0.1.0
 */
export interface PullResult {
  readonly messages: ReadonlyArray<Message.StoredMessage>
  readonly nextOffset: number
  readonly start: number
  readonly end: number
}

/**
 * A consumer group's position on one queue.
 *
 * @since 0.1.0
 */
export interface QueueProgress {
  readonly topic: string
  readonly queueId: number
  readonly end: number
  readonly consumed: number
  readonly inFlight: number
}

/**
 * One send of `sendMany`. `encoded`, for a send of exactly one message, is that message's
 * `MessageBatch` encoding (the bytes a server decoded it from): stored as they are, not encoded again.
 *
 * @since 0.1.0
 */
export interface Send {
  readonly messages: ReadonlyArray<Message.Message>
  readonly transactional?: boolean
  readonly encoded?: Uint8Array
  /**
   * In a cluster: the queues the sender believes this broker serves, at their fencing epochs. A
   * message goes only to a queue the broker holds at the very epoch named here; none such refuses
   * the send with `NotQueueOwner` (the sender's view is out of date: it reads it again).
   */
  readonly fence?: ReadonlyArray<{ readonly queueId: number; readonly epoch: number }>
}

/**
 * What a send can fail with.
 *
 * @since 0.1.0
 */
export type SendError = Message.MessageValidationError | Topics.TopicNotFound | MessageTypeMismatch | PartitionLeases.NotQueueOwner | Store.AppendError

/**
 * The kind a message has: a transactional send makes it TRANSACTION; otherwise by its fields, a message
 * group makes it FIFO, a delivery time DELAY, a priority PRIORITY.
 *
 * @since 0.1.0
 */
export const messageKind = (message: Message.Message, transactional = false): Topic.TopicKind =>
  transactional
    ? "TRANSACTION"
    : message.messageGroup !== undefined
    ? "FIFO"
    : message.deliveryTimestamp !== undefined
    ? "DELAY"
    : message.priority !== undefined
    ? "PRIORITY"
    : "NORMAL"

/**
 * The broker service.
 *
 * @since 0.1.0
 */
export class Broker extends Context.Service<Broker, {
  readonly createTopic: (spec: {
    readonly name: string
    readonly kind: Topic.TopicKind
    readonly queues: number
    readonly flush?: "sync" | "async"
  }) => Effect.Effect<Topics.TopicSpec, Topics.TopicAlreadyExists | Topics.IllegalTopicSpec | Disk.DiskError>
  /** Grows the queue count or changes the flush policy. */
  readonly updateTopic: (
    name: string,
    change: { readonly queues?: number; readonly flush?: "sync" | "async" }
  ) => Effect.Effect<Topics.TopicSpec, Topics.TopicNotFound | Topics.IllegalTopicChange | Topics.IllegalTopicSpec | Disk.DiskError>
  /**
   * Stops serving the topic. Its records stay in the log until retention removes them; a topic
   * created again under the name continues its queues where they ended.
   */
  readonly deleteTopic: (name: string) => Effect.Effect<void, Topics.TopicNotFound | Disk.DiskError>
  readonly describeTopic: (name: string) => Effect.Effect<{
    readonly spec: Topics.TopicSpec
    readonly queues: ReadonlyArray<{ readonly queueId: number; readonly start: number; readonly end: number }>
  }, Topics.TopicNotFound>
  readonly topics: Effect.Effect<ReadonlyArray<Topics.TopicSpec>>
  /**
   * The names of topics this broker creates on its own (a group's dead-letter topic, at its first
   * dead letter), as it creates them, so that the cluster's catalog can take them in at once.
   */
  readonly topicsCreatedHere: Stream.Stream<string>
  /**
   * Sends messages (to one or several topics); receipts in the order given. `transactional` sends
   * half messages: invisible until `endTransaction` commits them.
   */
  readonly send: (
    messages: ReadonlyArray<Message.Message>,
    options?: { readonly transactional?: boolean }
  ) => Effect.Effect<ReadonlyArray<SendReceipt>, SendError>
  /**
   * Several sends at once, one result per send in order: each send is stored or refused as a whole,
   * apart from the others; the messages of all of them are stored with one storage call per queue.
   */
  readonly sendMany: (
    sends: ReadonlyArray<Send>
  ) => Effect.Effect<ReadonlyArray<Result.Result<ReadonlyArray<SendReceipt>, SendError>>>
  /** Commits (delivers) or rolls back (drops) the half message with that transaction id. */
  readonly endTransaction: (
    topic: string,
    transactionId: string,
    resolution: Transactions.Resolution
  ) => Effect.Effect<void, Transactions.TransactionNotFound | Store.AppendError | Store.ReadError>
  /**
   * Check-backs of unresolved transactions, for a broker given no `transactionChecker`: up to `max`
   * (at most 32) checks due, waiting up to `wait` for the first (a long poll; empty when none came).
   * The answer to a check comes back as `endTransaction`.
   *
   * **Details**
   *
   * The broker keeps at most `TransactionSettings.maxDueChecks` checks nobody took, dropping the
   * oldest (each half is checked again at the next interval). A check is taken only when it is
   * returned: an interrupted wait loses none. With a `transactionChecker` the checks go to it, and
   * this waits `wait` and returns none.
   */
  readonly awaitChecks: (max: number, wait: Duration.Input) => Effect.Effect<ReadonlyArray<Transactions.TransactionCheck>, Store.ReadError>
  /** Reads a queue from `offset`, keeping only what `filter` matches (filtered messages still advance `nextOffset`). */
  readonly pull: (request: {
    readonly topic: string
    readonly queueId: number
    readonly offset: number
    readonly maxCount: number
    readonly maxBytes?: number
    readonly filter?: Filter.Filter
  }) => Effect.Effect<PullResult, Topics.TopicNotFound | QueueNotFound | OffsetOutOfRange | Store.ReadError>
  /** Commits a group's next offset on a queue, durably. */
  readonly commitOffset: (
    group: string,
    topic: string,
    queueId: number,
    offset: number
  ) => Effect.Effect<void, Topics.TopicNotFound | QueueNotFound | OffsetOutOfRange | Disk.DiskError>
  /** The group's committed offset on a queue, `undefined` before its first commit. */
  readonly committedOffset: (group: string, topic: string, queueId: number) => Effect.Effect<number | undefined>
  /** Cancels a delayed message not yet delivered, by the recall handle of its receipt; returns its id. */
  readonly recall: (topic: string, recallHandle: string) => Effect.Effect<string, Timers.RecallFailed | Store.AppendError | Store.ReadError>
  /** Creates or replaces a consumer group's settings (max delivery attempts, retry policy); kept durably. */
  readonly setGroup: (group: ConsumerGroup.ConsumerGroup) => Effect.Effect<void, Disk.DiskError>
  /** A consumer group's settings: RocketMQ's defaults for a group never configured. */
  readonly group: (name: string) => Effect.Effect<ConsumerGroup.ConsumerGroup, ConsumerGroup.IllegalConsumerGroup>
  /** The settings of every group configured, or used since the broker opened. */
  readonly groups: Effect.Effect<ReadonlyArray<ConsumerGroup.ConsumerGroup>>
  /**
   * Pop: up to `maxMessages` (at most 32) from any queue of the topic, each invisible to the group
   * for `invisibleDuration`. With `pollTimeout`, an empty receive waits (woken by an append or a
   * window ending) until a message is there or the time is up.
   */
  readonly pop: (request: Consumption.PopRequest) => Effect.Effect<ReadonlyArray<Consumption.Received>, Topics.TopicNotFound | Consumption.IllegalInvisibleTime | Store.ReadError | Store.AppendError>
  /** Acknowledges a popped message: it is never delivered to the group again. */
  readonly ack: (group: string, topic: string, receiptHandle: string) => Effect.Effect<void, Consumption.AckError>
  /**
   * Moves a popped message to the group's dead-letter topic `%DLQ%<group>` (as after its last delivery
   * attempt: same message id, with `DLQ_ORIGIN_TOPIC` and `DLQ_ORIGIN_MESSAGE_ID`) and acknowledges it,
   * so it is never delivered to the group again (RocketMQ's ForwardMessageToDeadLetterQueue). The
   * handle is checked as `ack` checks it.
   */
  readonly forwardToDeadLetter: (
    group: string,
    topic: string,
    receiptHandle: string
  ) => Effect.Effect<void, Consumption.AckError | Store.AppendError | Store.ReadError>
  /**
   * Completes when the broker's store has failed a sync: the broker then refuses every write, and its
   * process should exit so that it restarts and recovers from its disk (as `strait` does).
   */
  readonly fatal: Effect.Effect<Store.StoreFailed>
  /** Acknowledges several popped messages with one record; one result per handle, in order. */
  readonly ackMany: (
    group: string,
    topic: string,
    receiptHandles: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Result.Result<void, Consumption.AckError>>>
  /**
   * Moves a popped message's invisibility to end `duration` from now and returns its new handle.
   *
   * **Gotchas**
   *
   * The handle given becomes invalid; only the returned one acknowledges the message.
   */
  readonly changeInvisibility: (
    group: string,
    topic: string,
    receiptHandle: string,
    duration: Duration.Input
  ) => Effect.Effect<string, Consumption.HandleError | Consumption.IllegalInvisibleTime | Topics.TopicNotFound>
  /**
   * Extends a received message's window to end `duration` from now (never shortens it), keeping its
   * handle valid; returns when the window now ends. For automatic renewal: unlike
   * `changeInvisibility`, the handle the consumer holds stays the one that acknowledges it.
   */
  readonly renewInvisibility: (
    group: string,
    topic: string,
    receiptHandle: string,
    duration: Duration.Input
  ) => Effect.Effect<number, Consumption.HandleError | Consumption.IllegalInvisibleTime | Topics.TopicNotFound>
  /** Counters: messages never delivered because their time to live ran out. */
  readonly stats: Effect.Effect<{ readonly expiredMessages: number }>
  /**
   * What the broker carries and holds, for its load reports and for leaving a cluster: messages and
   * body bytes stored so far (running totals); messages stored and not yet consumed by the consumer
   * groups that consume their topic here (`unconsumed`, in flight ones included), those in flight,
   * the oldest unconsumed one's wait; and messages held for later (delayed, or half of a transaction).
   * A broker that leaves may go once all of these but the totals are 0.
   */
  readonly holdings: Effect.Effect<Holdings, Store.ReadError>
  /**
   * Where a consumer group stands on every queue of this broker: the queue's end, the group's
   * consumed offset (its committed one until it receives here), and how many messages it holds in
   * flight.
   */
  readonly groupProgress: (group: string) => Effect.Effect<ReadonlyArray<QueueProgress>, Store.ReadError>
  /** Moves the group's offsets on every queue of the topic to the first message stored at or after `time`. */
  readonly resetOffsetsToTime: (
    group: string,
    topic: string,
    time: number
  ) => Effect.Effect<ReadonlyArray<number>, Topics.TopicNotFound | Store.ReadError | Disk.DiskError>
}>()("@strait/broker/Broker") {
  /**
   * A broker keeping its data under `directory` on the `Disk` given; `transactionChecker` is who it
   * asks about unresolved transactions (a proxy in its process). Without one, the checks wait for
   * `awaitChecks` (a proxy across the data plane).
   */
  static readonly layer = (options: {
    readonly directory: string
    readonly transactionChecker?: Transactions.TransactionChecker
    /** In a cluster: the queues this broker may write. Without it the broker writes all of its queues. */
    readonly ownership?: PartitionLeases.PartitionLeases
  }): Layer.Layer<Broker, Disk.DiskError | Store.ReadError, Disk.Disk> => Layer.effect(Broker, Broker.make(options))

  /** The broker of `layer`, for as long as the scope lives. */
  static readonly make = (options: {
    readonly directory: string
    readonly transactionChecker?: Transactions.TransactionChecker
    readonly ownership?: PartitionLeases.PartitionLeases
  }) => make(options.directory, options.transactionChecker, options.ownership)
}

/**
 * What a broker carries and holds (`Broker.holdings`).
 *
 * @since 0.1.0
 */
export interface Holdings {
  readonly storedMessages: number
  readonly storedBytes: number
  readonly unconsumed: number
  readonly inFlight: number
  readonly lagMillis: number
  readonly held: number
}

// A message id sent within the window: its receipt once stored; until then, the duplicates waiting
// for it (made only when a duplicate arrives while the first is being stored).
interface Remembered {
  readonly at: number
  receipt: SendReceipt | undefined
  waiters: Array<Deferred.Deferred<SendReceipt, SendError>> | undefined
}

/** Where a held message (delayed or half) went, as its receipt tells. */
interface Held {
  readonly offset: number
  readonly storeTime: number
  readonly recallHandle?: string
}

// the broker's own topics: kept only as far as their records are still needed
const internalTopics = new Set(["%POP%", "%TIMER%", "%HALF%"])

const tagHashOf = (message: Message.Message) => message.tag === undefined ? 0 : Filter.tagHash(message.tag)

const make = Effect.fnUntraced(function*(
  directory: string,
  checker: Transactions.TransactionChecker | undefined,
  ownership: PartitionLeases.PartitionLeases | undefined
) {
  const settings = yield* BrokerSettings
  const trace = yield* Trace.Trace
  // a planted bug for the simulator's tests (never on otherwise) answers sync sends before their sync
  const ackBeforeSync = (yield* PlantedBugs.PlantedBugs).has("send-acked-before-sync")
  yield* Disk.makeDurableDirectory(directory)
  const store = yield* Store.open(`${directory}/store`)
  const topics = yield* Topics.open(`${directory}/topics.json`)
  const offsets = yield* ConsumerOffsets.open(`${directory}/offsets.json`)
  const windowMillis = Duration.toMillis(settings.idempotencyWindow)
  const groups = yield* Groups.open(`${directory}/groups.json`)

  // message ids recently sent, oldest first (a Map keeps insertion order)
  const remembered = new Map<string, Remembered>()
  const forgetOld = (now: number) => {
    for (const [key, entry] of remembered) {
      if (now - entry.at < windowMillis && remembered.size <= settings.idempotencyMaxEntries) break
      remembered.delete(key)
    }
  }
  const roundRobin = new Map<string, number>()
  let storedMessages = 0
  let storedBytes = 0
  // the queue a message goes to; in a cluster, only a queue this broker holds now
  const queueFor = (
    spec: Topics.TopicSpec,
    message: Message.Message,
    now: number,
    fence: Send["fence"]
  ): number | PartitionLeases.NotQueueOwner => {
    // a stable hash keeps every message of a group on one queue, in order
    const grouped = message.messageGroup === undefined ? undefined : Topic.queueOfGroup(message.messageGroup, spec.queues)
    const next = grouped ?? roundRobin.get(spec.name) ?? 0
    if (grouped === undefined) roundRobin.set(spec.name, next + 1)
    if (ownership === undefined) return next % spec.queues
    const writable = ownership.writable(spec.name, now)
    const held = fence === undefined
      ? writable
      : writable.filter((queue) => fence.some((fenced) => fenced.queueId === queue.queueId && fenced.epoch === queue.epoch))
    const chosen = grouped === undefined ? held[next % Math.max(1, held.length)] : held.find((queue) => queue.queueId === grouped)
    if (chosen === undefined) {
      return new PartitionLeases.NotQueueOwner({ broker: ownership.brokerId, topic: spec.name, ...(grouped === undefined ? {} : { queueId: grouped }) })
    }
    // the queue and epoch written at go to the trace: the simulator's checker holds them to the claims
    if (trace.enabled) trace.record("broker.store", `${ownership.brokerId} ${spec.name}/${chosen.queueId} ${chosen.epoch} ${message.messageId}`)
    return chosen.queueId
  }

  // where one message of a send stands: stored (its receipt), refused, or a duplicate of one being stored
  interface Slot {
    receipt?: SendReceipt
    failure?: Cause.Cause<SendError>
    duplicateOf?: Deferred.Deferred<SendReceipt, SendError>
  }
  interface Pending {
    readonly message: Message.Message
    readonly entry: Remembered
    readonly slot: Slot
    readonly key: string
    readonly queueId: number
    readonly spec: Topics.TopicSpec
    readonly transactional: boolean
    readonly encoded: Uint8Array | undefined
  }

  // Settles a message's store outcome: its send's slot, the remembered id, and any duplicate
  // waiting on it. A failed send is not remembered, so the producer's retry can store it.
  const settle = (item: Pending, outcome: Exit.Exit<SendReceipt, SendError>) => {
    if (Exit.isSuccess(outcome)) {
      item.slot.receipt = item.entry.receipt = outcome.value
      storedMessages++
      storedBytes += item.message.body.length
    } else {
      remembered.delete(item.key)
      item.slot.failure = outcome.cause
    }
    for (const waiter of item.entry.waiters ?? []) Deferred.doneUnsafe(waiter, outcome)
    item.entry.waiters = undefined
  }

  const receiptOf = (item: Pending, offset: number, storeTimestamp: number, recallHandle?: string): SendReceipt => ({
    messageId: item.message.messageId,
    transactionId: item.message.messageId,
    topic: item.spec.name,
    queueId: item.queueId,
    offset,
    storeTimestamp,
    ...(recallHandle === undefined ? {} : { recallHandle })
  })

  // The first reason a send is refused as a whole, if any; otherwise each message's topic.
  const checkSend = (messages: ReadonlyArray<Message.Message>, transactional: boolean, limits: Limits.Limits, now: number, validateMessageType: boolean) => {
    const specs: Array<Topics.TopicSpec> = []
    for (const message of messages) {
      const problem = Message.check(message, limits, now)
      if (problem !== undefined) return problem
      const spec = topics.lookup(message.topic)
      if (spec === undefined) return new Topics.TopicNotFound({ topic: message.topic })
      const kind = messageKind(message, transactional)
      if (validateMessageType && kind !== spec.kind) return new MessageTypeMismatch({ topic: spec.name, topicKind: spec.kind, messageKind: kind })
      specs.push(spec)
    }
    return specs
  }

  // Several sends at once: each is checked as a whole (one bad message refuses its own send, not the
  // others), then every message of every send is stored with one storage call per flush policy.
  // The per-message work is plain code: Effects only per call.
  const sendMany = (sends: ReadonlyArray<Send>) =>
    Effect.gen(function*() {
      // read per send, so the check can be set for a scope (a protocol adapter, a test)
      const { validateMessageType } = yield* BrokerSettings
      const limits = yield* Limits.Limits
      const now = yield* Clock.currentTimeMillis
      forgetOld(now)
      const byQueue = new Map<string, Array<Pending>>()
      const held: Array<Pending> = []
      const outcomes: Array<SendError | ReadonlyArray<Slot>> = []
      for (const send of sends) {
        const transactional = send.transactional === true
        const checked = checkSend(send.messages, transactional, limits, now, validateMessageType)
        if (!Array.isArray(checked)) {
          outcomes.push(checked as SendError)
          continue
        }
        outcomes.push(send.messages.map((message, i): Slot => {
          const key = `${message.topic}\u0000${message.messageId}`
          const seen = remembered.get(key)
          if (seen?.receipt !== undefined) return { receipt: seen.receipt }
          if (seen !== undefined) {
            const duplicateOf = Deferred.makeUnsafe<SendReceipt, SendError>()
            ;(seen.waiters ??= []).push(duplicateOf)
            return { duplicateOf }
          }
          const spec = checked[i]!
          const queueId = queueFor(spec, message, now, send.fence)
          if (typeof queueId !== "number") return { failure: Cause.fail(queueId) }
          const entry: Remembered = { at: now, receipt: undefined, waiters: undefined }
          remembered.set(key, entry)
          const encoded = send.messages.length === 1 ? send.encoded : undefined
          const item: Pending = { message, entry, slot: {}, key, queueId, spec, transactional, encoded }
          if (transactional || (message.deliveryTimestamp !== undefined && message.deliveryTimestamp > now)) {
            // held: a half message until its transaction ends; a delayed one until its time (a past
            // delivery time is delivered at once)
            held.push(item)
          } else {
            const slot = `${spec.name}\u0000${item.queueId}`
            const line = byQueue.get(slot)
            if (line === undefined) byQueue.set(slot, [item])
            else line.push(item)
          }
          return item.slot
        }))
      }
      const lines = [...byQueue.values()]
      const appendGroup = (group: ReadonlyArray<Array<Pending>>, policy: Store.FlushPolicy) =>
        store.appendMany(
          group.map((line) => ({
            queue: { topic: line[0]!.spec.name, queueId: line[0]!.queueId },
            messages: line.map(({ encoded, message }) => ({ body: encoded ?? MessageBatch.encode([message]), tagHash: tagHashOf(message) }))
          })),
          policy
        ).pipe(
          Effect.exit,
          Effect.map((exit) =>
            group.forEach((line, l) =>
              line.forEach((item, m) => {
                if (Exit.isFailure(exit)) return settle(item, exit as Exit.Exit<never, SendError>)
                const appended = exit.value[l]![m]!
                settle(item, Exit.succeed(receiptOf(item, appended.offset, appended.storeTime)))
              })
            ))
        )
      // one storage call per flush policy present (usually one: no fibers forked for it)
      const groups = (["sync", "async"] as const)
        .map((policy) => ({ policy, group: lines.filter((line) => line[0]!.spec.flush === policy) }))
        .filter(({ group }) => group.length > 0)
      const policyOf = (policy: Store.FlushPolicy): Store.FlushPolicy => ackBeforeSync ? "async" : policy
      if (groups.length === 1) yield* appendGroup(groups[0]!.group, policyOf(groups[0]!.policy))
      else yield* Effect.forEach(groups, ({ group, policy }) => appendGroup(group, policyOf(policy)), { concurrency: "unbounded", discard: true })
      yield* Effect.forEach(held, (item) =>
        (item.transactional
          ? Effect.map(transactions.prepare(item.queueId, item.message, item.spec.flush), (half): Held => half)
          : Effect.map(timers.schedule(item.queueId, item.message, item.spec.flush), (timer): Held => timer)).pipe(
          Effect.exit,
          Effect.map((exit) => settle(item, Exit.map(exit, (value) => receiptOf(item, value.offset, value.storeTime, value.recallHandle))))
        ), { discard: true })
      for (const line of lines) consumption.appended(line[0]!.spec.name)
      return yield* Effect.forEach(outcomes, (outcome): Effect.Effect<Result.Result<ReadonlyArray<SendReceipt>, SendError>> => {
        if (!Array.isArray(outcome)) return Effect.succeed(Result.fail(outcome as SendError))
        const slots = outcome as ReadonlyArray<Slot>
        const refused = slots.find((slot) => slot.failure !== undefined)
        if (refused !== undefined) return Effect.result(Effect.failCause(refused.failure!))
        return slots.every((slot) => slot.receipt !== undefined)
          ? Effect.succeed(Result.succeed(slots.map((slot) => slot.receipt!)))
          : Effect.result(Effect.forEach(slots, (slot) => slot.receipt !== undefined ? Effect.succeed(slot.receipt) : Deferred.await(slot.duplicateOf!)))
      })
    })

  const send = (messages: ReadonlyArray<Message.Message>, options?: { readonly transactional?: boolean }) =>
    Effect.flatMap(sendMany([{ messages, ...options }]), ([outcome]) => Effect.fromResult(outcome!))

  const createdHere = yield* PubSub.unbounded<string>()
  const deadLetter = (group: string, message: Message.Message) =>
    Effect.gen(function*() {
      const name = Topic.deadLetterTopic(group as ConsumerGroup.ConsumerGroupName)
      yield* topics.get(name).pipe(
        Effect.catchTag("TopicNotFound", () =>
          Effect.tap(topics.create({ name, kind: "NORMAL", queues: 1, flush: "sync" }), () => PubSub.publish(createdHere, name))),
        Effect.catchTag("TopicAlreadyExists", () => topics.get(name)),
        Effect.catchTag("IllegalTopicSpec", (error) => Effect.die(error)),
        Effect.catchTag(["DiskFull", "FileNotFound", "DiskIOError"], (error) => Effect.die(error))
      )
      // the dead letter keeps its message id and says where it came from
      const copy = new Message.Message({
        ...message,
        topic: name,
        userProperties: { ...message.userProperties, DLQ_ORIGIN_TOPIC: message.topic, DLQ_ORIGIN_MESSAGE_ID: message.messageId }
      })
      yield* store.append({ topic: name, queueId: 0 }, [{ body: MessageBatch.encode([copy]), tagHash: tagHashOf(copy) }], "sync")
      consumption.appended(name)
    })

  const consumption = yield* Consumption.make({
    brokerName: settings.brokerName,
    store,
    topic: (name) => topics.get(name),
    group: groups.get,
    committedOffset: (group, topic, queueId) => offsets.get(group, topic, queueId),
    deadLetter,
    groupNames: groups.names,
    snapshotFrom: offsets.stateSnapshotFrom(),
    saveSnapshotFrom: offsets.setStateSnapshotFrom,
    ...(ownership === undefined ? {} : { heldElsewhere: ownership.heldElsewhere })
  })
  ownership?.attach({
    pending: (topic, queueId) =>
      consumption.pendingGroups(topic, queueId).pipe(
        Effect.catch((error) => Effect.as(Effect.logWarning(`could not read what ${topic}/${queueId} holds`, error), undefined))
      ),
    handoffsChanged: () => {
      for (const spec of topics.names()) consumption.appended(spec)
    }
  })

  // where a group stands on a queue: its live consumption here, else its committed offset (undefined
  // for a group that never consumed the queue here)
  const consumedOn = (group: string, topic: string, queueId: number, live: ReturnType<typeof consumption.progress>) => {
    const consumed = live[queueId]?.consumed
    return consumed !== undefined ? Effect.succeed(consumed) : offsets.get(group, topic, queueId)
  }

  const holdings = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let unconsumed = 0
    let inFlight = 0
    let oldest = now
    const names = groups.names()
    for (const spec of yield* topics.list) {
      for (const group of names) {
        const live = consumption.progress(group, spec.name)
        for (let queueId = 0; queueId < spec.queues; queueId++) {
          const consumed = yield* consumedOn(group, spec.name, queueId, live)
          // a group that has never consumed the topic here is not waited for
          if (consumed === undefined) continue
          const ref = { topic: spec.name, queueId }
          const bounds = yield* store.bounds(ref)
          const behind = Math.max(0, bounds.end - Math.max(consumed, bounds.start))
          if (behind === 0) continue
          unconsumed += behind
          inFlight += live[queueId]?.inFlight ?? 0
          const [first] = yield* store.read(ref, Math.max(consumed, bounds.start), { maxCount: 1, maxBytes: 1 })
          if (first !== undefined) oldest = Math.min(oldest, first.storeTime)
        }
      }
    }
    return { storedMessages, storedBytes, unconsumed, inFlight, lagMillis: now - oldest, held: timers.pending() + transactions.open() }
  })

  // a held message (delayed, or a committed half) reaching its queue
  const deliverHeld = (queueId: number, message: Message.Message) =>
    store.append({ topic: message.topic, queueId }, [{ body: MessageBatch.encode([message]), tagHash: tagHashOf(message) }], "sync").pipe(
      Effect.tap(() => Effect.sync(() => consumption.appended(message.topic)))
    )
  const timers = yield* Timers.make({ store, deliver: deliverHeld })

  const transactions = yield* Transactions.make({ store, deliver: deliverHeld, checker })

  // The remembered ids survive a restart: they are found again in what was stored within the window
  // (as NATS JetStream rebuilds its duplicate window), the held stores included, whose receipts the
  // first answer named.
  const rememberStored = Effect.gen(function*() {
    const since = (yield* Clock.currentTimeMillis) - windowMillis
    const found = new Map<string, { readonly at: number; readonly receipt: SendReceipt }>()
    const add = (message: Message.Message, receipt: Omit<SendReceipt, "messageId" | "transactionId" | "topic">) =>
      found.set(`${message.topic}\u0000${message.messageId}`, {
        at: receipt.storeTimestamp,
        receipt: { messageId: message.messageId, transactionId: message.messageId, topic: message.topic, ...receipt }
      })
    for (const spec of yield* topics.list) {
      for (let queueId = 0; queueId < spec.queues; queueId++) {
        const ref = { topic: spec.name, queueId }
        yield* scanQueue(store, ref, (record) => {
          const decoded = MessageBatch.decode(record.body)
          if (Result.isSuccess(decoded)) add(decoded.success[0]!, { queueId, offset: record.offset, storeTimestamp: record.storeTime })
          return false
        }, yield* store.offsetForTime(ref, since))
      }
    }
    // after the topics: a held message that reached its topic was first answered with its held place
    for (const held of yield* transactions.preparedSince(since)) {
      add(held.message, { queueId: held.queueId, offset: held.offset, storeTimestamp: held.storeTime })
    }
    for (const held of yield* timers.scheduledSince(since)) {
      add(held.message, { queueId: held.queueId, offset: held.offset, storeTimestamp: held.storeTime, recallHandle: held.recallHandle })
    }
    const oldestFirst = [...found].sort(([, a], [, b]) => a.at - b.at).slice(-settings.idempotencyMaxEntries)
    for (const [key, { at, receipt }] of oldestFirst) remembered.set(key, { at, receipt, waiters: undefined })
  })
  yield* rememberStored

  // Pop consumers' acknowledged progress becomes their committed offsets, so a restarted broker
  // resumes where they were (what was in flight is delivered again: at-least-once)
  const commitConsumed = Effect.gen(function*() {
    const entries = []
    for (const spec of yield* topics.list) {
      for (const group of groups.names()) {
        const consumed = consumption.consumed(group, spec.name)
        for (let queueId = 0; queueId < consumed.length; queueId++) {
          if ((yield* offsets.get(group, spec.name, queueId)) !== consumed[queueId]) {
            entries.push({ group, topic: spec.name, queueId, offset: consumed[queueId]! })
          }
        }
      }
    }
    if (entries.length > 0) yield* offsets.commit(entries)
  })
  yield* Effect.addFinalizer(() => Effect.ignore(commitConsumed))

  // Retention: the log's old segments go by the settings' age and size. Of the internal topics only
  // what is still needed stays: held messages not released. (A consumer-state record always follows
  // the message it is about, so it goes only with that message.)
  const retentionRound = Effect.gen(function*() {
    yield* consumption.snapshotIfGrown
    const keep = [...timers.keep(), ...transactions.keep()]
    const deleted = yield* store.retain((topic) => internalTopics.has(topic) ? { maxBytes: 0 } : settings.retention, keep)
    if (deleted > 0) {
      consumption.afterRetention()
      yield* Effect.logInfo(`retention deleted ${deleted} bytes of old log segments`)
    }
  })
  // The first round one interval after opening, then one an interval after each ends, started by the
  // housekeeping loop below and run apart from it: the first round after a restart reads every queue
  // index, and offsets are committed meanwhile.
  let nextRetention = (yield* Clock.currentTimeMillis) + Duration.toMillis(settings.retentionInterval)
  let retaining = false
  const retainWhenDue = Effect.gen(function*() {
    if (retaining || (yield* Clock.currentTimeMillis) < nextRetention) return
    retaining = true
    yield* Effect.forkScoped(retentionRound.pipe(
      Effect.catch((error) => Effect.logWarning("retention failed; it runs again at its next interval", error)),
      Effect.ensuring(Effect.clockWith((clock) =>
        Effect.sync(() => {
          retaining = false
          nextRetention = clock.currentTimeMillisUnsafe() + Duration.toMillis(settings.retentionInterval)
        })
      ))
    ))
  })

  // housekeeping: offsets committed every commitInterval, retention when due
  yield* Effect.forkScoped(Effect.repeat(
    Effect.ignore(commitConsumed).pipe(Effect.andThen(retainWhenDue)),
    Schedule.spaced(settings.commitInterval)
  ))

  const queueOf = (topic: string, queueId: number) =>
    Effect.gen(function*() {
      const spec = yield* topics.get(topic)
      if (!Number.isInteger(queueId) || queueId < 0 || queueId >= spec.queues) return yield* new QueueNotFound({ topic, queueId })
      return { spec, ref: { topic, queueId }, bounds: yield* store.bounds({ topic, queueId }) }
    })

  const pull = (request: Parameters<Broker["Service"]["pull"]>[0]) =>
    Effect.gen(function*() {
      const { bounds, ref } = yield* queueOf(request.topic, request.queueId)
      if (request.offset < bounds.start || request.offset > bounds.end) {
        return yield* new OffsetOutOfRange({ ...ref, offset: request.offset, ...bounds })
      }
      const records = yield* store.read(ref, request.offset, { maxCount: request.maxCount, maxBytes: request.maxBytes ?? 4 * 1024 * 1024 })
      const messages: Array<Message.StoredMessage> = []
      for (const record of records) {
        const decoded = MessageBatch.decode(record.body)
        // the record passed its CRC, so a body that does not decode is a bug, not bad input
        if (Result.isFailure(decoded)) return yield* Effect.die(decoded.failure)
        const message = decoded.success[0]!
        if (request.filter !== undefined && !request.filter.matches({ tag: message.tag, properties: message.userProperties })) continue
        messages.push(MessageBatch.toStored(message, {
          queueId: ref.queueId as Message.StoredMessage["queueId"],
          queueOffset: record.offset as Message.StoredMessage["queueOffset"],
          storeTimestamp: record.storeTime,
          deliveryAttempt: 1
        }))
      }
      const nextOffset = records.length === 0 ? request.offset : records[records.length - 1]!.offset + 1
      return { messages, nextOffset, ...bounds }
    })

  const commitOffset = (group: string, topic: string, queueId: number, offset: number) =>
    Effect.gen(function*() {
      const { bounds, ref } = yield* queueOf(topic, queueId)
      if (offset < bounds.start || offset > bounds.end) return yield* new OffsetOutOfRange({ ...ref, offset, ...bounds })
      yield* offsets.commit([{ group, topic, queueId, offset }])
    })

  const resetOffsetsToTime = (group: string, topic: string, time: number) =>
    Effect.gen(function*() {
      const spec = yield* topics.get(topic)
      const moved = yield* Effect.forEach(Array.from({ length: spec.queues }, (_, queueId) => queueId), (queueId) =>
        Effect.map(store.offsetForTime({ topic, queueId }, time), (offset) => ({ group, topic, queueId, offset })))
      yield* offsets.commit(moved)
      return moved.map((entry) => entry.offset)
    })

  return Broker.of({
    fatal: store.failed,
    topicsCreatedHere: Stream.fromPubSub(createdHere),
    createTopic: (spec) => topics.create(spec),
    updateTopic: (name, change) => topics.update(name, change),
    deleteTopic: (name) => topics.remove(name),
    describeTopic: (name) =>
      Effect.gen(function*() {
        const spec = yield* topics.get(name)
        const queues = yield* Effect.forEach(Array.from({ length: spec.queues }, (_, queueId) => queueId), (queueId) =>
          Effect.map(store.bounds({ topic: name, queueId }), (bounds) => ({ queueId, ...bounds })))
        return { spec, queues }
      }),
    topics: topics.list,
    send,
    sendMany,
    pull,
    commitOffset,
    committedOffset: (group, topic, queueId) => offsets.get(group, topic, queueId),
    setGroup: groups.set,
    group: (name) => Effect.flatMap(ConsumerGroup.validateName(name), groups.get),
    groups: groups.list,
    recall: timers.recall,
    endTransaction: transactions.end,
    awaitChecks: transactions.awaitChecks,
    pop: consumption.pop,
    ack: consumption.ack,
    ackMany: consumption.ackMany,
    forwardToDeadLetter: consumption.forwardToDeadLetter,
    changeInvisibility: consumption.changeInvisibility,
    renewInvisibility: consumption.renew,
    stats: Effect.map(consumption.expired, (expiredMessages) => ({ expiredMessages })),
    holdings,
    groupProgress: (group) =>
      Effect.gen(function*() {
        const progress: Array<QueueProgress> = []
        for (const spec of yield* topics.list) {
          if (Topic.isDeadLetterTopic(spec.name) && spec.name !== Topic.deadLetterTopic(group as ConsumerGroup.ConsumerGroupName)) continue
          const live = consumption.progress(group, spec.name)
          for (let queueId = 0; queueId < spec.queues; queueId++) {
            const bounds = yield* store.bounds({ topic: spec.name, queueId })
            const consumed = (yield* consumedOn(group, spec.name, queueId, live)) ?? bounds.start
            progress.push({ topic: spec.name, queueId, end: bounds.end, consumed, inFlight: live[queueId]?.inFlight ?? 0 })
          }
        }
        return progress
      }),
    resetOffsetsToTime
  })
})
