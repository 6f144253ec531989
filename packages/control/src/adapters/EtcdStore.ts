/**
 * The metadata store on an etcd v3 cluster, through the `etcd3` client: keys, leases, transactions
 * and watches map one to one onto etcd's own.
 *
 * **Details**
 *
 * Every key lives under `prefix` (default `/strait/`), so one etcd can hold several clusters. Every
 * call has a deadline (`callTimeout`, default 5 s); a call that fails or times out is
 * `MetadataUnavailable`. Lease ttls are whole seconds, rounded up; etcd keeps a lease at least its
 * minimum ttl (about 2 s with default settings) whatever is asked.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Layer, Queue, Stream } from "effect"
import { Etcd3, type IKeyValue, type Lease, type Namespace } from "etcd3"
import { type Change, type Compare, type Entry, MetadataStore, MetadataUnavailable, type Operation } from "../MetadataStore.ts"

/**
 * Where the etcd cluster is.
 *
 * @since 0.1.0
 */
export interface EtcdOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  readonly endpoints: ReadonlyArray<string>
  /** The key prefix of this Strait cluster (default `/strait/`). */
  readonly prefix?: string
  readonly callTimeout?: Duration.Input
}

const attempt = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (error) => new MetadataUnavailable({ reason: `${what}: ${error instanceof Error ? error.message : String(error)}` }) })

const entryOf = (kv: IKeyValue): Entry => ({
  key: kv.key.toString(),
  value: kv.value.toString(),
  version: Number(kv.version),
  modRevision: Number(kv.mod_revision),
  ...(kv.lease === "0" || kv.lease === undefined ? {} : { lease: String(kv.lease) })
})

/**
 * A metadata store on etcd; the client closes with the scope.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: EtcdOptions) {
  const timeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(options.callTimeout ?? Duration.seconds(5)))
  const root = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new Etcd3({
        hosts: [...options.endpoints],
        dialTimeout: timeoutMillis,
        defaultCallOptions: () => ({ deadline: Date.now() + timeoutMillis })
      })
    ),
    (client) => Effect.sync(() => client.close())
  )
  const client: Namespace = root.namespace(options.prefix ?? "/strait/")
  const leases = new Map<string, Lease>()

  const compareOf = (compare: Compare): [string, "Version" | "Value" | "Mod", "==", string | number] =>
    "version" in compare
      ? [compare.key, "Version", "==", compare.version] as const
      : "value" in compare
      ? [compare.key, "Value", "==", compare.value] as const
      : [compare.key, "Mod", "==", compare.modRevision] as const
  const operationOf = (operation: Operation) =>
    operation._tag === "Delete"
      ? client.delete().key(operation.key)
      : operation.lease === undefined
      ? client.put(operation.key).value(operation.value)
      : client.put(operation.key).value(operation.value).lease(operation.lease)

  return MetadataStore.of({
    describe: options.endpoints.join(","),
    get: (key) =>
      Effect.map(attempt(`get ${key}`, () => client.get(key).exec()), (response) => {
        const kv = response.kvs[0]
        // a single-key read comes back with the namespace still on its key
        return kv === undefined ? undefined : { ...entryOf(kv), key }
      }),
    list: (prefix) =>
      Effect.map(attempt(`list ${prefix}`, () => client.getAll().prefix(prefix).sort("Key", "Ascend").exec()), (response) => ({
        entries: response.kvs.map(entryOf),
        revision: Number(response.header.revision)
      })),
    put: (key, value, putOptions) =>
      Effect.asVoid(attempt(`put ${key}`, () => {
        const put = client.put(key).value(value)
        return (putOptions?.lease === undefined ? put : put.lease(putOptions.lease)).exec()
      })),
    delete: (key) => Effect.asVoid(attempt(`delete ${key}`, () => client.delete().key(key).exec())),
    transact: ({ otherwise = [], then, when }) =>
      Effect.map(
        attempt("transaction", () => {
          const [first, ...rest] = when
          const [key, target, comparison, value] = first === undefined ? ["\u0000", "Version", ">", -1] as const : compareOf(first)
          const builder = client.if(key, target, comparison, value)
          for (const compare of rest) builder.and(...compareOf(compare))
          return builder.then(...then.map(operationOf)).else(...otherwise.map(operationOf)).commit()
        }),
        (response) => response.succeeded
      ),
    grantLease: (ttl) =>
      Effect.gen(function*() {
        const seconds = Math.max(1, Math.ceil(Duration.toMillis(Duration.fromInputUnsafe(ttl)) / 1000))
        const lease = client.lease(seconds, { autoKeepAlive: false })
        const id = yield* attempt("lease grant", () => lease.grant())
        leases.set(id, lease)
        return { id, ttlMillis: seconds * 1000 }
      }),
    keepAlive: (id) =>
      Effect.suspend(() => {
        const lease = leases.get(id)
        if (lease === undefined) return Effect.succeed(false)
        return Effect.map(attempt(`keepalive ${id}`, () => lease.keepaliveOnce()), (response) => {
          const alive = Number(response.TTL) > 0
          if (!alive) leases.delete(id)
          return alive
        })
      }),
    revoke: (id) =>
      Effect.suspend(() => {
        const lease = leases.get(id)
        leases.delete(id)
        if (lease === undefined) return Effect.void
        return attempt(`revoke ${id}`, () => lease.revoke()).pipe(
          // a lease that has already expired is revoked as far as anyone can tell
          Effect.catch((error) => /not found/i.test(error.reason) ? Effect.void : Effect.fail(error))
        )
      }),
    watch: (prefix) =>
      Effect.gen(function*() {
        const queue = yield* Queue.unbounded<Change, MetadataUnavailable | Cause.Done>()
        const watcher = yield* Effect.acquireRelease(
          attempt(`watch ${prefix}`, () => client.watch().prefix(prefix).create()),
          (watcher) => Effect.promise(() => watcher.cancel().catch(() => undefined))
        )
        watcher.on("put", (kv) => Queue.offerUnsafe(queue, { type: "put", key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision) }))
        watcher.on("delete", (kv) => Queue.offerUnsafe(queue, { type: "delete", key: kv.key.toString(), modRevision: Number(kv.mod_revision) }))
        watcher.on("error", (error) => Queue.failCauseUnsafe(queue, Cause.fail(new MetadataUnavailable({ reason: `watch ${prefix}: ${error.message}` }))))
        return Stream.fromQueue(queue)
      })
  })
})

/**
 * The etcd store as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (options: EtcdOptions): Layer.Layer<MetadataStore> => Layer.effect(MetadataStore, make(options))
