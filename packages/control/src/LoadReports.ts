/**
 * Load reports: every node of a cluster writes what it carries under `load/<role>/<id>` every
 * second or so, bound to its lease (the report goes with the node), for the elasticity controller.
 *
 * **Details**
 *
 * A node gives a `Sample`: running totals (CPU time, messages, bytes) and gauges (connections, Pop
 * in flight, backlog, lag, p99 latency). The report turns the totals into rates over the time since
 * the sample before, measured on `Clock`.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, type Scope } from "effect"
import * as Catalog from "./Catalog.ts"
import type * as Elasticity from "./Elasticity.ts"
import type { MetadataStore, MetadataUnavailable } from "./MetadataStore.ts"
import * as NodeRegistration from "./NodeRegistration.ts"

/**
 * What a node measures of itself.
 *
 * @since 0.1.0
 */
export interface Sample {
  /** CPU time used so far, in microseconds (a running total). */
  readonly cpuMicros: number
  /** Messages handled so far (a running total). */
  readonly messages: number
  /** Bytes of message bodies handled so far (a running total). */
  readonly bytes: number
  readonly connections: number
  readonly popInFlight: number
  readonly backlog: number
  readonly lagMillis: number
  readonly p99Millis: number
  /** Brokers: messages held for later (delayed, or half of a transaction). */
  readonly held?: number
}

/**
 * The report of a sample, given the one before and the milliseconds between them.
 *
 * @since 0.1.0
 */
export const report = (
  node: { readonly role: Elasticity.Role; readonly id: string },
  at: number,
  sample: Sample,
  before: { readonly at: number; readonly sample: Sample } | undefined
): Elasticity.Load => {
  const seconds = before === undefined ? 0 : (at - before.at) / 1000
  const rate = (now: number, then: number) => seconds <= 0 ? 0 : Math.max(0, now - then) / seconds
  return {
    id: node.id,
    role: node.role,
    at,
    cpu: before === undefined ? 0 : rate(sample.cpuMicros, before.sample.cpuMicros) / 1e6,
    messagesPerSecond: before === undefined ? 0 : rate(sample.messages, before.sample.messages),
    bytesPerSecond: before === undefined ? 0 : rate(sample.bytes, before.sample.bytes),
    connections: sample.connections,
    popInFlight: sample.popInFlight,
    backlog: sample.backlog,
    lagMillis: sample.lagMillis,
    p99Millis: sample.p99Millis,
    ...(sample.held === undefined ? {} : { held: sample.held })
  }
}

/**
 * Publishes the node's load every `interval` (default 1 s) while the scope lives.
 *
 * @since 0.1.0
 */
export const publish = <E>(options: {
  readonly role: Elasticity.Role
  readonly id: string
  /** The node's sample; one that fails is not reported (and logged). */
  readonly sample: Effect.Effect<Sample, E>
  readonly interval?: Duration.Input
  readonly ttl?: Duration.Input
}): Effect.Effect<void, MetadataUnavailable, MetadataStore | Scope.Scope> =>
  Effect.gen(function*() {
    const keys = yield* NodeRegistration.leased({ name: `the load report of ${options.role} ${options.id}`, ...(options.ttl === undefined ? {} : { ttl: options.ttl }) })
    const key = Catalog.keys.load(options.role, options.id)
    let before: { readonly at: number; readonly sample: Sample } | undefined
    const once = Effect.gen(function*() {
      const sample = yield* options.sample
      const at = yield* Clock.currentTimeMillis
      const load = report(options, at, sample, before)
      before = { at, sample }
      yield* keys.put(key, Catalog.encode(load))
    })
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(
      Effect.sleep(options.interval ?? Duration.seconds(1)),
      once.pipe(Effect.catch((error) => Effect.logDebug(`could not publish the load of ${options.role} ${options.id}`, error)))
    )))
  })
