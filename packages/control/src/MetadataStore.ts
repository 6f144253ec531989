/**
 * The control plane's key-value store: versioned keys, leases that delete their keys when they
 * expire, compare-and-set transactions, and watches by prefix. Strait keeps its cluster metadata
 * here (topics, groups, access settings, node registrations, queue owners and fencing epochs).
 *
 * **Details**
 *
 * Two Layers implement it with the same meaning: `EmbeddedStore` (one process, durable in a data
 * directory: the default of `strait dev` and the simulator's store) and `EtcdStore` (an etcd v3
 * cluster). Everything above this module (`Catalog`, `PartitionLeases`) is written once against it.
 *
 * **Gotchas**
 *
 * - A key put with a lease is ephemeral: it is deleted when the lease expires or is revoked, and the
 *   embedded store does not write it to disk (after a restart every lease has expired anyway).
 * - A watch reports changes made after it starts; read the current state after starting the watch
 *   so that no change falls between the two (the changes may then repeat some of what was read).
 *
 * @since 0.1.0
 */
import { Context, Data, type Duration, type Effect, type Scope, type Stream } from "effect"

/**
 * One key as the store holds it. `version` counts the puts since the key was created (1 for a new
 * key); `modRevision` is the store-wide revision of its last change.
 *
 * @since 0.1.0
 */
export interface Entry {
  readonly key: string
  readonly value: string
  readonly version: number
  readonly modRevision: number
  readonly lease?: LeaseId
}

/**
 * A lease's id, as the store gave it.
 *
 * @since 0.1.0
 */
export type LeaseId = string

/**
 * A condition of a transaction, compared for equality: a key's version (0 = the key is absent), its
 * value, or its last modification's revision.
 *
 * @since 0.1.0
 */
export type Compare =
  | { readonly key: string; readonly version: number }
  | { readonly key: string; readonly value: string }
  | { readonly key: string; readonly modRevision: number }

/**
 * A change a transaction makes.
 *
 * @since 0.1.0
 */
export type Operation =
  | { readonly _tag: "Put"; readonly key: string; readonly value: string; readonly lease?: LeaseId }
  | { readonly _tag: "Delete"; readonly key: string }

/**
 * A change a watch reports.
 *
 * @since 0.1.0
 */
export interface Change {
  readonly type: "put" | "delete"
  readonly key: string
  /** The new value of a put. */
  readonly value?: string
  readonly modRevision: number
}

/**
 * The store could not be reached or did not answer; the operation may or may not have happened.
 *
 * @since 0.1.0
 */
export class MetadataUnavailable extends Data.TaggedError("MetadataUnavailable")<{ readonly reason: string }> {
  override get message() {
    return `the metadata store is unavailable: ${this.reason}`
  }
}

/**
 * The control plane's key-value store.
 *
 * @since 0.1.0
 */
export class MetadataStore extends Context.Service<MetadataStore, {
  /** Where the store is, for messages: a directory or etcd endpoints. */
  readonly describe: string
  readonly get: (key: string) => Effect.Effect<Entry | undefined, MetadataUnavailable>
  /** Every key under `prefix`, sorted by key, and the revision this view is at. */
  readonly list: (prefix: string) => Effect.Effect<{ readonly entries: ReadonlyArray<Entry>; readonly revision: number }, MetadataUnavailable>
  readonly put: (key: string, value: string, options?: { readonly lease?: LeaseId }) => Effect.Effect<void, MetadataUnavailable>
  readonly delete: (key: string) => Effect.Effect<void, MetadataUnavailable>
  /**
   * Applies `then` if every condition of `when` holds, else `otherwise`, atomically; true when the
   * conditions held.
   */
  readonly transact: (transaction: {
    readonly when: ReadonlyArray<Compare>
    readonly then: ReadonlyArray<Operation>
    readonly otherwise?: ReadonlyArray<Operation>
  }) => Effect.Effect<boolean, MetadataUnavailable>
  /** A new lease that lives `ttl` (rounded up to whole seconds by etcd) unless kept alive. */
  readonly grantLease: (ttl: Duration.Input) => Effect.Effect<{ readonly id: LeaseId; readonly ttlMillis: number }, MetadataUnavailable>
  /** Extends a lease by its ttl; false when it has already expired (its keys are gone). */
  readonly keepAlive: (lease: LeaseId) => Effect.Effect<boolean, MetadataUnavailable>
  /** Ends a lease now, deleting its keys; a lease already gone is not an error. */
  readonly revoke: (lease: LeaseId) => Effect.Effect<void, MetadataUnavailable>
  /**
   * Starts watching `prefix`: the stream holds every change made after this effect returns, and
   * fails when the store stops answering. The watch ends with the scope.
   */
  readonly watch: (prefix: string) => Effect.Effect<Stream.Stream<Change, MetadataUnavailable>, MetadataUnavailable, Scope.Scope>
}>()("@strait/control/MetadataStore") {}
