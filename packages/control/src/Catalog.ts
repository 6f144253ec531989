/**
 * The cluster's metadata as records in the `MetadataStore`: topics, consumer groups, live brokers and
 * proxies, and per queue its owner and fencing epoch.
 *
 * **Details**
 *
 * Keys (under the store's own prefix):
 *
 * | key | value | lives |
 * | --- | --- | --- |
 * | `topics/<topic>` | `TopicRecord` | durable |
 * | `groups/<group>` | `GroupRecord` | durable |
 * | `access` | the access settings (accounts, their secrets and grants) as JSON, read by proxies | durable |
 * | `nodes/broker/<id>`, `nodes/proxy/<id>` | `NodeRecord` | with the node's lease |
 * | `epochs/<topic>/<queue>` | `EpochRecord`: the last epoch given out, and the queue's home broker | durable |
 * | `owners/<topic>/<queue>` | `OwnerRecord`: the broker serving the queue and its epoch | with that broker's lease |
 * | `load/<role>/<id>` | the node's last `Elasticity.Load` report | with the node's lease |
 * | `activate/<kind>/<id>` | present: the standby node `id` may register and take traffic | durable, until the node is stopped |
 * | `controller/leader` | the id of the elasticity controller acting now | with its lease |
 * | `controller/events` | the controller's last decisions and what came of them (JSON) | durable |
 * | `retiring/broker/<id>` | present: the broker is leaving; its queues move away and it takes no new ones | durable, until it has left or stays after all |
 * | `handoff/<topic>/<queue>/<broker>` | `HandoffRecord`: of a FIFO queue that broker gave up, the message groups it still holds unconsumed per consumer group | with that broker's lease, until they are consumed |
 *
 * An owner key exists only while its broker's lease lives, and it is only ever created together with
 * a higher epoch in the same transaction, so no two brokers are ever given one queue at one epoch.
 *
 * @since 0.1.0
 */
import { ConsumerGroup, Topic } from "@strait/core"
import { Effect, Schema } from "effect"
import { type Entry, MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"

/**
 * A topic of the cluster.
 *
 * @since 0.1.0
 */
export const TopicRecord = Schema.Struct({
  name: Schema.String,
  kind: Topic.TopicKind,
  queues: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 })),
  flush: Schema.Literals(["sync", "async"])
})

/**
 * A topic of the cluster.
 *
 * @since 0.1.0
 */
export type TopicRecord = typeof TopicRecord.Type

/**
 * A consumer group's settings.
 *
 * @since 0.1.0
 */
export const GroupRecord = Schema.Struct({ ...ConsumerGroup.ConsumerGroup.fields, name: Schema.String })

/**
 * A consumer group's settings.
 *
 * @since 0.1.0
 */
export type GroupRecord = typeof GroupRecord.Type

/**
 * A live node: its id and where it listens (a broker's data-plane address, a proxy's client address).
 *
 * @since 0.1.0
 */
export const NodeRecord = Schema.Struct({
  id: Schema.String,
  address: Schema.String,
  /** A broker that also serves over shared memory: where, and on which host (`hostId`). */
  shm: Schema.optionalKey(Schema.Struct({ address: Schema.String, host: Schema.String })),
  /** A broker that also serves over RDMA: its `rdma://host:port` address. */
  rdma: Schema.optionalKey(Schema.String)
})

/**
 * A live node.
 *
 * @since 0.1.0
 */
export type NodeRecord = typeof NodeRecord.Type

/**
 * The broker serving a queue, and the fencing epoch it serves it at.
 *
 * @since 0.1.0
 */
export const OwnerRecord = Schema.Struct({ broker: Schema.String, epoch: Schema.Int })

/**
 * The broker serving a queue.
 *
 * @since 0.1.0
 */
export type OwnerRecord = typeof OwnerRecord.Type

/**
 * The last epoch given out for a queue, and its home: the broker that keeps its data and gets it
 * back when it returns.
 *
 * @since 0.1.0
 */
export const EpochRecord = Schema.Struct({ epoch: Schema.Int, home: Schema.String })

/**
 * The last epoch of a queue and its home.
 *
 * @since 0.1.0
 */
export type EpochRecord = typeof EpochRecord.Type

/**
 * What a broker that gave up a FIFO queue still holds of it: per consumer group, the message groups
 * with messages there not yet consumed. The queue's new owner holds those groups back for that
 * consumer group until they are gone from the record, so each message group stays in order across
 * the move.
 *
 * @since 0.1.0
 */
export const HandoffRecord = Schema.Struct({
  /** The epoch the broker held the queue at. */
  epoch: Schema.Int,
  pending: Schema.Record(Schema.String, Schema.Array(Schema.String))
})

/**
 * What a broker that gave up a FIFO queue still holds of it.
 *
 * @since 0.1.0
 */
export type HandoffRecord = typeof HandoffRecord.Type

/**
 * Key prefixes and keys.
 *
 * @since 0.1.0
 */
export const keys = {
  topics: "topics/",
  topic: (name: string) => `topics/${name}`,
  access: "access",
  groups: "groups/",
  group: (name: string) => `groups/${name}`,
  brokers: "nodes/broker/",
  broker: (id: string) => `nodes/broker/${id}`,
  proxies: "nodes/proxy/",
  proxy: (id: string) => `nodes/proxy/${id}`,
  owners: "owners/",
  owner: (topic: string, queueId: number) => `owners/${topic}/${queueId}`,
  epochs: "epochs/",
  epoch: (topic: string, queueId: number) => `epochs/${topic}/${queueId}`,
  loads: (role: string) => `load/${role}/`,
  load: (role: string, id: string) => `load/${role}/${id}`,
  activation: (kind: string, id: string) => `activate/${kind}/${id}`,
  retiring: "retiring/broker/",
  retire: (id: string) => `retiring/broker/${id}`,
  handoffs: "handoff/",
  handoff: (topic: string, queueId: number, broker: string) => `handoff/${topic}/${queueId}/${broker}`,
  controller: "controller/leader",
  controllerEvents: "controller/events"
} as const

/**
 * A queue's identity in keys and maps: `<topic>/<queue>`.
 *
 * @since 0.1.0
 */
export const queueKey = (topic: string, queueId: number) => `${topic}/${queueId}`

/**
 * The topic and queue of a `queueKey` (topic names hold no `/`).
 *
 * @since 0.1.0
 */
export const parseQueueKey = (key: string): { readonly topic: string; readonly queueId: number } | undefined => {
  const slash = key.lastIndexOf("/")
  const queueId = Number(key.slice(slash + 1))
  return slash <= 0 || !Number.isInteger(queueId) ? undefined : { topic: key.slice(0, slash), queueId }
}

/**
 * Reads a record's value; a value that does not decode is treated as absent and logged (a newer
 * version wrote it, or someone wrote the key by hand).
 *
 * @since 0.1.0
 */
export const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, entry: Entry | undefined): S["Type"] | undefined => {
  if (entry === undefined) return undefined
  try {
    return Schema.decodeUnknownSync(schema)(JSON.parse(entry.value))
  } catch {
    return undefined
  }
}

/**
 * Encodes a record's value.
 *
 * @since 0.1.0
 */
export const encode = (value: unknown) => JSON.stringify(value)

const withStore = <A, E>(f: (store: MetadataStore["Service"]) => Effect.Effect<A, E>): Effect.Effect<A, E, MetadataStore> =>
  Effect.gen(function*() {
    return yield* f(yield* MetadataStore)
  })

const listOf = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, prefix: string) =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const { entries } = yield* store.list(prefix)
    const records: Array<S["Type"]> = []
    for (const entry of entries) {
      const record = decode(schema, entry)
      if (record === undefined) yield* Effect.logWarning(`ignoring ${entry.key}: its value is not a ${prefix} record`)
      else records.push(record)
    }
    return records
  })

// the records under a per-queue prefix, by `queueKey`
function byQueue<S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, prefix: string) {
  return Effect.gen(function*() {
    const store = yield* MetadataStore
    const { entries } = yield* store.list(prefix)
    const records = new Map<string, S["Type"]>()
    for (const entry of entries) {
      const record = decode(schema, entry)
      if (record !== undefined) records.set(entry.key.slice(prefix.length), record)
    }
    return records as ReadonlyMap<string, S["Type"]>
  })
}

/**
 * Every topic.
 *
 * @since 0.1.0
 */
export const topics: Effect.Effect<ReadonlyArray<TopicRecord>, MetadataUnavailable, MetadataStore> = listOf(TopicRecord, keys.topics)

/**
 * One topic, if it exists.
 *
 * @since 0.1.0
 */
export const topic = (name: string): Effect.Effect<TopicRecord | undefined, MetadataUnavailable, MetadataStore> =>
  withStore((store) => Effect.map(store.get(keys.topic(name)), (entry) => decode(TopicRecord, entry)))

/**
 * Creates a topic; false when one of that name exists already.
 *
 * @since 0.1.0
 */
export const createTopic = (record: TopicRecord): Effect.Effect<boolean, MetadataUnavailable, MetadataStore> =>
  withStore((store) =>
    store.transact({ when: [{ key: keys.topic(record.name), version: 0 }], then: [{ _tag: "Put", key: keys.topic(record.name), value: encode(record) }] }))

/**
 * Replaces a topic's record (more queues, another flush policy).
 *
 * @since 0.1.0
 */
export const updateTopic = (record: TopicRecord): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  withStore((store) => store.put(keys.topic(record.name), encode(record)))

/**
 * Deletes a topic and its queues' epochs; false when it did not exist. Owners let their queues go
 * when they see the topic gone.
 *
 * @since 0.1.0
 */
export const deleteTopic = (name: string): Effect.Effect<boolean, MetadataUnavailable, MetadataStore> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const existing = yield* store.get(keys.topic(name))
    if (existing === undefined) return false
    const { entries } = yield* store.list(`${keys.epochs}${name}/`)
    return yield* store.transact({
      when: [{ key: keys.topic(name), modRevision: existing.modRevision }],
      then: [{ _tag: "Delete", key: keys.topic(name) }, ...entries.map((entry) => ({ _tag: "Delete" as const, key: entry.key }))]
    })
  })

/**
 * The cluster's access settings as stored (JSON), if any: proxies decode them with their own schema.
 *
 * @since 0.1.0
 */
export const accessSettings: Effect.Effect<unknown, MetadataUnavailable, MetadataStore> = withStore((store) =>
  Effect.map(store.get(keys.access), (entry) => {
    if (entry === undefined) return undefined
    try {
      return JSON.parse(entry.value) as unknown
    } catch {
      return undefined
    }
  }))

/**
 * Replaces the cluster's access settings (their JSON encoding).
 *
 * @since 0.1.0
 */
export const putAccessSettings = (encoded: unknown): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  withStore((store) => store.put(keys.access, encode(encoded)))

/**
 * Every consumer group with settings of its own.
 *
 * @since 0.1.0
 */
export const groups: Effect.Effect<ReadonlyArray<GroupRecord>, MetadataUnavailable, MetadataStore> = listOf(GroupRecord, keys.groups)

/**
 * Sets a consumer group's settings.
 *
 * @since 0.1.0
 */
export const putGroup = (record: GroupRecord): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  withStore((store) => store.put(keys.group(record.name), encode(record)))

/**
 * The live brokers.
 *
 * @since 0.1.0
 */
export const brokers: Effect.Effect<ReadonlyArray<NodeRecord>, MetadataUnavailable, MetadataStore> = listOf(NodeRecord, keys.brokers)

/**
 * The live proxies.
 *
 * @since 0.1.0
 */
export const proxies: Effect.Effect<ReadonlyArray<NodeRecord>, MetadataUnavailable, MetadataStore> = listOf(NodeRecord, keys.proxies)

/**
 * Every queue's owner, by `queueKey`.
 *
 * @since 0.1.0
 */
export const owners: Effect.Effect<ReadonlyMap<string, OwnerRecord>, MetadataUnavailable, MetadataStore> = byQueue(OwnerRecord, keys.owners)

/**
 * Every queue's last epoch and home, by `queueKey`.
 *
 * @since 0.1.0
 */
export const epochs: Effect.Effect<ReadonlyMap<string, EpochRecord>, MetadataUnavailable, MetadataStore> = byQueue(EpochRecord, keys.epochs)

/**
 * The brokers that are leaving the cluster.
 *
 * @since 0.1.0
 */
export const retiring: Effect.Effect<ReadonlySet<string>, MetadataUnavailable, MetadataStore> = withStore((store) =>
  Effect.map(store.list(keys.retiring), ({ entries }) => new Set(entries.map((entry) => entry.key.slice(keys.retiring.length)))))

/**
 * Marks a broker as leaving (its queues move away, it takes no new ones) or as staying after all.
 *
 * @since 0.1.0
 */
export const setRetiring = (id: string, leaving: boolean): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  withStore((store) => leaving ? store.put(keys.retire(id), encode({ id })) : Effect.asVoid(store.delete(keys.retire(id))))

/**
 * A handoff as stored: the queue, the broker that gave it up, and what it still holds.
 *
 * @since 0.1.0
 */
export interface Handoff extends HandoffRecord {
  readonly topic: string
  readonly queueId: number
  readonly broker: string
}

/**
 * Every handoff under way.
 *
 * @since 0.1.0
 */
export const handoffs: Effect.Effect<ReadonlyArray<Handoff>, MetadataUnavailable, MetadataStore> = withStore((store) =>
  Effect.map(store.list(keys.handoffs), ({ entries }) => {
    const found: Array<Handoff> = []
    for (const entry of entries) {
      const rest = entry.key.slice(keys.handoffs.length)
      const slash = rest.lastIndexOf("/")
      const queue = slash <= 0 ? undefined : parseQueueKey(rest.slice(0, slash))
      const record = decode(HandoffRecord, entry)
      if (queue !== undefined && record !== undefined) found.push({ ...queue, broker: rest.slice(slash + 1), ...record })
    }
    return found
  }))

/**
 * Gives a queue a new home: its owner stops writing it and the new home claims it at the next epoch
 * (the data written so far stays where it is, read by consumers there). False when the queue's
 * record changed meanwhile.
 *
 * @since 0.1.0
 */
export const moveQueue = (topic: string, queueId: number, to: string): Effect.Effect<boolean, MetadataUnavailable, MetadataStore> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const key = keys.epoch(topic, queueId)
    const entry = yield* store.get(key)
    const current = decode(EpochRecord, entry)
    if (current?.home === to) return true
    return yield* store.transact({
      when: [entry === undefined ? { key, version: 0 } : { key, modRevision: entry.modRevision }],
      then: [{ _tag: "Put", key, value: encode({ epoch: current?.epoch ?? 0, home: to }) }]
    })
  })
