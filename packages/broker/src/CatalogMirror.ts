/**
 * A cluster broker's copy of the catalog: the topics and consumer groups of the control plane,
 * created and updated in this broker as they appear and change, so that it can store any queue it is
 * given and apply every group's settings.
 *
 * **Details**
 *
 * The mirror applies the catalog when it starts, on every change it watches, and every few seconds.
 * A dead-letter topic the broker creates (at a group's first dead letter) is published to the catalog
 * as soon as it exists, so its route is found right after the dead letter was acknowledged.
 * A topic is deleted here only when a watch reports its deletion: a topic this broker has that the
 * catalog lacks (deleted while the broker was down) stays, unrouted, with its data.
 *
 * @since 0.1.0
 */
import { Catalog, MetadataStore, Reconciler } from "@strait/control"
import { ConsumerGroup, Topic } from "@strait/core"
import { Duration, Effect, Stream } from "effect"
import { Broker } from "./Broker.ts"

/**
 * Mirrors the catalog into the broker while the scope lives.
 *
 * @since 0.1.0
 */
export const run = Effect.fnUntraced(function*(options: {
  readonly interval?: Duration.Input
  /**
   * Publish this broker's topics and group settings that the catalog lacks, once at start: for a
   * single node whose data directory predates its catalog.
   */
  readonly adopt?: boolean
} = {}) {
  const broker = yield* Broker
  const store = yield* MetadataStore.MetadataStore

  const applyTopic = (record: Catalog.TopicRecord, local: ReadonlyMap<string, { readonly queues: number; readonly flush: string; readonly kind: string }>) =>
    Effect.gen(function*() {
      const mine = local.get(record.name)
      if (mine === undefined) {
        yield* broker.createTopic(record)
        return yield* Effect.logInfo(`created topic ${record.name} from the catalog`)
      }
      if (mine.kind !== record.kind) return yield* Effect.logWarning(`topic ${record.name} is ${mine.kind} here and ${record.kind} in the catalog; left as it is`)
      if (mine.queues < record.queues || mine.flush !== record.flush) yield* broker.updateTopic(record.name, { queues: Math.max(mine.queues, record.queues), flush: record.flush })
    }).pipe(Effect.catch((error) => Effect.logWarning(`could not apply topic ${record.name} of the catalog`, error)))

  const applyGroup = (record: Catalog.GroupRecord) =>
    Effect.gen(function*() {
      const name = yield* ConsumerGroup.validateName(record.name)
      const wanted = new ConsumerGroup.ConsumerGroup({ ...record, name })
      const current = yield* broker.group(name)
      if (Catalog.encode(current) !== Catalog.encode(wanted)) yield* broker.setGroup(wanted)
    }).pipe(Effect.catch((error) => Effect.logWarning(`could not apply group ${record.name} of the catalog`, error)))

  // topics this broker has that the catalog lacks go into it: every dead-letter topic (a broker
  // creates one when it first dead-letters a message of a group), or all of them when adopting
  const publish = (all: boolean) =>
    Effect.gen(function*() {
      const known = new Set((yield* Catalog.topics).map((record) => record.name))
      for (const spec of yield* broker.topics) {
        if (known.has(spec.name) || !(all || Topic.isDeadLetterTopic(spec.name))) continue
        if (yield* Catalog.createTopic({ name: spec.name, kind: spec.kind, queues: spec.queues, flush: spec.flush })) {
          yield* Effect.logInfo(`published topic ${spec.name} to the catalog`)
        }
      }
      if (!all) return
      // and the settings of its groups that differ from the defaults
      const configured = new Set((yield* Catalog.groups).map((record) => record.name))
      for (const group of yield* broker.groups) {
        if (configured.has(group.name)) continue
        if (Catalog.encode(group) === Catalog.encode(new ConsumerGroup.ConsumerGroup({ name: group.name }))) continue
        yield* Catalog.putGroup({ ...group })
        yield* Effect.logInfo(`published the settings of group ${group.name} to the catalog`)
      }
    })

  const apply = Effect.gen(function*() {
    yield* publish(false)
    const local = new Map((yield* broker.topics).map((spec) => [spec.name as string, spec]))
    for (const record of yield* Catalog.topics) yield* applyTopic(record, local)
    for (const record of yield* Catalog.groups) yield* applyGroup(record)
  }).pipe(
    Effect.provideService(MetadataStore.MetadataStore, store),
    Effect.catch((error) => Effect.logWarning("could not read the catalog", error))
  )

  // a dead-letter topic this broker creates goes into the catalog at once, so that consumers of the
  // dead letters find its route as soon as the dead letter is acknowledged
  yield* Effect.forkScoped(Stream.runForEach(broker.topicsCreatedHere, () =>
    publish(false).pipe(
      Effect.provideService(MetadataStore.MetadataStore, store),
      Effect.catch((error) => Effect.logWarning("could not publish a new topic to the catalog; the next reconciliation will", error))
    )))
  if (options.adopt === true) {
    yield* publish(true).pipe(
      Effect.provideService(MetadataStore.MetadataStore, store),
      Effect.catch((error) => Effect.logWarning("could not publish this broker's topics to the catalog", error))
    )
  }
  yield* Reconciler.run({
    prefixes: [Catalog.keys.topics, Catalog.keys.groups],
    interval: options.interval ?? Duration.seconds(5),
    reconcile: apply,
    onChange: (change) => {
      const topic = change.key.slice(Catalog.keys.topics.length)
      return change.type === "delete" && change.key.startsWith(Catalog.keys.topics)
        ? broker.deleteTopic(topic).pipe(
          Effect.andThen(Effect.logInfo(`deleted topic ${topic}: the catalog deleted it`)),
          Effect.catch(() => Effect.void)
        )
        : Effect.void
    }
  })
  return { apply }
})
