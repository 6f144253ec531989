// Actor kit throughput: asks per second through one actor and through 1,000 actors, and the cost per
// message of batch handling next to a plain `Queue` take-loop, all measured in this run.
import { Actor, ActorRegistry, EventLoopScheduler } from "@strait/core"
import { Cause, Deferred, Effect, Queue, type Scope } from "effect"
import { best, emit, table } from "./lib/report.ts"

const ASKS = 200_000
const TELLS = 200_000
const ACTORS = 1_000
const RUNS = 3

type Counter = { readonly reply?: Actor.Reply<number> }

// what a Strait process runs on (see EventLoopScheduler)
const scheduler = EventLoopScheduler.make()

const timed = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    return { seconds: (performance.now() - start) / 1000 }
  })), { scheduler })

// --- request/reply -----------------------------------------------------------------------------

const counterActor = (name: string) =>
  Actor.make<{ n: number }, Counter, never>({
    name,
    init: Effect.sync(() => ({ n: 0 })),
    handle: (state, message) => message.reply ? Deferred.succeed(message.reply, ++state.n) : Effect.sync(() => void ++state.n)
  })

const askOne = (concurrency: number) =>
  timed(Effect.gen(function*() {
    const actor = yield* counterActor("one")
    yield* Effect.forEach(Array.from({ length: ASKS }), () => actor.ask<number>((reply) => ({ reply })), { concurrency, discard: true })
  }))

const askMany = (concurrency: number) =>
  timed(Effect.gen(function*() {
    const registry = yield* ActorRegistry.make<number, Counter, never>("bench", (key) => counterActor(`a${key}`))
    const actors = yield* Effect.forEach(Array.from({ length: ACTORS }, (_, i) => i), (i) => registry.get(i))
    yield* Effect.forEach(Array.from({ length: ASKS }, (_, i) => i), (i) => actors[i % ACTORS]!.ask<number>((reply) => ({ reply })), {
      concurrency,
      discard: true
    })
  }))

// the same request/reply with no kit: a bounded queue of reply slots and a take-loop
const askPlain = (concurrency: number) =>
  timed(Effect.gen(function*() {
    const mailbox = yield* Queue.bounded<Deferred.Deferred<number>, Cause.Done>(1024)
    let n = 0
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(mailbox), (reply) => Deferred.succeed(reply, ++n))))
    yield* Effect.forEach(Array.from({ length: ASKS }), () =>
      Effect.suspend(() => {
        const reply = Deferred.makeUnsafe<number>()
        return Effect.andThen(Queue.offer(mailbox, reply), Deferred.await(reply))
      }), { concurrency, discard: true })
  }))

// --- one-way messages ----------------------------------------------------------------------------

const tellAll = (tell: (message: Counter) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    for (let i = 1; i < TELLS; i++) yield* tell({})
  })

const tellPlain = () =>
  timed(Effect.gen(function*() {
    const mailbox = yield* Queue.bounded<Counter, Cause.Done>(1024)
    const done = yield* Deferred.make<void>()
    let n = 0
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(mailbox), () =>
      ++n === TELLS ? Deferred.succeed(done, undefined) : Effect.void)))
    yield* tellAll((m) => Queue.offer(mailbox, m))
    yield* Queue.offer(mailbox, {})
    yield* Deferred.await(done)
  }))

const tellSingle = () =>
  timed(Effect.gen(function*() {
    const actor = yield* counterActor("single")
    yield* tellAll(actor.tell)
    yield* actor.ask<number>((reply) => ({ reply }))
  }))

const tellBatched = () =>
  timed(Effect.gen(function*() {
    const actor = yield* Actor.makeBatched<{ n: number }, Counter, never>({
      name: "batched",
      init: Effect.sync(() => ({ n: 0 })),
      handleBatch: (state, messages) =>
        Effect.suspend(() => {
          state.n += messages.length
          const last = messages[messages.length - 1]!
          return last.reply ? Deferred.succeed(last.reply, state.n) : Effect.void
        })
    })
    yield* tellAll(actor.tell)
    yield* actor.ask<number>((reply) => ({ reply }))
  }))

// --- run -------------------------------------------------------------------------------------------

const perSecond = (count: number, run: { readonly seconds: number }) => count / run.seconds
const nanosEach = (count: number, run: { readonly seconds: number }) => (run.seconds * 1e9) / count

const plain64 = await best(RUNS, () => askPlain(64))
const one1 = await best(RUNS, () => askOne(1))
const one64 = await best(RUNS, () => askOne(64))
const many256 = await best(RUNS, () => askMany(256))
const plainLoop = await best(RUNS, tellPlain)
const single = await best(RUNS, tellSingle)
const batched = await best(RUNS, tellBatched)

table(`request/reply (${ASKS.toLocaleString("en-US")} asks, best of ${RUNS})`, [
  { setup: "plain Queue + Deferred, 64 in flight", "asks/s": perSecond(ASKS, plain64) },
  { setup: "one actor, 1 in flight", "asks/s": perSecond(ASKS, one1) },
  { setup: "one actor, 64 in flight", "asks/s": perSecond(ASKS, one64) },
  { setup: `${ACTORS} actors, 256 in flight`, "asks/s": perSecond(ASKS, many256) }
])
table(`one-way messages (${TELLS.toLocaleString("en-US")} tells, best of ${RUNS})`, [
  { setup: "plain Queue take-loop", "ns/msg": nanosEach(TELLS, plainLoop) },
  { setup: "actor, one message per step", "ns/msg": nanosEach(TELLS, single) },
  { setup: "batched actor, one step per batch", "ns/msg": nanosEach(TELLS, batched) }
])

emit("actor", {
  ask_one_actor_vs_plain: perSecond(ASKS, one64) / perSecond(ASKS, plain64),
  ask_1000_actors_vs_plain: perSecond(ASKS, many256) / perSecond(ASKS, plain64),
  single_vs_plain_take_loop: nanosEach(TELLS, single) / nanosEach(TELLS, plainLoop),
  batch_vs_plain_take_loop: nanosEach(TELLS, batched) / nanosEach(TELLS, plainLoop)
}, {
  node: process.version,
  asks_per_s_plain_64: perSecond(ASKS, plain64),
  asks_per_s_one_actor_1: perSecond(ASKS, one1),
  asks_per_s_one_actor_64: perSecond(ASKS, one64),
  asks_per_s_1000_actors_256: perSecond(ASKS, many256),
  ns_per_msg_plain_take_loop: nanosEach(TELLS, plainLoop),
  ns_per_msg_single: nanosEach(TELLS, single),
  ns_per_msg_batched: nanosEach(TELLS, batched)
})
