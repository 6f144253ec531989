/**
 * A node's presence in the control plane: keys bound to a lease the node keeps alive, so that they go
 * when the node stops or dies. Proxies register this way (brokers register through their partition
 * leases), and every node publishes its load this way.
 *
 * A standby node (physical pre-elasticity: started, warm, serving nobody) waits for its activation
 * key before it registers; the orchestrator puts the key to bring it into service in well under a
 * second (logical elasticity), and deletes it when it stops the node.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, type Scope, Stream } from "effect"
import * as Catalog from "./Catalog.ts"
import { MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"

/**
 * Keys that live as long as the scope: `put` writes a key under a lease kept alive every third of
 * its ttl; a lease the store lost is replaced by a new one, and every key put so far is put again
 * under it. Closing the scope revokes the lease, deleting the keys.
 *
 * @since 0.1.0
 */
export const leased = (options: { readonly name: string; readonly ttl?: Duration.Input }): Effect.Effect<{
  readonly put: (key: string, value: string) => Effect.Effect<void, MetadataUnavailable>
}, MetadataUnavailable, MetadataStore | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const keys = new Map<string, string>()
    let lease = ""
    const grant = Effect.gen(function*() {
      const granted = yield* store.grantLease(options.ttl ?? Duration.seconds(10))
      lease = granted.id
      for (const [key, value] of keys) yield* store.put(key, value, { lease })
      return granted.ttlMillis
    })
    const ttlMillis = yield* grant
    yield* Effect.addFinalizer(() => Effect.ignore(Effect.suspend(() => store.revoke(lease))))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(
      Effect.sleep(Duration.millis(Math.max(1, Math.floor(ttlMillis / 3)))),
      Effect.flatMap(Effect.suspend(() => store.keepAlive(lease)), (alive) => alive ? Effect.void : Effect.asVoid(grant)).pipe(
        Effect.catch((error) => Effect.logWarning(`${options.name} could not keep its lease alive`, error))
      )
    )))
    return {
      put: (key, value) =>
        Effect.suspend(() => {
          keys.set(key, value)
          return store.put(key, value, { lease })
        })
    }
  })

/**
 * Registers the node for as long as the scope lives.
 *
 * @since 0.1.0
 */
export const register = (options: {
  readonly kind: "proxy"
  readonly id: string
  readonly address: string
  readonly ttl?: Duration.Input
}): Effect.Effect<void, MetadataUnavailable, MetadataStore | Scope.Scope> =>
  Effect.gen(function*() {
    const keys = yield* leased({ name: `${options.kind} ${options.id}`, ...(options.ttl === undefined ? {} : { ttl: options.ttl }) })
    yield* keys.put(Catalog.keys.proxy(options.id), Catalog.encode({ id: options.id, address: options.address }))
  })

/**
 * Waits until `activate/<kind>/<id>` exists (at once when it does already).
 *
 * @since 0.1.0
 */
export const awaitActivation = (kind: string, id: string): Effect.Effect<void, never, MetadataStore> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const key = Catalog.keys.activation(kind, id)
    // the watch starts before the read, so a put between the two is not missed
    const once = Effect.scoped(Effect.gen(function*() {
      const changes = yield* store.watch(key)
      if ((yield* store.get(key)) !== undefined) return true
      const put = yield* Stream.runHead(Stream.filter(changes, (change) => change.type === "put" && change.key === key))
      return Option.isSome(put)
    })).pipe(
      Effect.catch((error) => Effect.as(Effect.andThen(Effect.logDebug(`${kind} ${id} could not watch for its activation`, error), Effect.sleep(Duration.seconds(1))), false))
    )
    yield* Effect.repeat(once, { until: (activated) => activated })
  })

/**
 * Brings a standby node into service.
 *
 * @since 0.1.0
 */
export const activate = (kind: string, id: string): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  Effect.flatMap(MetadataStore, (store) => store.put(Catalog.keys.activation(kind, id), "1"))

/**
 * Forgets a node's activation (when it is stopped), so that a node started again under the id waits.
 *
 * @since 0.1.0
 */
export const deactivate = (kind: string, id: string): Effect.Effect<void, MetadataUnavailable, MetadataStore> =>
  Effect.flatMap(MetadataStore, (store) => store.delete(Catalog.keys.activation(kind, id)))
