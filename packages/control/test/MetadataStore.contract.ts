// The rules every MetadataStore Layer keeps, run against each of them.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, type Layer, Stream } from "effect"
import { MetadataStore } from "../src/index.ts"

export const metadataStoreContract = (name: string, layer: () => Layer.Layer<MetadataStore.MetadataStore>) =>
  describe(`MetadataStore: ${name}`, () => {
    const run = <A, E>(body: (store: MetadataStore.MetadataStore["Service"]) => Effect.Effect<A, E, any>) =>
      Effect.gen(function*() {
        return yield* body(yield* MetadataStore.MetadataStore)
      }).pipe(Effect.provide(layer()), Effect.scoped) as Effect.Effect<A, E>

    it.effect("a put is read back with its version counting the puts", () =>
      run((store) =>
        Effect.gen(function*() {
          expect(yield* store.get("topics/a")).toBeUndefined()
          yield* store.put("topics/a", "one")
          yield* store.put("topics/a", "two")
          const entry = yield* store.get("topics/a")
          expect(entry).toMatchObject({ key: "topics/a", value: "two", version: 2 })
          yield* store.delete("topics/a")
          expect(yield* store.get("topics/a")).toBeUndefined()
        })
      ))

    it.effect("a list holds the keys under its prefix only, sorted", () =>
      run((store) =>
        Effect.gen(function*() {
          yield* store.put("topics/b", "2")
          yield* store.put("topics/a", "1")
          yield* store.put("groups/a", "g")
          const { entries } = yield* store.list("topics/")
          expect(entries.map((entry) => [entry.key, entry.value])).toEqual([["topics/a", "1"], ["topics/b", "2"]])
        })
      ))

    it.effect("a transaction creates a key only while it is absent", () =>
      run((store) =>
        Effect.gen(function*() {
          const create = (value: string) => store.transact({ when: [{ key: "owner", version: 0 }], then: [{ _tag: "Put", key: "owner", value }] })
          expect(yield* create("first")).toBe(true)
          expect(yield* create("second")).toBe(false)
          expect((yield* store.get("owner"))?.value).toBe("first")
        })
      ))

    it.effect("a transaction compares values and revisions, and runs its otherwise branch when a comparison fails", () =>
      run((store) =>
        Effect.gen(function*() {
          yield* store.put("epoch", "1")
          const seen = (yield* store.get("epoch"))!
          yield* store.put("epoch", "2")
          // the revision moved on: the stale compare-and-set fails and the otherwise branch writes
          const stale = yield* store.transact({
            when: [{ key: "epoch", modRevision: seen.modRevision }],
            then: [{ _tag: "Put", key: "epoch", value: "stale" }],
            otherwise: [{ _tag: "Put", key: "conflicts", value: "1" }]
          })
          expect(stale).toBe(false)
          expect((yield* store.get("conflicts"))?.value).toBe("1")
          const fresh = yield* store.transact({
            when: [{ key: "epoch", value: "2" }, { key: "conflicts", version: 1 }],
            then: [{ _tag: "Put", key: "epoch", value: "3" }, { _tag: "Delete", key: "conflicts" }]
          })
          expect(fresh).toBe(true)
          expect((yield* store.get("epoch"))?.value).toBe("3")
          expect(yield* store.get("conflicts")).toBeUndefined()
        })
      ))

    it.effect("revoking a lease deletes its keys, and the lease cannot be kept alive or used again", () =>
      run((store) =>
        Effect.gen(function*() {
          const lease = yield* store.grantLease("5 seconds")
          expect(lease.ttlMillis).toBeGreaterThanOrEqual(5000)
          yield* store.put("nodes/broker/a", "alive", { lease: lease.id })
          expect((yield* store.get("nodes/broker/a"))?.lease).toBe(lease.id)
          expect(yield* store.keepAlive(lease.id)).toBe(true)
          yield* store.revoke(lease.id)
          expect(yield* store.get("nodes/broker/a")).toBeUndefined()
          expect(yield* store.keepAlive(lease.id)).toBe(false)
          const reuse = yield* Effect.flip(store.put("nodes/broker/a", "again", { lease: lease.id }))
          expect(reuse._tag).toBe("MetadataUnavailable")
          // revoking twice is not an error
          yield* store.revoke(lease.id)
        })
      ))

    it.effect("a watch reports puts and deletes under its prefix, in order", () =>
      run((store) =>
        Effect.gen(function*() {
          const watch = yield* store.watch("owners/")
          const changes = yield* Stream.runCollect(Stream.take(watch, 3)).pipe(Effect.forkScoped)
          yield* store.put("owners/t/0", "a")
          yield* store.put("groups/g", "ignored")
          yield* store.put("owners/t/0", "b")
          yield* store.delete("owners/t/0")
          const seen = yield* Fiber.join(changes)
          expect(seen.map((change) => [change.type, change.key, change.value])).toEqual([
            ["put", "owners/t/0", "a"],
            ["put", "owners/t/0", "b"],
            ["delete", "owners/t/0", undefined]
          ])
        })
      ))
  })
