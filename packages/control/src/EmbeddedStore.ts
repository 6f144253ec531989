/**
 * The metadata store in one process: the default of `strait dev`, of a single node, and of the
 * simulator. Keys without a lease are written to `<directory>/metadata.json` (atomically, on every
 * change); keys with a lease live in memory only and go when their lease ends.
 *
 * **Details**
 *
 * Time is the `Clock` (a `TestClock` or the simulator's clock moves leases forward), so lease expiry
 * is deterministic. Leases expire when an operation notices they are past due, and a sweep every
 * 100 ms tells watchers about the keys that went with them.
 *
 * @since 0.1.0
 */
import { Disk } from "@strait/storage"
import { type Cause, Clock, Duration, Effect, Layer, Queue, Schema, Semaphore, Stream } from "effect"
import { type Change, type Compare, type Entry, type LeaseId, MetadataStore, MetadataUnavailable, type Operation } from "./MetadataStore.ts"

const Persisted = Schema.Struct({
  revision: Schema.Number,
  entries: Schema.Array(Schema.Struct({ key: Schema.String, value: Schema.String, version: Schema.Number, modRevision: Schema.Number }))
})
const decodePersisted = Schema.decodeUnknownEffect(Schema.fromJsonString(Persisted))

interface Lease {
  readonly ttlMillis: number
  expiresAt: number
  readonly keys: Set<string>
}

interface Watcher {
  readonly prefix: string
  readonly queue: Queue.Queue<Change, MetadataUnavailable | Cause.Done>
}

const unavailable = (error: { readonly _tag: string; readonly path?: string }) =>
  new MetadataUnavailable({ reason: `${error._tag}${error.path === undefined ? "" : ` (${error.path})`}` })

// kept in memory; durable in `directory` (a directory of its own) when a disk is given
const build = Effect.fnUntraced(function*(disk: Disk.Disk["Service"] | undefined, directory: string | undefined) {
  const file = directory === undefined ? undefined : `${directory}/metadata.json`
  const entries = new Map<string, Entry>()
  let revision = 0
  if (disk !== undefined && directory !== undefined && file !== undefined) {
    yield* Disk.makeDurableDirectory(directory).pipe(Effect.provideService(Disk.Disk, disk), Effect.mapError(unavailable))
    const bytes = yield* Disk.readSmallFile(file).pipe(Effect.provideService(Disk.Disk, disk), Effect.mapError(unavailable))
    if (bytes !== undefined) {
      const persisted = yield* decodePersisted(new TextDecoder().decode(bytes)).pipe(
        Effect.mapError((error) => new MetadataUnavailable({ reason: `${file} is not a metadata file: ${error.message}` }))
      )
      revision = persisted.revision
      for (const entry of persisted.entries) entries.set(entry.key, entry)
    }
  }
  const leases = new Map<LeaseId, Lease>()
  let nextLease = 1
  const watchers = new Set<Watcher>()
  const lock = Semaphore.makeUnsafe(1)

  const notify = (change: Change) => {
    for (const watcher of watchers) if (change.key.startsWith(watcher.prefix)) Queue.offerUnsafe(watcher.queue, change)
  }
  const remove = (key: string) => {
    const entry = entries.get(key)
    if (entry === undefined) return false
    entries.delete(key)
    if (entry.lease !== undefined) leases.get(entry.lease)?.keys.delete(key)
    notify({ type: "delete", key, modRevision: revision })
    return entry.lease === undefined
  }
  const set = (key: string, value: string, lease: LeaseId | undefined) => {
    const previous = entries.get(key)
    if (previous?.lease !== undefined && previous.lease !== lease) leases.get(previous.lease)?.keys.delete(key)
    entries.set(key, { key, value, version: (previous?.version ?? 0) + 1, modRevision: revision, ...(lease === undefined ? {} : { lease }) })
    if (lease !== undefined) leases.get(lease)!.keys.add(key)
    notify({ type: "put", key, value, modRevision: revision })
    // the file changes when a durable key is written, or when a durable key became ephemeral
    return lease === undefined || (previous !== undefined && previous.lease === undefined)
  }
  // the leases past due end, with their keys; true when a durable key changed (never: leased keys are not durable)
  const expire = (now: number) => {
    let first = true
    for (const [id, lease] of leases) {
      if (lease.expiresAt > now) continue
      if (first) revision++
      first = false
      leases.delete(id)
      for (const key of [...lease.keys]) remove(key)
    }
  }

  const persist = Effect.suspend(() => {
    if (disk === undefined || file === undefined) return Effect.void
    const durable = [...entries.values()].filter((entry) => entry.lease === undefined)
      .map(({ key, modRevision, value, version }) => ({ key, value, version, modRevision }))
    return Disk.writeFileAtomically(file, new TextEncoder().encode(JSON.stringify({ revision, entries: durable }))).pipe(
      Effect.provideService(Disk.Disk, disk),
      Effect.mapError(unavailable)
    )
  })

  // runs `f` alone, after expiring what is due; writes the file when `f` says a durable key changed
  const atomically = <A>(f: (now: number) => { readonly result: A; readonly durable: boolean }) =>
    lock.withPermits(1)(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      expire(now)
      const { durable, result } = f(now)
      if (durable) yield* persist
      return result
    }))

  const holds = (compare: Compare) => {
    const entry = entries.get(compare.key)
    if ("version" in compare) return (entry?.version ?? 0) === compare.version
    if ("value" in compare) return entry !== undefined && entry.value === compare.value
    return (entry?.modRevision ?? 0) === compare.modRevision
  }
  const apply = (operations: ReadonlyArray<Operation>) => {
    if (operations.length === 0) return false
    revision++
    let durable = false
    for (const operation of operations) {
      if (operation._tag === "Put") durable = set(operation.key, operation.value, operation.lease) || durable
      else durable = remove(operation.key) || durable
    }
    return durable
  }
  const unknownLease = (operations: ReadonlyArray<Operation>) =>
    operations.find((operation) => operation._tag === "Put" && operation.lease !== undefined && !leases.has(operation.lease))

  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.millis(100)), atomically(() => ({ result: undefined, durable: false })))))

  return MetadataStore.of({
    describe: directory ?? "memory",
    get: (key) => atomically(() => ({ result: entries.get(key), durable: false })),
    list: (prefix) =>
      atomically(() => ({
        result: {
          entries: [...entries.values()].filter((entry) => entry.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
          revision
        },
        durable: false
      })),
    put: (key, value, options) =>
      Effect.flatMap(
        atomically(() => {
          const operation: Operation = { _tag: "Put", key, value, ...(options?.lease === undefined ? {} : { lease: options.lease }) }
          if (unknownLease([operation]) !== undefined) return { result: false, durable: false }
          return { result: true, durable: apply([operation]) }
        }),
        (done) => done ? Effect.void : Effect.fail(new MetadataUnavailable({ reason: `lease ${options?.lease} has expired` }))
      ),
    delete: (key) => atomically(() => ({ result: undefined, durable: entries.has(key) ? apply([{ _tag: "Delete", key }]) : false })),
    transact: ({ otherwise = [], then, when }) =>
      Effect.flatMap(
        atomically((): { readonly result: { held: boolean; missing: Operation | undefined }; readonly durable: boolean } => {
          const held = when.every(holds)
          const operations = held ? then : otherwise
          const missing = unknownLease(operations)
          if (missing !== undefined) return { result: { held, missing }, durable: false }
          return { result: { held, missing: undefined }, durable: apply(operations) }
        }),
        ({ held, missing }) =>
          missing === undefined ? Effect.succeed(held) : Effect.fail(new MetadataUnavailable({ reason: `lease ${(missing as { lease: string }).lease} has expired` }))
      ),
    grantLease: (ttl) =>
      atomically((now) => {
        const id = String(nextLease++)
        const ttlMillis = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(ttl)))
        leases.set(id, { ttlMillis, expiresAt: now + ttlMillis, keys: new Set() })
        return { result: { id, ttlMillis }, durable: false }
      }),
    keepAlive: (id) =>
      atomically((now) => {
        const lease = leases.get(id)
        if (lease !== undefined) lease.expiresAt = now + lease.ttlMillis
        return { result: lease !== undefined, durable: false }
      }),
    revoke: (id) =>
      atomically(() => {
        const lease = leases.get(id)
        if (lease === undefined) return { result: undefined, durable: false }
        revision++
        leases.delete(id)
        for (const key of [...lease.keys]) remove(key)
        return { result: undefined, durable: false }
      }),
    watch: (prefix) =>
      Effect.gen(function*() {
        const queue = yield* Queue.unbounded<Change, MetadataUnavailable | Cause.Done>()
        const watcher: Watcher = { prefix, queue }
        yield* Effect.acquireRelease(Effect.sync(() => watchers.add(watcher)), () => Effect.sync(() => watchers.delete(watcher)))
        return Stream.fromQueue(queue)
      })
  })
})

/**
 * The embedded store, durable in `directory`.
 *
 * @since 0.1.0
 */
export const make = (directory: string) => Effect.gen(function*() {
  return yield* build(yield* Disk.Disk, directory)
})

/**
 * The embedded store, durable in `directory`.
 *
 * @since 0.1.0
 */
export const layer = (directory: string): Layer.Layer<MetadataStore, MetadataUnavailable, Disk.Disk> =>
  Layer.effect(MetadataStore, make(directory))

/**
 * The embedded store in memory only (tests; the simulator's runs that need no restart of it).
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<MetadataStore> = Layer.effect(MetadataStore, Effect.orDie(build(undefined, undefined)))
