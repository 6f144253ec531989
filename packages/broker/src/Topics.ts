/**
 * The broker's topics: name, kind, queue count and flush policy, kept durably in one small file.
 *
 * @since 0.1.0
 */
import { Topic } from "@strait/core"
import { Disk } from "@strait/storage"
import { Effect, Schema, Semaphore } from "effect"

/**
 * A topic's settings.
 *
 * **Details**
 *
 * `flush` is the storage flush policy of the topic's appends: `sync` answers a send after fdatasync,
 * `async` after the write (RocketMQ's SYNC_FLUSH and ASYNC_FLUSH).
 *
 * @since 0.1.0
 */
export class TopicSpec extends Schema.Class<TopicSpec>("@strait/broker/TopicSpec")({
  name: Topic.TopicName,
  kind: Topic.TopicKind,
  queues: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 })),
  flush: Schema.Literals(["sync", "async"])
}) {}

/**
 * A topic of that name exists already.
 *
 * @since 0.1.0
 */
export class TopicAlreadyExists extends Schema.TaggedError<TopicAlreadyExists>()("TopicAlreadyExists", {
  topic: Schema.String
}) {
  override get message() {
    return `topic ${this.topic} already exists`
  }
}

/**
 * No topic of that name (RocketMQ `TOPIC_NOT_FOUND`).
 *
 * @since 0.1.0
 */
export class TopicNotFound extends Schema.TaggedError<TopicNotFound>()("TopicNotFound", { topic: Schema.String }) {
  override get message() {
    return `topic ${this.topic} does not exist`
  }
}

/**
 * A change of settings the broker refuses: fewer queues (messages in the removed queues would be
 * stranded) or a different kind.
 *
 * @since 0.1.0
 */
export class IllegalTopicChange extends Schema.TaggedError<IllegalTopicChange>()("IllegalTopicChange", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `topic ${this.topic} cannot change: ${this.reason}`
  }
}

/**
 * The topic settings were not valid (a name, a kind, a queue count out of range).
 *
 * @since 0.1.0
 */
export class IllegalTopicSpec extends Schema.TaggedError<IllegalTopicSpec>()("IllegalTopicSpec", {
  reason: Schema.String
}) {
  override get message() {
    return `the topic is not valid: ${this.reason}`
  }
}

/**
 * Checks a topic's spec (name, kind, queue count, flush policy; `flush` defaults to `async`).
 *
 * @since 0.1.0
 */
export const decodeSpec = (spec: unknown): Effect.Effect<TopicSpec, IllegalTopicSpec> =>
  Schema.decodeUnknownEffect(TopicSpec)(spec && typeof spec === "object" ? { flush: "async", ...spec } : spec).pipe(
    Effect.mapError((error) => new IllegalTopicSpec({ reason: error.message }))
  )

/**
 * A topic's spec after a change: queues may grow, never shrink.
 *
 * @since 0.1.0
 */
export const changed = (
  current: TopicSpec,
  change: { readonly queues?: number; readonly flush?: "sync" | "async" }
): Effect.Effect<TopicSpec, IllegalTopicSpec | IllegalTopicChange> =>
  Effect.flatMap(decodeSpec({ ...current, ...change }), (next) =>
    next.queues < current.queues
      ? Effect.fail(new IllegalTopicChange({ topic: current.name, reason: `queues can grow, not shrink (${current.queues} → ${next.queues})` }))
      : Effect.succeed(next))

const File = Schema.Struct({ version: Schema.Literal(1), topics: Schema.Array(TopicSpec) })
const encodeFile = Schema.encodeSync(Schema.toCodecJson(File))
const decodeFile = Schema.decodeUnknownSync(Schema.toCodecJson(File))

/**
 * The registry: an in-memory map written through to `path` on every change.
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(path: string) {
  const disk = yield* Disk.Disk
  const bytes = yield* Disk.readSmallFile(path)
  const topics = new Map<string, TopicSpec>()
  if (bytes !== undefined) {
    for (const spec of decodeFile(JSON.parse(new TextDecoder().decode(bytes))).topics) topics.set(spec.name, spec)
  }
  // one change at a time, so the file always holds a state that existed
  const changes = yield* Semaphore.make(1)
  const save = Effect.suspend(() =>
    Disk.writeFileAtomically(
      path,
      new TextEncoder().encode(JSON.stringify(encodeFile({ version: 1, topics: [...topics.values()] })))
    )
  ).pipe(Effect.provideService(Disk.Disk, disk))

  const create = (input: { readonly name: string; readonly kind: Topic.TopicKind; readonly queues: number; readonly flush?: "sync" | "async" }) =>
    changes.withPermits(1)(Effect.gen(function*() {
      const spec = yield* decodeSpec(input)
      if (topics.has(spec.name)) return yield* new TopicAlreadyExists({ topic: spec.name })
      topics.set(spec.name, spec)
      yield* save.pipe(Effect.tapError(() => Effect.sync(() => topics.delete(spec.name))))
      return spec
    }))

  const update = (name: string, change: { readonly queues?: number; readonly flush?: "sync" | "async" }) =>
    changes.withPermits(1)(Effect.gen(function*() {
      const current = topics.get(name)
      if (current === undefined) return yield* new TopicNotFound({ topic: name })
      const next = yield* changed(current, change)
      topics.set(name, next)
      yield* save.pipe(Effect.tapError(() => Effect.sync(() => topics.set(name, current))))
      return next
    }))

  const remove = (name: string) =>
    changes.withPermits(1)(Effect.gen(function*() {
      const current = topics.get(name)
      if (current === undefined) return yield* new TopicNotFound({ topic: name })
      topics.delete(name)
      yield* save.pipe(Effect.tapError(() => Effect.sync(() => topics.set(name, current))))
    }))

  return {
    create,
    update,
    remove,
    /** The topic's spec, read synchronously; `undefined` when there is no such topic. */
    lookup: (name: string): TopicSpec | undefined => topics.get(name),
    get: (name: string) =>
      Effect.suspend(() => {
        const spec = topics.get(name)
        return spec === undefined ? Effect.fail(new TopicNotFound({ topic: name })) : Effect.succeed(spec)
      }),
    list: Effect.sync(() => [...topics.values()]),
    /** Every topic's name, read synchronously. */
    names: (): ReadonlyArray<string> => [...topics.keys()]
  }
})
