import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import { Actor, ActorRegistry } from "../src/index.ts"

type Message =
  | { readonly _tag: "Get"; readonly reply: Actor.Reply<string> }
  | { readonly _tag: "Slow"; readonly reply: Actor.Reply<string> }

/** Counts starts and completed drains so the tests can see every actor's whole life. */
const registry = (started: Ref.Ref<number>, stopped: Ref.Ref<number>) =>
  ActorRegistry.make<string, Message, never>("partitions", (key) =>
    Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Ref.update(stopped, (n) => n + 1))
      return yield* Actor.make<string, Message, never>({
        name: key,
        init: Effect.as(Ref.update(started, (n) => n + 1), key),
        handle: (state, message) =>
          message._tag === "Get"
            ? Deferred.succeed(message.reply, state)
            : Effect.sleep("10 millis").pipe(Effect.andThen(Deferred.succeed(message.reply, state)))
      })
    }))

const counters = Effect.all({ started: Ref.make(0), stopped: Ref.make(0) })

describe("ActorRegistry", () => {
  it.effect("thousands of actors start on first use and all drain when the registry closes", () =>
    Effect.gen(function*() {
      const { started, stopped } = yield* counters
      const scope = yield* Scope.make()
      const actors = yield* registry(started, stopped).pipe(Scope.provide(scope))
      const keys = Array.from({ length: 5_000 }, (_, i) => `queue-${i}`)
      const answers = yield* Effect.forEach(keys, (key) =>
        Effect.flatMap(actors.get(key), (actor) => actor.ask<string>((reply) => ({ _tag: "Get", reply }))))
      assert.deepStrictEqual(answers, keys)
      assert.strictEqual(yield* actors.size, 5_000)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Ref.get(started), 5_000)
      assert.strictEqual(yield* Ref.get(stopped), 5_000)
      assert.strictEqual(yield* actors.size, 0)
      assert.strictEqual((yield* Effect.flip(actors.get("queue-0")))._tag, "Draining")
    }))

  it.effect("concurrent first uses of one key share one actor", () =>
    Effect.gen(function*() {
      const { started, stopped } = yield* counters
      const actors = yield* registry(started, stopped)
      const refs = yield* Effect.all(Array.from({ length: 10 }, () => actors.get("q")), { concurrency: "unbounded" })
      assert.isTrue(refs.every((ref) => ref === refs[0]))
      yield* Effect.forEach(refs, (ref) => ref.ask<string>((reply) => ({ _tag: "Get", reply })))
      assert.strictEqual(yield* Ref.get(started), 1)
    }))

  it.effect("stopping a key drains its actor, and the next use starts a fresh one", () =>
    Effect.gen(function*() {
      const { started, stopped } = yield* counters
      const actors = yield* registry(started, stopped)
      const first = yield* actors.get("q")
      const inFlight = yield* Effect.forkChild(first.ask<string>((reply) => ({ _tag: "Slow", reply })))
      yield* Effect.yieldNow
      const stopping = yield* Effect.forkChild(actors.stop("q"))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(stopping)
      assert.strictEqual(yield* Fiber.join(inFlight), "q", "in-flight work finished during the drain")
      assert.isFalse(yield* actors.has("q"))
      assert.strictEqual(yield* Ref.get(stopped), 1)
      const second = yield* actors.get("q")
      assert.notStrictEqual(second, first)
      assert.strictEqual(yield* second.ask<string>((reply) => ({ _tag: "Get", reply })), "q")
      assert.strictEqual(yield* Ref.get(started), 2)
    }))
})
