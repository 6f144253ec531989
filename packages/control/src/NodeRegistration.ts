/**
 * A node's presence in the control plane: a key under `nodes/<kind>/<id>` bound to a lease the node
 * keeps alive, so that the key goes when the node stops or dies. Proxies register this way (brokers
 * register through their partition leases).
 *
 * @since 0.1.0
 */
import { Duration, Effect, type Scope } from "effect"
import * as Catalog from "./Catalog.ts"
import { MetadataStore, type MetadataUnavailable } from "./MetadataStore.ts"

/**
 * Registers the node for as long as the scope lives; a lease the store lost is replaced by a new one.
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
    const store = yield* MetadataStore
    const key = Catalog.keys.proxy(options.id)
    const value = Catalog.encode({ id: options.id, address: options.address })
    let lease = ""
    const grant = Effect.gen(function*() {
      const granted = yield* store.grantLease(options.ttl ?? Duration.seconds(10))
      yield* store.put(key, value, { lease: granted.id })
      lease = granted.id
      return granted.ttlMillis
    })
    const ttlMillis = yield* grant
    yield* Effect.addFinalizer(() => Effect.ignore(Effect.suspend(() => store.revoke(lease))))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(
      Effect.sleep(Duration.millis(Math.max(1, Math.floor(ttlMillis / 3)))),
      Effect.flatMap(Effect.suspend(() => store.keepAlive(lease)), (alive) => alive ? Effect.void : Effect.asVoid(grant)).pipe(
        Effect.catch((error) => Effect.logWarning(`${options.kind} ${options.id} could not keep its registration alive`, error))
      )
    )))
  })
