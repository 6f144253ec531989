import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SimDisk } from "@strait/storage"
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { EmbeddedStore, EtcdStore, MetadataStore } from "../src/index.ts"
import { type RunningEtcd, startEtcd } from "./etcd.ts"
import { metadataStoreContract } from "./MetadataStore.contract.ts"

metadataStoreContract("embedded", () => EmbeddedStore.layerMemory)

let etcd: RunningEtcd | undefined
let cluster = 0
beforeAll(async () => {
  etcd = await startEtcd()
}, 60_000)
afterAll(() => etcd?.stop())
// each specification has a cluster prefix of its own in the one etcd
metadataStoreContract("etcd", () => EtcdStore.layer({ endpoints: [etcd!.endpoint], prefix: `/spec-${++cluster}/` }))

describe("EmbeddedStore", () => {
  it.effect("a lease that is not kept alive expires with its keys, and watchers see them go", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore.MetadataStore
      const lease = yield* store.grantLease("10 seconds")
      yield* store.put("nodes/broker/a", "alive", { lease: lease.id })
      const watch = yield* store.watch("nodes/")
      yield* TestClock.adjust("6 seconds")
      expect(yield* store.keepAlive(lease.id)).toBe(true)
      // kept alive at 6 s: still there at 12 s
      yield* TestClock.adjust("6 seconds")
      expect((yield* store.get("nodes/broker/a"))?.value).toBe("alive")
      yield* TestClock.adjust("5 seconds")
      const [gone] = yield* Stream.runCollect(Stream.take(watch, 1))
      expect(gone).toMatchObject({ type: "delete", key: "nodes/broker/a" })
      expect(yield* store.get("nodes/broker/a")).toBeUndefined()
      expect(yield* store.keepAlive(lease.id)).toBe(false)
    }).pipe(Effect.provide(EmbeddedStore.layerMemory)))

  it.effect("durable keys survive a restart; keys with a lease do not", () =>
    Effect.gen(function*() {
      const disk = yield* Layer.build(SimDisk.layer())
      const open = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(Layer.fresh(EmbeddedStore.layer("/data/metadata")), scope).pipe(Effect.provideContext(disk))
        return { store: Context.get(context, MetadataStore.MetadataStore), close: Scope.close(scope, Exit.void) }
      })
      const first = yield* open
      const lease = yield* first.store.grantLease("10 seconds")
      yield* first.store.put("topics/orders", "{\"queues\":8}")
      yield* first.store.put("topics/orders", "{\"queues\":16}")
      yield* first.store.put("nodes/broker/a", "alive", { lease: lease.id })
      const before = (yield* first.store.get("topics/orders"))!
      yield* first.close
      const second = yield* open
      expect(yield* second.store.get("topics/orders")).toEqual(before)
      expect(yield* second.store.get("nodes/broker/a")).toBeUndefined()
      // revisions go on from where they were
      yield* second.store.put("topics/audit", "{}")
      expect((yield* second.store.get("topics/audit"))!.modRevision).toBeGreaterThan(before.modRevision)
      yield* second.close
    }))
})
