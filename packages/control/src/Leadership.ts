/**
 * One leader among candidates: each candidate tries to create a key bound to a lease of its own; the
 * one that did leads while it keeps the lease alive. A cluster singleton (the elasticity controller)
 * acts only while `leading` holds.
 *
 * **Details**
 *
 * Leadership is trusted locally until `sentAt + ttl - ttl/5`, where `sentAt` is when the last
 * keep-alive that succeeded was sent (as partition leases are): a leader cut off from the store
 * stops acting before its lease can expire and another candidate take the key. A candidate that did
 * not win tries again every third of the ttl; the leader's scope closing revokes its lease, so the
 * next candidate takes over at its next try.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, type Scope } from "effect"
import { MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"

/**
 * A candidate's view of the election.
 *
 * @since 0.1.0
 */
export interface Candidacy {
  /** Whether this candidate leads now (and may act as the singleton). */
  readonly leading: Effect.Effect<boolean>
  /** The id under the key: the leader as the store has it, if any. */
  readonly leader: Effect.Effect<string | undefined, MetadataUnavailable>
}

/**
 * Stands `id` as a candidate for `key` while the scope lives.
 *
 * @since 0.1.0
 */
export const campaign = (options: {
  readonly key: string
  readonly id: string
  readonly ttl?: Duration.Input
}): Effect.Effect<Candidacy, never, MetadataStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const ttl = Duration.toMillis(options.ttl ?? Duration.seconds(5))
    const retry = Duration.millis(Math.max(1, Math.floor(ttl / 3)))
    let trustedUntil = 0
    let lease: string | undefined
    const trust = (sentAt: number, ttlMillis: number) => {
      trustedUntil = sentAt + ttlMillis - Math.floor(ttlMillis / 5)
    }

    // one round: win the key, then keep the lease alive until it is lost
    const round = Effect.gen(function*() {
      const granted = yield* store.grantLease(Duration.millis(ttl))
      lease = granted.id
      const sentAt = yield* Clock.currentTimeMillis
      const won = yield* store.transact({
        when: [{ key: options.key, version: 0 }],
        then: [{ _tag: "Put", key: options.key, value: options.id, lease: granted.id }]
      })
      if (!won) {
        lease = undefined
        return yield* store.revoke(granted.id)
      }
      trust(sentAt, granted.ttlMillis)
      yield* Effect.logInfo(`${options.id} leads ${options.key}`)
      for (;;) {
        yield* Effect.sleep(Duration.millis(Math.max(1, Math.floor(granted.ttlMillis / 3))))
        const sent = yield* Clock.currentTimeMillis
        if (!(yield* store.keepAlive(granted.id))) break
        trust(sent, granted.ttlMillis)
      }
      trustedUntil = 0
      lease = undefined
      yield* Effect.logWarning(`${options.id} lost the lead of ${options.key}: its lease expired`)
    })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        trustedUntil = 0
        return lease === undefined ? Effect.void : Effect.ignore(store.revoke(lease))
      })
    )
    yield* Effect.forkScoped(Effect.forever(
      round.pipe(
        Effect.catch((error) => Effect.logDebug(`${options.id} could not campaign for ${options.key}`, error)),
        Effect.andThen(Effect.sleep(retry))
      )
    ))
    return {
      leading: Effect.map(Clock.currentTimeMillis, (now) => now < trustedUntil),
      leader: Effect.map(store.get(options.key), (entry) => entry?.value)
    }
  })
