import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Ref, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Actor } from "../src/index.ts"

type CounterMessage =
  | { readonly _tag: "Add"; readonly amount: number; readonly reply?: Actor.Reply<number> }
  | { readonly _tag: "Slow"; readonly millis: number; readonly reply: Actor.Reply<number> }
  | { readonly _tag: "Crash"; readonly reply: Actor.Reply<number> }
  | { readonly _tag: "Forget"; readonly reply: Actor.Reply<number> }
  | { readonly _tag: "Wait"; readonly gate: Deferred.Deferred<void>; readonly reply?: Actor.Reply<number> }

/** A counter actor whose state is reloaded from `persisted` on every incarnation. */
const counter = (options: {
  readonly persisted: Ref.Ref<number>
  readonly inits: Ref.Ref<number>
  readonly mailboxCapacity?: number
  readonly drainTimeout?: string
  readonly restart?: Schedule.Schedule<unknown, Actor.ActorCrashed>
}) =>
  Actor.make<Ref.Ref<number>, CounterMessage, never>({
    name: "counter",
    ...(options.mailboxCapacity === undefined ? {} : { mailboxCapacity: options.mailboxCapacity }),
    ...(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout as `${number} millis` }),
    ...(options.restart === undefined ? {} : { restart: options.restart }),
    init: Effect.andThen(Ref.update(options.inits, (n) => n + 1), Ref.get(options.persisted).pipe(Effect.flatMap(Ref.make))),
    handle: (state, message) => {
      const add = (amount: number) =>
        Ref.updateAndGet(state, (n) => n + amount).pipe(Effect.tap((n) => Ref.set(options.persisted, n)))
      const reply = (value: Effect.Effect<number>) =>
        Effect.flatMap(value, (n) => message.reply ? Deferred.succeed(message.reply, n) : Effect.void)
      switch (message._tag) {
        case "Add":
          return reply(add(message.amount)).pipe(Effect.asVoid)
        case "Slow":
          return Effect.sleep(`${message.millis} millis`).pipe(Effect.andThen(reply(add(1))), Effect.asVoid)
        case "Crash":
          return Effect.die("boom")
        case "Forget":
          return Effect.void
        case "Wait":
          return Deferred.await(message.gate).pipe(Effect.andThen(reply(add(0))), Effect.asVoid)
      }
    }
  })

const refs = Effect.all({ persisted: Ref.make(0), inits: Ref.make(0) })

describe("Actor", () => {
  it.effect("an ask is answered and messages are handled in arrival order", () =>
    Effect.gen(function*() {
      const actor = yield* counter(yield* refs)
      yield* actor.tell({ _tag: "Add", amount: 1 })
      yield* actor.tell({ _tag: "Add", amount: 10 })
      const total = yield* actor.ask<number>((reply) => ({ _tag: "Add", amount: 100, reply }))
      assert.strictEqual(total, 111)
    }))

  it.effect("a stop lets in-flight and queued work finish before its deadline", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const actor = yield* counter({ ...(yield* refs), drainTimeout: "1000 millis" }).pipe(Scope.provide(scope))
      const asks = yield* Effect.forEach([1, 2, 3, 4, 5], () =>
        Effect.forkChild(actor.ask<number>((reply) => ({ _tag: "Slow", millis: 10, reply }))))
      yield* Effect.yieldNow
      const stopping = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(stopping)
      const results = yield* Effect.forEach(asks, Fiber.join)
      assert.deepStrictEqual(results, [1, 2, 3, 4, 5])
    }))

  it.effect("work left at the drain deadline fails with Draining and no caller hangs", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const actor = yield* counter({ ...(yield* refs), drainTimeout: "25 millis" }).pipe(Scope.provide(scope))
      const asks = yield* Effect.forEach([1, 2, 3, 4, 5], () =>
        Effect.forkChild(actor.ask<number>((reply) => ({ _tag: "Slow", millis: 10, reply }))))
      yield* Effect.yieldNow
      const stopping = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(stopping)
      const outcomes = yield* Effect.forEach(asks, (ask) =>
        Fiber.join(ask).pipe(Effect.map(String), Effect.catchTag("Draining", (e) => Effect.succeed(e._tag))))
      // 10 ms each: two finish by the 25 ms deadline, the third is interrupted, two never start
      assert.deepStrictEqual(outcomes, ["1", "2", "Draining", "Draining", "Draining"])
    }))

  it.effect("an actor that has stopped answers every message with Draining", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const actor = yield* counter(yield* refs).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(actor.ask<number>((reply) => ({ _tag: "Add", amount: 1, reply })))
      assert.strictEqual(error._tag, "Draining")
      assert.strictEqual((yield* Effect.flip(actor.tell({ _tag: "Add", amount: 1 })))._tag, "Draining")
    }))

  it.effect("a crash fails that ask with ActorCrashed, restarts with reloaded state, and serves the next ask", () =>
    Effect.gen(function*() {
      const state = yield* refs
      const actor = yield* counter(state)
      yield* actor.ask<number>((reply) => ({ _tag: "Add", amount: 5, reply }))
      const crash = yield* Effect.flip(actor.ask<number>((reply) => ({ _tag: "Crash", reply })))
      assert.strictEqual(crash._tag, "ActorCrashed")
      yield* TestClock.adjust("1 second") // the restart schedule's backoff
      const next = yield* actor.ask<number>((reply) => ({ _tag: "Add", amount: 1, reply }))
      assert.strictEqual(next, 6)
      assert.strictEqual(yield* Ref.get(state.inits), 2)
    }))

  it.effect("an actor that crashes more often than its schedule allows stops and fails what was queued", () =>
    Effect.gen(function*() {
      const state = yield* refs
      const actor = yield* counter({ ...state, restart: Schedule.recurs(1) })
      const gate = yield* Deferred.make<void>()
      yield* actor.tell({ _tag: "Wait", gate })
      const crashes = yield* Effect.forEach([1, 2], () => Effect.forkChild(actor.ask<number>((reply) => ({ _tag: "Crash", reply }))))
      const queued = yield* Effect.forkChild(actor.ask<number>((reply) => ({ _tag: "Add", amount: 1, reply })))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, undefined)
      yield* TestClock.adjust("1 second")
      for (const crash of crashes) assert.strictEqual((yield* Effect.flip(Fiber.join(crash)))._tag, "ActorCrashed")
      assert.strictEqual((yield* Effect.flip(Fiber.join(queued)))._tag, "ActorCrashed")
      const late = yield* Effect.flip(actor.ask<number>((reply) => ({ _tag: "Add", amount: 1, reply })))
      assert.strictEqual(late._tag, "Draining")
    }))

  it.effect("a handler that returns without replying fails the ask instead of leaving it waiting", () =>
    Effect.gen(function*() {
      const actor = yield* counter(yield* refs)
      const error = yield* Effect.flip(actor.ask<number>((reply) => ({ _tag: "Forget", reply })))
      assert.strictEqual(error._tag, "ActorCrashed")
    }))

  it.effect("a full mailbox suspends senders until the actor takes a message", () =>
    Effect.gen(function*() {
      const actor = yield* counter({ ...(yield* refs), mailboxCapacity: 2 })
      const gate = yield* Deferred.make<void>()
      yield* actor.tell({ _tag: "Wait", gate }) // taken by the worker, which now blocks
      yield* Effect.yieldNow
      yield* actor.tell({ _tag: "Add", amount: 1 })
      yield* actor.tell({ _tag: "Add", amount: 1 })
      assert.strictEqual(yield* actor.queued, 2)
      const blocked = yield* Effect.forkChild(actor.tell({ _tag: "Add", amount: 1 }))
      yield* Effect.yieldNow
      assert.isUndefined(blocked.pollUnsafe())
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(blocked)
      const total = yield* actor.ask<number>((reply) => ({ _tag: "Add", amount: 0, reply }))
      assert.strictEqual(total, 3)
    }))
})

describe("Actor.makeBatched", () => {
  type Append = { readonly body: string; readonly reply: Actor.Reply<number> } | { readonly gate: Deferred.Deferred<void>; readonly reply?: undefined }

  const log = (batches: Array<ReadonlyArray<string>>, maxBatch: number) =>
    Actor.makeBatched<{ next: number }, Append, never>({
      name: "log",
      maxBatch,
      init: Effect.sync(() => ({ next: 0 })),
      handleBatch: (state, messages) =>
        Effect.gen(function*() {
          const bodies: Array<string> = []
          for (const message of messages) {
            if ("gate" in message) {
              yield* Deferred.await(message.gate)
              continue
            }
            bodies.push(message.body)
            yield* Deferred.succeed(message.reply, state.next++)
          }
          batches.push(bodies)
        })
    })

  it.effect("every message queued while a batch runs is handled in the next single step", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<string>> = []
      const actor = yield* log(batches, 256)
      const gate = yield* Deferred.make<void>()
      yield* actor.tell({ gate })
      yield* Effect.yieldNow
      const appends = yield* Effect.forEach(["a", "b", "c", "d"], (body) =>
        Effect.forkChild(actor.ask<number>((reply) => ({ body, reply }))))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, undefined)
      const offsets = yield* Effect.forEach(appends, Fiber.join)
      assert.deepStrictEqual(offsets, [0, 1, 2, 3])
      assert.deepStrictEqual(batches, [[], ["a", "b", "c", "d"]])
    }))

  it.effect("a batch never holds more than maxBatch messages", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<string>> = []
      const actor = yield* log(batches, 3)
      const gate = yield* Deferred.make<void>()
      yield* actor.tell({ gate })
      yield* Effect.yieldNow
      const appends = yield* Effect.forEach(["a", "b", "c", "d", "e"], (body) =>
        Effect.forkChild(actor.ask<number>((reply) => ({ body, reply }))))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, undefined)
      yield* Effect.forEach(appends, Fiber.join)
      assert.deepStrictEqual(batches, [[], ["a", "b", "c"], ["d", "e"]])
    }))

  it.effect("with repliesOutliveStep a step may hand its replies to another fiber, which answers them later", () =>
    Effect.gen(function*() {
      const handedOff: Array<Actor.Reply<number>> = []
      const actor = yield* Actor.makeBatched<void, { readonly body: string; readonly reply: Actor.Reply<number> }, never>({
        name: "deferring",
        repliesOutliveStep: true,
        init: Effect.void,
        handleBatch: (_, messages) => Effect.sync(() => messages.forEach((m) => handedOff.push(m.reply)))
      })
      const ask = yield* Effect.forkChild(actor.ask<number>((reply) => ({ body: "x", reply })))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.isUndefined(ask.pollUnsafe(), "the step returned, yet the ask still waits")
      yield* Deferred.succeed(handedOff[0]!, 42)
      assert.strictEqual(yield* Fiber.join(ask), 42)
    }))
})
