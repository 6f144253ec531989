// The broker through seeded crashes on the simulated disk: random sends, receives and partial
// acknowledgements, with the broker killed (a disk crash: unsynced writes lost or torn, every handle
// dead, so its finalizers cannot help) and restarted at random points. Rules checked over the run:
// every send that was answered is delivered at least once; nothing is delivered that was not sent,
// and bodies arrive intact; an acknowledged message is never delivered again, across crashes too.
import { assert, describe, it } from "@effect/vitest"
import { SimDisk } from "@strait/storage"
import { Context, Effect, Exit, Layer, Random, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Broker } from "../src/index.ts"
import { directory, message, text } from "./fixtures.ts"

const scenario = (seed: number) =>
  Effect.gen(function*() {
    const disk = yield* Layer.build(Layer.fresh(SimDisk.layer()))
    const sim = Context.get(disk, SimDisk.SimDisk)
    const open = (scope: Scope.Scope) =>
      Layer.build(Layer.fresh(Broker.Broker.layer({ directory }))).pipe(
        Effect.provideContext(disk),
        Effect.map((context) => Context.get(context, Broker.Broker)),
        Scope.provide(scope)
      )
    let scope = yield* Scope.make()
    let broker = yield* open(scope)
    yield* broker.createTopic({ name: "t", kind: "NORMAL", queues: 3, flush: "sync" })

    const sent = new Map<string, string>()
    const acked = new Set<string>()
    const delivered = new Set<string>()
    let crashes = 0

    const receive = Effect.gen(function*() {
      const received = yield* broker.pop({ group: "g", topic: "t", maxMessages: 32, invisibleDuration: "10 seconds" })
      for (const r of received) {
        const id = r.message.messageId
        assert.isTrue(sent.has(id), `seed ${seed}: delivered ${id}, which was never sent`)
        assert.strictEqual(text(r.message), sent.get(id), `seed ${seed}: ${id} arrived changed`)
        assert.isFalse(acked.has(id), `seed ${seed}: ${id} was delivered again after its acknowledgement`)
        delivered.add(id)
      }
      return received
    })

    for (let round = 0; round < 10; round++) {
      const sends = yield* Random.nextIntBetween(0, 6)
      for (let i = 0; i < sends; i++) {
        const m = message("t", `${seed}/${round}/${i}`)
        yield* broker.send([m])
        sent.set(m.messageId, text(m))
      }
      for (const r of yield* receive) {
        if (yield* Random.nextBoolean) {
          yield* broker.ack("g", "t", r.receiptHandle)
          acked.add(r.message.messageId)
        }
      }
      // a second of time: acknowledgements reach the disk, windows may end, offsets are committed
      yield* TestClock.adjust(`${yield* Random.nextIntBetween(1, 12)} seconds`)
      if ((yield* Random.nextIntBetween(0, 3)) === 0) {
        yield* sim.crash
        crashes++
        yield* Scope.close(scope, Exit.void)
        scope = yield* Scope.make()
        broker = yield* open(scope)
      }
    }
    // drain: everything answered must come out
    for (let i = 0; i < 20 && [...sent.keys()].some((id) => !delivered.has(id)); i++) {
      for (const r of yield* receive) {
        yield* broker.ack("g", "t", r.receiptHandle)
        acked.add(r.message.messageId)
      }
      yield* TestClock.adjust("11 seconds")
    }
    const lost = [...sent.keys()].filter((id) => !delivered.has(id))
    assert.deepStrictEqual(lost, [], `seed ${seed}: answered sends never delivered`)
    yield* Scope.close(scope, Exit.void)
    return { crashes, sent: sent.size }
  }).pipe(Random.withSeed(seed))

describe("broker through crashes (simulated disk, seeded)", () => {
  it.effect("answered sends are delivered at least once, and acknowledged messages never again", () =>
    Effect.gen(function*() {
      let crashes = 0
      let sent = 0
      for (let seed = 1; seed <= 20; seed++) {
        const result = yield* Effect.scoped(scenario(seed))
        crashes += result.crashes
        sent += result.sent
      }
      assert.isAbove(crashes, 20)
      assert.isAbove(sent, 200)
    }))
})
