/**
 * A broker's hold on its queues: it registers under a lease, keeps the lease alive, claims the queues
 * it should serve with a new fencing epoch each, and answers, at every write, whether it may write a
 * queue now.
 *
 * **Details**
 *
 * - Each queue has a home broker (the first to serve it). A queue without an owner is claimed by its
 *   home when the home is alive, else by the live broker that rendezvous hashing picks; a broker
 *   serving a queue whose home is alive again hands it back. A claim is one transaction: the owner
 *   key (bound to the claimer's lease) is created only if absent, together with an epoch one above
 *   the last, so no two brokers ever hold one queue at one epoch.
 * - The lease is trusted locally until `sentAt + ttl - ttl/5`, where `sentAt` is when the last
 *   successful keep-alive was sent. A broker that stalls past that (a pause, a lost network) finds
 *   its queues unwritable the moment it runs again, before it learns anything from the store: the
 *   lease may have expired and another broker may serve its queues at a higher epoch.
 * - When the store says the lease is gone, every queue is dropped and the broker registers again
 *   under a new lease; it then claims what it should, at new epochs.
 * - Closing the scope revokes the lease, so the queues move at once instead of after the ttl.
 * - A leaving broker (`retiring/broker/<id>`) claims nothing and hands back every queue it holds;
 *   the others leave it out of rendezvous hashing. It keeps serving what it stored until that is
 *   consumed.
 * - A FIFO queue given up while its broker still holds messages of it leaves a handoff record
 *   (`Catalog.HandoffRecord`, bound to the lease, written in the same transaction that gives the
 *   queue up): per consumer group, the message groups not yet consumed there. The record is kept
 *   current while the broker lives and deleted once empty; the queue's new owner holds those message
 *   groups back (`heldElsewhere`), so each group is consumed in order across the move. A broker
 *   holding such a record waits only on records of lower epochs (written before its own tenure),
 *   and does not take the queue again until its record is gone, so no two brokers ever wait on each
 *   other.
 *
 * @since 0.1.0
 */
import { PlantedBugs, Topic, Trace } from "@strait/core"
import { Clock, Duration, Effect, Schema, Semaphore } from "effect"
import * as Catalog from "./Catalog.ts"
import { MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"
import * as Reconciler from "./Reconciler.ts"

/**
 * This broker may not write the queue: it does not hold it, or cannot trust its lease right now.
 * The proxy routes the write to the queue's current owner.
 *
 * @since 0.1.0
 */
export class NotQueueOwner extends Schema.TaggedError<NotQueueOwner>()("NotQueueOwner", {
  broker: Schema.String,
  topic: Schema.String,
  queueId: Schema.optionalKey(Schema.Int)
}) {
  override get message() {
    return this.queueId === undefined
      ? `broker ${this.broker} serves no queue of ${this.topic} now`
      : `broker ${this.broker} does not serve ${this.topic}/${this.queueId} now`
  }
}

/**
 * A queue this broker holds, and the epoch it holds it at.
 *
 * @since 0.1.0
 */
export interface HeldQueue {
  readonly topic: string
  readonly queueId: number
  readonly epoch: number
}

/**
 * A broker's partition leases.
 *
 * @since 0.1.0
 */
export interface PartitionLeases {
  readonly brokerId: string
  /**
   * The queues of `topic` this broker may write at time `now` (the caller's `Clock` reading), with
   * their epochs; none while the lease cannot be trusted. Plain code: called on the write path.
   */
  readonly writable: (topic: string, now: number) => ReadonlyArray<HeldQueue>
  /** The epoch this broker may write `topic`/`queueId` at now, or `NotQueueOwner`. */
  readonly guard: (topic: string, queueId: number) => Effect.Effect<number, NotQueueOwner>
  /** Every queue held, lease trusted or not (for status). */
  readonly held: Effect.Effect<ReadonlyArray<HeldQueue>>
  /** Reads the store and claims or hands back queues now (it also happens on every change seen). */
  readonly reconcile: Effect.Effect<void, MetadataUnavailable>
  /**
   * Whether messages of `messageGroup` in `topic`/`queueId` must wait for consumer group `group`:
   * another broker that served the queue still holds earlier ones of that message group. Plain code:
   * called on the receive path.
   */
  readonly heldElsewhere: (group: string, topic: string, queueId: number, messageGroup: string) => boolean
  /** Whether this broker is leaving the cluster (it takes no queues). */
  readonly retiring: Effect.Effect<boolean>
  /** Connects the broker: what it still holds of a queue, and what to do when handoffs change. */
  readonly attach: (hooks: Hooks) => void
}

/**
 * What the broker tells its leases.
 *
 * @since 0.1.0
 */
export interface Hooks {
  /**
   * Per consumer group, the message groups of a FIFO queue's messages stored here and not yet
   * consumed; `undefined` when the broker cannot tell now (its store failed a read).
   */
  readonly pending: (topic: string, queueId: number) => Effect.Effect<Readonly<Record<string, ReadonlyArray<string>>> | undefined>
  /** Handoffs from other brokers changed: receives waiting on a held-back message group may look again. */
  readonly handoffsChanged: () => void
}

/**
 * How a broker holds its leases.
 *
 * @since 0.1.0
 */
export interface LeaseOptions {
  readonly brokerId: string
  /** The broker's data-plane address, for proxies. */
  readonly address: string
  /** Where it also serves over shared memory, for proxies on the same host. */
  readonly shm?: { readonly address: string; readonly host: string }
  /** Where it also serves over RDMA (`rdma://host:port`), for proxies whose hosts have RDMA too. */
  readonly rdma?: string
  /** The lease ttl (default 10 s): how long a dead broker's queues wait before they move. */
  readonly ttl?: Duration.Input
  /** How often the store is read again even when no change was seen (default 2 s). */
  readonly reconcileInterval?: Duration.Input
  /** How often this broker's handoff records are brought up to date while it has any (default 1 s). */
  readonly handoffInterval?: Duration.Input
}

/**
 * The live broker that serves a queue with no live home: the highest hash of queue and broker, so
 * every broker computes the same choice and the queues of a dead broker spread over the others.
 *
 * @since 0.1.0
 */
export const rendezvous = (queueKey: string, brokers: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestHash = -1
  for (const broker of brokers) {
    const hash = Topic.nameHash(`${queueKey}\u0000${broker}`)
    if (hash > bestHash || (hash === bestHash && best !== undefined && broker < best)) {
      best = broker
      bestHash = hash
    }
  }
  return best
}

/**
 * Registers the broker and holds its queues for as long as the scope lives.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: LeaseOptions) {
  const store = yield* MetadataStore
  const me = options.brokerId
  const requestedTtl = options.ttl ?? Duration.seconds(10)
  const reconcileInterval = options.reconcileInterval ?? Duration.seconds(2)
  const brokerKey = Catalog.keys.broker(me)

  let lease: { readonly id: string; readonly ttlMillis: number } | undefined
  let trustedUntil = 0
  const held = new Map<string, HeldQueue>()
  let byTopic = new Map<string, ReadonlyArray<HeldQueue>>()
  const indexHeld = () => {
    const next = new Map<string, Array<HeldQueue>>()
    for (const queue of held.values()) {
      const list = next.get(queue.topic)
      if (list === undefined) next.set(queue.topic, [queue])
      else list.push(queue)
    }
    for (const list of next.values()) list.sort((a, b) => a.queueId - b.queueId)
    byTopic = next
  }
  const trust = (sentAt: number, ttlMillis: number) => {
    trustedUntil = sentAt + ttlMillis - Math.floor(ttlMillis / 5)
  }

  const register = Effect.gen(function*() {
    const sentAt = yield* Clock.currentTimeMillis
    const granted = yield* store.grantLease(requestedTtl)
    const previous = yield* store.get(brokerKey)
    // an earlier run of this broker (killed, so it never revoked): its queues go with its lease
    if (previous?.lease !== undefined && previous.lease !== granted.id) yield* store.revoke(previous.lease)
    yield* store.put(brokerKey, Catalog.encode({
      id: me,
      address: options.address,
      ...(options.shm === undefined ? {} : { shm: options.shm }),
      ...(options.rdma === undefined ? {} : { rdma: options.rdma })
    }), { lease: granted.id })
    lease = granted
    trust(sentAt, granted.ttlMillis)
    yield* Effect.logInfo(`broker ${me} registered (lease ttl ${granted.ttlMillis} ms)`)
  })

  // handoffs per queue: what other brokers still hold of FIFO queues (consumer group → message
  // groups) at the epoch they gave the queue up; every broker with a record; and this broker's own
  // records (their queue, epoch and value as last written), by `queueKey`
  interface Elsewhere {
    readonly epoch: number
    readonly pending: ReadonlyMap<string, ReadonlySet<string>>
  }
  interface Mine {
    readonly topic: string
    readonly queueId: number
    readonly epoch: number
    readonly written: string
  }
  let elsewhere = new Map<string, ReadonlyArray<Elsewhere>>()
  let holders = new Map<string, ReadonlySet<string>>()
  let elsewhereSeen = ""
  const mine = new Map<string, Mine>()
  let hooks: Hooks | undefined
  let leaving = false

  const dropAll = (why: string) =>
    Effect.suspend(() => {
      const count = held.size
      mine.clear()
      held.clear()
      indexHeld()
      trustedUntil = 0
      lease = undefined
      return Effect.logWarning(`broker ${me} dropped its ${count} queues: ${why}`)
    })

  // claims go to the trace: the simulator's checker holds brokers to them
  const trace = yield* Trace.Trace
  // a bug a test of the simulator may plant (never on otherwise): writes whatever the lease
  const fencingRemoved = (yield* PlantedBugs.PlantedBugs).has("fencing-removed")

  const followHandoffs = (records: ReadonlyArray<Catalog.Handoff>) =>
    Effect.sync(() => {
      const next = new Map<string, Array<Elsewhere>>()
      const withRecords = new Map<string, Set<string>>()
      for (const record of records) {
        const key = Catalog.queueKey(record.topic, record.queueId)
        const brokers = withRecords.get(key)
        if (brokers === undefined) withRecords.set(key, new Set([record.broker]))
        else brokers.add(record.broker)
        if (record.broker === me) {
          // ours, though this map lacks it (the answer to its write was lost): kept current from now on
          if (!mine.has(key)) mine.set(key, { topic: record.topic, queueId: record.queueId, epoch: record.epoch, written: "" })
          continue
        }
        const pending = new Map(Object.entries(record.pending).map(([group, messageGroups]) => [group, new Set(messageGroups)]))
        const list = next.get(key)
        if (list === undefined) next.set(key, [{ epoch: record.epoch, pending }])
        else list.push({ epoch: record.epoch, pending })
      }
      const seen = JSON.stringify(records.map((record) => [record.topic, record.queueId, record.broker, record.epoch, record.pending]).sort())
      elsewhere = next
      holders = withRecords
      if (seen !== elsewhereSeen) {
        elsewhereSeen = seen
        hooks?.handoffsChanged()
      }
    })

  const nothingPending: Readonly<Record<string, ReadonlyArray<string>>> = {}
  // what this broker still holds of a FIFO queue, per consumer group (empty groups left out)
  const pendingOf = (topic: string, queueId: number) =>
    Effect.map(hooks === undefined ? Effect.succeed(nothingPending) : hooks.pending(topic, queueId), (pending) => {
      if (pending === undefined) return undefined
      const kept: Record<string, Array<string>> = {}
      for (const [group, messageGroups] of Object.entries(pending)) if (messageGroups.length > 0) kept[group] = [...messageGroups].sort()
      return kept
    })

  // Stops writing the queue at once, then gives it up; a FIFO queue with messages still to consume
  // here leaves its handoff record in the same transaction.
  const handBack = (topic: Catalog.TopicRecord, queueId: number, owner: Catalog.OwnerRecord, leaseId: string) =>
    Effect.gen(function*() {
      const key = Catalog.queueKey(topic.name, queueId)
      const holding = held.get(key)
      held.delete(key)
      indexHeld()
      const pending = topic.kind === "FIFO" ? yield* pendingOf(topic.name, queueId) : {}
      if (pending === undefined) {
        // what it holds is unknown now: keep the queue until the next reconciliation
        if (holding !== undefined) held.set(key, holding)
        return
      }
      const record = Object.keys(pending).length === 0 ? undefined : Catalog.encode({ epoch: owner.epoch, pending })
      const given = yield* store.transact({
        when: [{ key: Catalog.keys.owner(topic.name, queueId), value: Catalog.encode(owner) }],
        then: [
          { _tag: "Delete", key: Catalog.keys.owner(topic.name, queueId) },
          ...(record === undefined ? [] : [{ _tag: "Put" as const, key: Catalog.keys.handoff(topic.name, queueId, me), value: record, lease: leaseId }])
        ]
      })
      if (given && record !== undefined) mine.set(key, { topic: topic.name, queueId, epoch: owner.epoch, written: record })
    })

  // this broker's handoff records, brought up to date: deleted once nothing is left to consume (a
  // record lost with an earlier lease is forgotten with it, in `dropAll`)
  const refreshHandoffs = Effect.gen(function*() {
    const current = lease
    if (current === undefined) return
    for (const [key, record] of [...mine]) {
      const pending = yield* pendingOf(record.topic, record.queueId)
      if (pending === undefined) continue
      const handoffKey = Catalog.keys.handoff(record.topic, record.queueId, me)
      if (Object.keys(pending).length === 0) {
        yield* store.delete(handoffKey)
        mine.delete(key)
        continue
      }
      const next = Catalog.encode({ epoch: record.epoch, pending })
      if (next === record.written) continue
      yield* store.put(handoffKey, next, { lease: current.id })
      mine.set(key, { ...record, written: next })
    }
  })

  // one reconciliation at a time: the loop's and any caller's
  const serial = Semaphore.makeUnsafe(1)
  const reconcile = serial.withPermits(1)(Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (lease === undefined || now >= trustedUntil) return
    const leaseId = lease.id
    const topics = yield* Catalog.topics
    const live = (yield* Catalog.brokers).map((broker) => broker.id)
    const retiring = yield* Catalog.retiring
    const owners = yield* Catalog.owners
    // read after the owners: a queue given up with a handoff lost its owner in the same transaction
    yield* followHandoffs(yield* Catalog.handoffs)
    const epochs = new Map((yield* store.list(Catalog.keys.epochs)).entries.map((entry) => [entry.key.slice(Catalog.keys.epochs.length), entry]))
    leaving = retiring.has(me)
    // the brokers that take queues: the live ones not leaving (all live ones when every one leaves)
    const eligible = live.filter((broker) => !retiring.has(broker))
    const candidates = eligible.length > 0 ? eligible : live
    const wanted = new Set<string>()
    let changed = false
    for (const topic of topics) {
      for (let queueId = 0; queueId < topic.queues; queueId++) {
        const key = Catalog.queueKey(topic.name, queueId)
        wanted.add(key)
        const owner = owners.get(key)
        const epochEntry = epochs.get(key)
        const epoch = Catalog.decode(Catalog.EpochRecord, epochEntry)
        // a broker still holding unconsumed messages of a FIFO queue it gave up does not take it
        // again until they are consumed (unless every broker does): so the brokers holding a
        // queue's messages are ordered by the epochs they gave it up at, and none waits on a later one
        const withRecord = holders.get(key)
        const takers = withRecord === undefined ? candidates : candidates.filter((broker) => !withRecord.has(broker))
        const pool = takers.length > 0 ? takers : candidates
        const homeTakes = epoch !== undefined && eligible.includes(epoch.home) && pool.includes(epoch.home)
        if (owner?.broker === me) {
          if (!held.has(key)) {
            // ours in the store (a claim whose answer was lost): hold it
            held.set(key, { topic: topic.name, queueId, epoch: owner.epoch })
            changed = true
          }
          const homeElsewhere = homeTakes && epoch.home !== me
          if (homeElsewhere || (leaving && pool.some((broker) => broker !== me))) {
            yield* handBack(topic, queueId, owner, leaseId)
            changed = true
            yield* Effect.logInfo(homeElsewhere ? `broker ${me} handed ${key} to its home ${epoch.home}` : `broker ${me} let ${key} go: it is leaving`)
          }
          continue
        }
        if (held.delete(key)) changed = true
        if (owner !== undefined) continue
        const home = homeTakes ? epoch.home : undefined
        if ((home ?? rendezvous(key, pool)) !== me) continue
        const next = { broker: me, epoch: (epoch?.epoch ?? 0) + 1 }
        const claimed = yield* store.transact({
          when: [
            { key: Catalog.keys.owner(topic.name, queueId), version: 0 },
            epochEntry === undefined ? { key: Catalog.keys.epoch(topic.name, queueId), version: 0 } : { key: epochEntry.key, modRevision: epochEntry.modRevision }
          ],
          then: [
            { _tag: "Put", key: Catalog.keys.owner(topic.name, queueId), value: Catalog.encode(next), lease: leaseId },
            { _tag: "Put", key: Catalog.keys.epoch(topic.name, queueId), value: Catalog.encode({ epoch: next.epoch, home: epoch?.home ?? me }) }
          ]
        })
        if (claimed) {
          held.set(key, { topic: topic.name, queueId, epoch: next.epoch })
          if (trace.enabled) trace.record("lease.claim", `${me} ${key} ${next.epoch}`)
          changed = true
          yield* Effect.logDebug(`broker ${me} serves ${key} at epoch ${next.epoch}`)
        }
      }
    }
    // queues of deleted topics, or beyond a topic's queues
    for (const [key, queue] of held) {
      if (wanted.has(key)) continue
      held.delete(key)
      changed = true
      yield* store.transact({
        when: [{ key: Catalog.keys.owner(queue.topic, queue.queueId), value: Catalog.encode({ broker: me, epoch: queue.epoch }) }],
        then: [{ _tag: "Delete", key: Catalog.keys.owner(queue.topic, queue.queueId) }]
      })
    }
    if (changed) indexHeld()
  }).pipe(Effect.provideService(MetadataStore, store)))

  yield* register
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      const current = lease
      held.clear()
      indexHeld()
      trustedUntil = 0
      lease = undefined
      return current === undefined ? Effect.void : Effect.ignore(store.revoke(current.id))
    })
  )

  // keep-alive: a third of the ttl apart; a lease the store no longer knows means starting over
  const keepAlive = Effect.gen(function*() {
    const current = lease
    if (current === undefined) return yield* register
    const sentAt = yield* Clock.currentTimeMillis
    const alive = yield* store.keepAlive(current.id)
    if (alive) return trust(sentAt, current.ttlMillis)
    yield* dropAll("its lease expired")
    yield* register
  }).pipe(Effect.catch((error) => Effect.logWarning(`broker ${me} could not keep its lease alive`, error)))
  const ttlMillis = lease!.ttlMillis
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.millis(Math.max(1, Math.floor(ttlMillis / 3)))), keepAlive)))

  yield* Effect.forkScoped(Effect.forever(Effect.andThen(
    Effect.sleep(options.handoffInterval ?? Duration.seconds(1)),
    serial.withPermits(1)(refreshHandoffs).pipe(Effect.catch((error) => Effect.logWarning(`broker ${me} could not update its handoffs`, error)))
  )))

  yield* Reconciler.run({
    prefixes: [Catalog.keys.topics, Catalog.keys.brokers, Catalog.keys.owners, Catalog.keys.retiring, Catalog.keys.handoffs],
    interval: reconcileInterval,
    reconcile: reconcile.pipe(Effect.catch((error) => Effect.logWarning(`broker ${me} could not read the queue owners`, error)))
  }).pipe(Effect.provideService(MetadataStore, store))

  const service: PartitionLeases = {
    brokerId: me,
    writable: (topic, now) => now < trustedUntil || fencingRemoved ? byTopic.get(topic) ?? [] : [],
    guard: (topic, queueId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const queue = now < trustedUntil ? held.get(Catalog.queueKey(topic, queueId)) : undefined
        return queue === undefined ? Effect.fail(new NotQueueOwner({ broker: me, topic, queueId })) : Effect.succeed(queue.epoch)
      }),
    held: Effect.sync(() => [...held.values()]),
    reconcile,
    heldElsewhere: (group, topic, queueId, messageGroup) => {
      if (elsewhere.size === 0) return false
      const key = Catalog.queueKey(topic, queueId)
      const records = elsewhere.get(key)
      if (records === undefined) return false
      // what this broker holds of a queue it gave up waits only on what was written before it had it
      const own = mine.get(key)?.epoch ?? Number.POSITIVE_INFINITY
      return records.some((record) => record.epoch < own && record.pending.get(group)?.has(messageGroup) === true)
    },
    retiring: Effect.sync(() => leaving),
    attach: (attached) => {
      hooks = attached
    }
  }
  return service
})
