/**
 * Where a proxy sends each request: which broker stores a message, which broker a receive polls,
 * which broker a receipt handle belongs to, and where topics and groups are defined.
 *
 * **Details**
 *
 * Two kinds:
 *
 * - `single`: one broker at a fixed address (the all-in-one node, or a proxy in front of one broker):
 *   every request goes there, and the broker defines topics and groups.
 * - `cluster`: the control plane's catalog, read from the `MetadataStore` and kept current by a watch.
 *   A message goes to the owner of its queue (a message group's queue, or, without a group, any
 *   broker holding a queue of the topic, in turn); a receive polls the broker it names (the RocketMQ
 *   route lists each live broker), a handle goes back to the broker that issued it; topics and
 *   groups are records in the store, which the brokers mirror. Links to brokers are opened when
 *   first used and closed when the broker leaves; a broker on this host that serves shared memory
 *   is linked through it (`hostId`), one that serves RDMA through that where this process can use
 *   it, each falling back to TCP for that link if the native link fails (`linkAddresses`).
 *
 * @since 0.1.0
 */
import { Client, Topics } from "@strait/broker"
import { Catalog, ElasticityController, MetadataStore, Reconciler } from "@strait/control"
import { ConsumerGroup, ReceiptHandle, Topic, Transport } from "@strait/core"
import { Duration, Effect, Exit, Scope } from "effect"
import * as BrokerLink from "./BrokerLink.ts"

/**
 * A broker as the proxy reaches it.
 *
 * @since 0.1.0
 */
export interface BrokerRef {
  /** The broker's id; `undefined` for the one broker of `single` routing. */
  readonly id: string | undefined
  readonly client: Effect.Effect<Client.BrokerClient, BrokerLink.BrokerUnreachable>
}

/**
 * Where a send goes, and the queues at the epochs it may be stored on there.
 *
 * @since 0.1.0
 */
export interface SendRoute {
  readonly ref: BrokerRef
  readonly fence?: ReadonlyArray<{ readonly queueId: number; readonly epoch: number }>
}

/**
 * A topic as the catalog defines it.
 *
 * @since 0.1.0
 */
export interface TopicRecord {
  readonly name: string
  readonly kind: Topic.TopicKind
  readonly queues: number
  readonly flush: "sync" | "async"
}

/**
 * The queues a client sees for a topic: per broker (`undefined` = the one broker), how many queues
 * it serves now; a live broker that serves none is listed with none (it may still hold messages to
 * receive).
 *
 * @since 0.1.0
 */
export type Route = ReadonlyArray<{ readonly broker: string | undefined; readonly queues: number }>

/**
 * The cluster as the control plane sees it: live nodes, and per queue its owner, epoch and home.
 *
 * @since 0.1.0
 */
export interface ClusterStatus {
  /** The live brokers; `leaving`: it takes no writes and stops once its consumers have taken what it holds. */
  readonly brokers: ReadonlyArray<{ readonly id: string; readonly address: string; readonly leaving?: boolean }>
  readonly proxies: ReadonlyArray<{ readonly id: string; readonly address: string }>
  readonly queues: ReadonlyArray<{
    readonly topic: string
    readonly queueId: number
    readonly broker?: string
    readonly epoch?: number
    readonly home?: string
  }>
  /** The elasticity controller's last decisions and what came of them, oldest first (when it has made any). */
  readonly elasticity?: ReadonlyArray<ElasticityController.Event>
}

/**
 * What routing can fail with: a broker's own errors, an unreachable broker, or an unreadable store.
 *
 * @since 0.1.0
 */
export type RoutingError = Client.CallError | BrokerLink.BrokerUnreachable | MetadataStore.MetadataUnavailable

/**
 * Where a proxy's requests go.
 *
 * @since 0.1.0
 */
export interface Routing {
  /**
   * The broker a message of `topic` goes to now, skipping those in `exclude` (they just refused it),
   * and the fence the send carries: the queues this routing believes that broker serves, at their
   * epochs (none for the one broker of `single`).
   */
  readonly forSend: (topic: string, messageGroup: string | undefined, exclude: ReadonlySet<string>) => Effect.Effect<SendRoute, RoutingError>
  /** Reads the catalog again now (after a broker said the view is out of date). */
  readonly refresh: Effect.Effect<void>
  /**
   * The broker a receive polls: the one it names when that one is live, else the next live one in
   * turn for its `stream` (its group and topic), so that every stream's receives visit every broker.
   */
  readonly forReceive: (broker: string | undefined, stream: string) => Effect.Effect<BrokerRef, RoutingError>
  /** A broker by its id (`undefined`, or any id, names the one broker of `single`). */
  readonly broker: (id: string | undefined) => Effect.Effect<BrokerRef, RoutingError>
  /** The broker that issued a receipt handle. */
  readonly forHandle: (receiptHandle: string) => Effect.Effect<BrokerRef, RoutingError>
  /** Every live broker. */
  readonly brokers: Effect.Effect<ReadonlyArray<BrokerRef>>
  readonly route: (topic: string) => Effect.Effect<Route, RoutingError>
  /** The broker serving each queue of a topic, by queue id (`undefined`: none now, or the one broker). */
  readonly owners: (topic: string) => Effect.Effect<ReadonlyArray<string | undefined>, RoutingError>
  readonly topic: (name: string) => Effect.Effect<TopicRecord, RoutingError>
  readonly topics: Effect.Effect<ReadonlyArray<TopicRecord>, RoutingError>
  readonly createTopic: (spec: TopicRecord) => Effect.Effect<TopicRecord, RoutingError>
  readonly updateTopic: (name: string, change: { readonly queues?: number; readonly flush?: "sync" | "async" }) => Effect.Effect<TopicRecord, RoutingError>
  readonly deleteTopic: (name: string) => Effect.Effect<void, RoutingError>
  readonly group: (name: string) => Effect.Effect<ConsumerGroup.ConsumerGroup, RoutingError>
  readonly groups: Effect.Effect<ReadonlyArray<ConsumerGroup.ConsumerGroup>, RoutingError>
  readonly setGroup: (group: ConsumerGroup.ConsumerGroup) => Effect.Effect<void, RoutingError>
  readonly status: Effect.Effect<ClusterStatus, RoutingError>
  /** The access settings of the control plane (their JSON form), if it holds any: they replace the proxy's own. */
  readonly accessSettings: () => unknown
  /** Stores new access settings (their JSON form) for every proxy; `false` without a control plane. */
  readonly setAccessSettings: (encoded: unknown) => Effect.Effect<boolean, RoutingError>
}

const viaClient = <A, E>(ref: BrokerRef, f: (client: Client.BrokerClient) => Effect.Effect<A, E>) => Effect.flatMap(ref.client, f)

/**
 * Routing to the one broker at `address`.
 *
 * @since 0.1.0
 */
export const single = Effect.fnUntraced(function*(address: string) {
  const link = yield* BrokerLink.make(address)
  const only: BrokerRef = { id: undefined, client: link.client }
  const via = <A, E>(f: (client: Client.BrokerClient) => Effect.Effect<A, E>) => viaClient(only, f)
  const routing: Routing = {
    forSend: () => Effect.succeed({ ref: only }),
    refresh: Effect.void,
    forReceive: () => Effect.succeed(only),
    forHandle: () => Effect.succeed(only),
    broker: () => Effect.succeed(only),
    brokers: Effect.succeed([only]),
    route: (topic) => Effect.map(via((client) => client.describeTopic(topic)), (spec) => [{ broker: undefined, queues: spec.queues }]),
    owners: (topic) => Effect.map(via((client) => client.describeTopic(topic)), (spec) => Array.from({ length: spec.queues }, () => undefined)),
    topic: (name) => via((client) => client.describeTopic(name)),
    topics: via((client) => client.listTopics),
    createTopic: (spec) => via((client) => client.createTopic(spec)),
    updateTopic: (name, change) => via((client) => client.updateTopic(name, change)),
    deleteTopic: (name) => via((client) => client.deleteTopic(name)),
    group: (name) => via((client) => client.describeGroup(name)),
    groups: via((client) => client.listGroups),
    setGroup: (group) => via((client) => client.setGroup(group)),
    accessSettings: () => undefined,
    setAccessSettings: () => Effect.succeed(false),
    status: Effect.map(via((client) => client.listTopics), (topics) => ({
      brokers: [{ id: "broker", address }],
      proxies: [],
      queues: topics.flatMap((topic) => Array.from({ length: topic.queues }, (_, queueId) => ({ topic: topic.name, queueId, broker: "broker" })))
    }))
  }
  return routing
})

interface Linked {
  readonly address: string
  readonly link: BrokerLink.BrokerLink
  readonly scope: Scope.Closeable
  readonly ref: BrokerRef
}

/**
 * The addresses a proxy tries, in order, to link to a broker: shared memory when the broker serves
 * it on this host (`hostId`), else RDMA when the broker serves it and this process can use it, then
 * always the broker's own address (TCP), so a failed native link falls back for that broker alone.
 *
 * @since 0.1.0
 */
export const linkAddresses = (
  broker: Catalog.NodeRecord,
  here: { readonly hostId?: string; readonly schemes: ReadonlyArray<Transport.Scheme> }
): ReadonlyArray<string> => {
  if (broker.shm !== undefined && here.hostId !== undefined && broker.shm.host === here.hostId && here.schemes.includes("shm")) {
    return [broker.shm.address, broker.address]
  }
  if (broker.rdma !== undefined && here.schemes.includes("rdma")) return [broker.rdma, broker.address]
  return [broker.address]
}

/**
 * Routing by the control plane's catalog.
 *
 * @since 0.1.0
 */
export const cluster = Effect.fnUntraced(function*(options: {
  readonly refreshInterval?: Duration.Input
  /** This host's id (`hostId` of `@strait/transport-native`): brokers on it that serve shared memory are linked through it. */
  readonly hostId?: string
} = {}) {
  const store = yield* MetadataStore.MetadataStore
  const transport = yield* Transport.Transport
  const scope = yield* Effect.scope
  const provided = <A, E>(effect: Effect.Effect<A, E, MetadataStore.MetadataStore>) => Effect.provideService(effect, MetadataStore.MetadataStore, store)

  // the catalog as last read
  let topics = new Map<string, Catalog.TopicRecord>()
  let groups = new Map<string, Catalog.GroupRecord>()
  let owners: ReadonlyMap<string, Catalog.OwnerRecord> = new Map()
  let access: unknown = undefined
  const links = new Map<string, Linked>()
  let live: ReadonlyArray<string> = []

  const addressesOf = (broker: Catalog.NodeRecord) => linkAddresses(broker, { ...(options.hostId === undefined ? {} : { hostId: options.hostId }), schemes: transport.schemes })
  const linkTo = Effect.fnUntraced(function*(broker: Catalog.NodeRecord) {
    const addresses = addressesOf(broker)
    const current = links.get(broker.id)
    if (current?.address === addresses.join(" ")) return
    if (current !== undefined) yield* Scope.close(current.scope, Exit.void)
    const child = yield* Scope.fork(scope)
    const link = yield* BrokerLink.make(addresses).pipe(Scope.provide(child), Effect.provideService(Transport.Transport, transport))
    links.set(broker.id, { address: addresses.join(" "), link, scope: child, ref: { id: broker.id, client: link.client } })
  })

  const refresh = provided(Effect.gen(function*() {
    const brokers = yield* Catalog.brokers
    for (const broker of brokers) yield* linkTo(broker)
    const ids = new Set(brokers.map((broker) => broker.id))
    for (const [id, linked] of links) {
      if (ids.has(id)) continue
      links.delete(id)
      yield* Scope.close(linked.scope, Exit.void)
    }
    live = [...ids].sort()
    topics = new Map((yield* Catalog.topics).map((topic) => [topic.name, topic]))
    groups = new Map((yield* Catalog.groups).map((group) => [group.name, group]))
    owners = yield* Catalog.owners
    access = yield* Catalog.accessSettings
  }))
  yield* Reconciler.run({
    prefixes: [Catalog.keys.topics, Catalog.keys.groups, Catalog.keys.brokers, Catalog.keys.owners, Catalog.keys.access],
    interval: options.refreshInterval ?? Duration.seconds(5),
    reconcile: refresh.pipe(Effect.catch((error) => Effect.logWarning("could not read the catalog", error)))
  }).pipe(Effect.provideService(MetadataStore.MetadataStore, store))

  const unreachable = (broker: string, reason: string) => new BrokerLink.BrokerUnreachable({ broker, reason })
  const refOf = (id: string) => {
    const linked = links.get(id)
    return linked === undefined ? Effect.fail(unreachable(id, "the broker is not registered (down, or not started)")) : Effect.succeed(linked.ref)
  }

  // a topic missing from the cached catalog may have just been created: read it from the store
  const topicOf = (name: string) =>
    Effect.suspend(() => {
      const cached = topics.get(name)
      if (cached !== undefined) return Effect.succeed(cached)
      return provided(Effect.flatMap(Catalog.topic(name), (record) => {
        if (record === undefined) return Effect.fail(new Topics.TopicNotFound({ topic: name }))
        topics.set(name, record)
        return Effect.succeed(record)
      }))
    })

  const ownersOf = (topic: Catalog.TopicRecord) => Array.from({ length: topic.queues }, (_, queueId) => owners.get(Catalog.queueKey(topic.name, queueId))?.broker)
  const fenceOf = (topic: Catalog.TopicRecord, broker: string, only?: number) =>
    Array.from({ length: topic.queues }, (_, queueId) => ({ queueId, owner: owners.get(Catalog.queueKey(topic.name, queueId)) }))
      .filter(({ owner, queueId }) => owner?.broker === broker && (only === undefined || only === queueId))
      .map(({ owner, queueId }) => ({ queueId, epoch: owner!.epoch }))
  const routeTo = (topic: Catalog.TopicRecord, broker: string, only?: number) =>
    Effect.map(refOf(broker), (ref): SendRoute => ({ ref, fence: fenceOf(topic, broker, only) }))

  let sendTurn = 0
  const receiveTurns = new Map<string, number>()
  const routing: Routing = {
    forSend: (name, messageGroup, exclude) =>
      Effect.flatMap(topicOf(name), (topic) => {
        const serving = ownersOf(topic)
        if (messageGroup !== undefined) {
          const queueId = Topic.queueOfGroup(messageGroup, topic.queues)
          const owner = serving[queueId]
          return owner === undefined || exclude.has(owner)
            ? Effect.fail(unreachable(owner ?? "none", `no broker serves ${name}/${queueId} now`))
            : routeTo(topic, owner, queueId)
        }
        const candidates = [...new Set(serving.filter((owner): owner is string => owner !== undefined && !exclude.has(owner)))].sort()
        if (candidates.length === 0) return Effect.fail(unreachable("none", `no broker serves a queue of ${name} now`))
        return routeTo(topic, candidates[sendTurn++ % candidates.length]!)
      }),
    refresh: refresh.pipe(Effect.catch((error) => Effect.logWarning("could not read the catalog", error))),
    forReceive: (broker, stream) =>
      Effect.suspend(() => {
        if (broker !== undefined && links.has(broker)) return refOf(broker)
        if (live.length === 0) return Effect.fail(unreachable("none", "no broker is registered"))
        // one turn per stream: a turn shared by all receives could, in a steady pattern of receives,
        // send one stream's receives always to the same broker and starve the messages on the others
        const turn = receiveTurns.get(stream) ?? 0
        receiveTurns.set(stream, turn + 1)
        return refOf(live[turn % live.length]!)
      }),
    broker: (id) => id === undefined ? Effect.fail(unreachable("none", "no broker named")) : refOf(id),
    forHandle: (receiptHandle) =>
      Effect.suspend((): Effect.Effect<BrokerRef, RoutingError> => {
        const issuer = ReceiptHandle.peek(receiptHandle)?.brokerName
        return issuer === undefined ? Effect.fail(new ReceiptHandle.InvalidReceiptHandle({ reason: "malformed" })) : refOf(issuer)
      }),
    brokers: Effect.sync(() => [...links.values()].map((linked) => linked.ref)),
    route: (name) =>
      Effect.map(topicOf(name), (topic) => {
        const serving = ownersOf(topic)
        return live.map((broker) => ({ broker, queues: serving.filter((owner) => owner === broker).length }))
      }),
    owners: (name) => Effect.map(topicOf(name), ownersOf),
    topic: topicOf,
    topics: Effect.suspend(() => provided(Catalog.topics)),
    createTopic: (spec) =>
      Effect.gen(function*() {
        const record = yield* Topics.decodeSpec(spec)
        const created = yield* provided(Catalog.createTopic({ ...record }))
        if (!created) return yield* new Topics.TopicAlreadyExists({ topic: record.name })
        topics.set(record.name, { ...record })
        return { ...record }
      }),
    updateTopic: (name, change) =>
      Effect.gen(function*() {
        const current = yield* provided(Catalog.topic(name))
        if (current === undefined) return yield* new Topics.TopicNotFound({ topic: name })
        const next = yield* Topics.changed(new Topics.TopicSpec({ ...current, name: current.name as Topic.TopicName }), change)
        yield* provided(Catalog.updateTopic({ ...next }))
        topics.set(name, { ...next })
        return { ...next }
      }),
    deleteTopic: (name) =>
      Effect.gen(function*() {
        if (!(yield* provided(Catalog.deleteTopic(name)))) return yield* new Topics.TopicNotFound({ topic: name })
        topics.delete(name)
      }),
    group: (name) =>
      Effect.gen(function*() {
        const valid = yield* ConsumerGroup.validateName(name)
        const record = groups.get(name)
        return new ConsumerGroup.ConsumerGroup({ ...record, name: valid })
      }),
    // the groups with settings of their own, and those the brokers have seen used
    groups: Effect.gen(function*() {
      const configured = new Map((yield* provided(Catalog.groups)).map((record) => [record.name, record]))
      const used = yield* Effect.forEach([...links.values()], (linked) => Effect.orElseSucceed(viaClient(linked.ref, (client) => client.listGroups), () => []), {
        concurrency: "unbounded"
      })
      const names = new Set([...configured.keys(), ...used.flat().map((group) => group.name as string)])
      return [...names].sort().map((name) => new ConsumerGroup.ConsumerGroup({ ...configured.get(name), name: name as ConsumerGroup.ConsumerGroupName }))
    }),
    setGroup: (group) =>
      Effect.gen(function*() {
        yield* provided(Catalog.putGroup({ ...group }))
        groups.set(group.name, { ...group })
      }),
    accessSettings: () => access,
    setAccessSettings: (encoded) =>
      Effect.as(Effect.tap(provided(Catalog.putAccessSettings(encoded)), () => Effect.sync(() => (access = encoded))), true),
    status: provided(Effect.gen(function*() {
      const owned = yield* Catalog.owners
      const epochs = yield* Catalog.epochs
      const elasticity = yield* ElasticityController.storedEvents
      const retiring = yield* Catalog.retiring
      return {
        ...(elasticity.length === 0 ? {} : { elasticity }),
        brokers: (yield* Catalog.brokers).map((broker) => retiring.has(broker.id) ? { ...broker, leaving: true } : broker),
        proxies: yield* Catalog.proxies,
        queues: (yield* Catalog.topics).flatMap((topic) =>
          Array.from({ length: topic.queues }, (_, queueId) => {
            const key = Catalog.queueKey(topic.name, queueId)
            const owner = owned.get(key)
            const epoch = epochs.get(key)
            return {
              topic: topic.name,
              queueId,
              ...(owner === undefined ? {} : { broker: owner.broker, epoch: owner.epoch }),
              ...(epoch === undefined ? {} : { home: epoch.home })
            }
          }))
      }
    }))
  }
  return routing
})
