/**
 * Tenant water levels: per-namespace quotas of messages and body bytes per second and of connected
 * clients, enforced by each proxy, so that a noisy tenant is throttled instead of slowing the others.
 *
 * **Details**
 *
 * - Each namespace (the default one `""` included) has a token bucket per limit, holding at most one
 *   second of its rate and refilled continuously from the `Clock`.
 * - A send's messages are taken in order while the buckets hold enough for each; the rest of the
 *   send is refused with `Throttled` (RocketMQ `TOO_MANY_REQUESTS`, the native protocol's
 *   `Throttled`) saying when to try again. So a client that batches many sends into one request gets
 *   through at the namespace's rate, not in bursts of whole batches that would crowd the links the
 *   tenants share. A message larger than a full bucket goes through when the bucket is full, so it is
 *   never refused forever.
 * - A receive is refused while a bucket is empty; what it received is taken afterwards (a bucket may
 *   then go below zero, and the next requests wait until it refills).
 * - A client beyond the namespace's `connections` is refused as it first calls (its session is not
 *   opened); the clients already connected go on.
 * - Limits are per proxy: a cluster of N proxies lets a namespace through N times its limits.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Schema } from "effect"

const Rate = Schema.Number.check(Schema.isGreaterThan(0))

/**
 * A namespace's limits; a limit left out is not enforced.
 *
 * @since 0.1.0
 */
export const Quota = Schema.Struct({
  /** Messages sent and received per second. */
  messagesPerSecond: Schema.optionalKey(Rate),
  /** Bytes of message bodies sent and received per second. */
  bytesPerSecond: Schema.optionalKey(Rate),
  /** Clients (sessions, by client id) connected through one proxy at once. */
  connections: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
})

/**
 * A namespace's limits.
 *
 * @since 0.1.0
 */
export type Quota = typeof Quota.Type

/**
 * The quotas of a proxy: `default` for every namespace not named in `namespaces`.
 *
 * @since 0.1.0
 */
export const QuotaSettings = Schema.Struct({
  default: Schema.optionalKey(Quota),
  namespaces: Schema.optionalKey(Schema.Record(Schema.String, Quota))
})

/**
 * The quotas of a proxy.
 *
 * @since 0.1.0
 */
export type QuotaSettings = typeof QuotaSettings.Type

/**
 * A namespace is over one of its limits: the request is refused, and may be made again after
 * `retryAfterMillis`.
 *
 * @since 0.1.0
 */
export class Throttled extends Schema.TaggedError<Throttled>()("Throttled", {
  namespace: Schema.String,
  limit: Schema.String,
  retryAfterMillis: Schema.Number
}) {
  override get message() {
    return `namespace "${this.namespace}" is over its quota of ${this.limit}; try again in ${this.retryAfterMillis} ms`
  }
}

/**
 * How much of a send the quotas let through: its first `admitted` messages; the rest for `refusal`.
 *
 * @since 0.1.0
 */
export interface Admission {
  readonly admitted: number
  readonly refusal?: Throttled
}

interface Bucket {
  readonly name: string
  readonly rate: number
  tokens: number
  at: number
}

/**
 * A proxy's quota keeper.
 *
 * @since 0.1.0
 */
export interface Quotas {
  /**
   * Takes a send's messages (their body sizes, in order) while the buckets hold enough: how many were
   * taken, and why the rest were refused.
   */
  readonly admitSend: (namespace: string, sizes: ReadonlyArray<number>) => Effect.Effect<Admission>
  /** Refuses a receive while the namespace has nothing left. */
  readonly admitReceive: (namespace: string) => Effect.Effect<void, Throttled>
  /** Takes what a receive got. */
  readonly received: (namespace: string, messages: number, bytes: number) => Effect.Effect<void>
  /** Whether the namespace, with `open` clients connected now, may have one more; plain code. */
  readonly admitConnection: (namespace: string, open: number) => Throttled | undefined
}

/**
 * A quota keeper for `settings`; without any limit every call passes at once.
 *
 * @since 0.1.0
 */
export const make = (settings: QuotaSettings = {}): Quotas => {
  const buckets = new Map<string, ReadonlyArray<{ readonly bucket: Bucket; readonly of: "messages" | "bytes" }>>()
  const bucketsOf = (namespace: string, now: number) => {
    let found = buckets.get(namespace)
    if (found === undefined) {
      const quota = settings.namespaces?.[namespace] ?? settings.default ?? {}
      const made: Array<{ readonly bucket: Bucket; readonly of: "messages" | "bytes" }> = []
      if (quota.messagesPerSecond !== undefined) {
        const rate = quota.messagesPerSecond
        made.push({ of: "messages", bucket: { name: `${rate} messages/s`, rate, tokens: rate, at: now } })
      }
      if (quota.bytesPerSecond !== undefined) {
        const rate = quota.bytesPerSecond
        made.push({ of: "bytes", bucket: { name: `${rate} bytes/s`, rate, tokens: rate, at: now } })
      }
      buckets.set(namespace, found = made)
    }
    for (const { bucket } of found) {
      bucket.tokens = Math.min(bucket.rate, bucket.tokens + bucket.rate * Math.max(0, now - bucket.at) / 1000)
      bucket.at = now
    }
    return found
  }
  const throttled = (namespace: string, bucket: Bucket, wanted: number) =>
    new Throttled({ namespace, limit: bucket.name, retryAfterMillis: Math.max(1, Math.ceil((wanted - bucket.tokens) / bucket.rate * 1000)) })
  const limited = settings.default !== undefined || Object.keys(settings.namespaces ?? {}).length > 0
  const connectionsOf = (namespace: string) => (settings.namespaces?.[namespace] ?? settings.default)?.connections

  return {
    admitSend: (namespace, sizes) =>
      !limited ? Effect.succeed({ admitted: sizes.length }) : Effect.map(Clock.currentTimeMillis, (now): Admission => {
        const found = bucketsOf(namespace, now)
        for (let admitted = 0; admitted < sizes.length; admitted++) {
          const size = sizes[admitted]!
          for (const { bucket, of } of found) {
            // a message larger than a full bucket passes only when the bucket is full
            const wanted = Math.min(of === "messages" ? 1 : size, bucket.rate)
            if (bucket.tokens < wanted) return { admitted, refusal: throttled(namespace, bucket, wanted) }
          }
          for (const { bucket, of } of found) bucket.tokens -= of === "messages" ? 1 : size
        }
        return { admitted: sizes.length }
      }),
    admitReceive: (namespace) =>
      !limited ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) => {
        for (const { bucket } of bucketsOf(namespace, now)) {
          if (bucket.tokens < 1) return Effect.fail(throttled(namespace, bucket, 1))
        }
        return Effect.void
      }),
    received: (namespace, messages, bytes) =>
      !limited ? Effect.void : Effect.map(Clock.currentTimeMillis, (now) => {
        for (const { bucket, of } of bucketsOf(namespace, now)) bucket.tokens -= of === "messages" ? messages : bytes
      }),
    admitConnection: (namespace, open) => {
      const most = limited ? connectionsOf(namespace) : undefined
      // a client may try again once another leaves: a second is a fair guess
      return most === undefined || open < most ? undefined : new Throttled({ namespace, limit: `${most} connections`, retryAfterMillis: 1000 })
    }
  }
}
