import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Transactions } from "../src/index.ts"
import { message, text, withBroker } from "./fixtures.ts"

const pop = { group: "g", topic: "tx", maxMessages: 32, invisibleDuration: "30 seconds" as const }

describe("transactions", () => {
  it.effect("a half message is invisible until committed, then delivered once; a rollback drops it", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [kept, dropped] = yield* broker.send([message("tx", "kept"), message("tx", "dropped")], { transactional: true })
        assert.strictEqual(kept!.transactionId, kept!.messageId)
        assert.deepStrictEqual(yield* broker.pop(pop), [], "half messages are invisible")
        yield* broker.endTransaction("tx", kept!.transactionId, "COMMIT")
        yield* broker.endTransaction("tx", dropped!.transactionId, "ROLLBACK")
        assert.deepStrictEqual((yield* broker.pop(pop)).map((r) => text(r.message)), ["kept"])
        const again = yield* Effect.flip(broker.endTransaction("tx", kept!.transactionId, "COMMIT"))
        assert.strictEqual(again._tag, "TransactionNotFound")
      })))

  it.effect("a transactional send needs a TRANSACTION topic, and a TRANSACTION topic a transactional send", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* broker.createTopic({ name: "plain", kind: "NORMAL", queues: 1 })
        assert.strictEqual((yield* Effect.flip(broker.send([message("tx", "x")])))._tag, "MessageTypeMismatch")
        assert.strictEqual((yield* Effect.flip(broker.send([message("plain", "x")], { transactional: true })))._tag, "MessageTypeMismatch")
      })))

  it.effect("an unresolved half is checked back after the delay, again at the interval, then discarded", () => {
    const checks: Array<readonly [string, number]> = []
    const checker: Transactions.TransactionChecker = {
      check: ({ attempt, transactionId }) => Effect.sync(() => void checks.push([transactionId, attempt]))
    }
    return withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [half] = yield* broker.send([message("tx", "undecided")], { transactional: true })
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(checks, [], "no check before the first delay")
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(checks, [[half!.transactionId, 1]])
        for (let i = 0; i < 14; i++) yield* TestClock.adjust("30 seconds")
        assert.strictEqual(checks.length, 15)
        yield* TestClock.adjust("30 seconds")
        assert.strictEqual(checks.length, 15, "no check past the maximum")
        assert.strictEqual((yield* Effect.flip(broker.endTransaction("tx", half!.transactionId, "COMMIT")))._tag, "TransactionNotFound")
        assert.deepStrictEqual(yield* broker.pop(pop), [], "a discarded half is never delivered")
      }), { transactionChecker: checker })
  })

  it.effect("a check-back answered with a commit delivers the message", () => {
    let commit: ((transactionId: string) => Effect.Effect<void>) | undefined
    const checker: Transactions.TransactionChecker = { check: ({ transactionId }) => commit!(transactionId) }
    return withBroker((broker) =>
      Effect.gen(function*() {
        commit = (transactionId) => Effect.ignore(broker.endTransaction("tx", transactionId, "COMMIT"))
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* broker.send([message("tx", "checked")], { transactional: true })
        yield* TestClock.adjust("6 seconds")
        assert.deepStrictEqual((yield* broker.pop(pop)).map((r) => text(r.message)), ["checked"])
      }), { transactionChecker: checker })
  })

  it.effect("without a checker, an unresolved half's check is due after the first delay and is taken once", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [half] = yield* broker.send([message("tx", "undecided")], { transactional: true })
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* broker.awaitChecks(10, 0), [], "no check before the first delay")
        yield* TestClock.adjust("1 second")
        const [check, ...more] = yield* broker.awaitChecks(10, 0)
        assert.deepStrictEqual(more, [])
        assert.deepStrictEqual([check!.transactionId, check!.attempt, text(check!.message)], [half!.transactionId, 1, "undecided"])
        assert.strictEqual(check!.message.messageId, half!.messageId)
        assert.deepStrictEqual(yield* broker.awaitChecks(10, 0), [], "a check is taken once")
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual((yield* broker.awaitChecks(10, 0)).map((c) => c.attempt), [2], "and checked again at the interval")
      })))

  it.effect("a waiting awaitChecks is woken by the check, and one interrupted while waiting takes none", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [half] = yield* broker.send([message("tx", "undecided")], { transactional: true })
        const interrupted = yield* Effect.forkChild(broker.awaitChecks(10, "1 minute"))
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        yield* Fiber.interrupt(interrupted)
        const waiting = yield* Effect.forkChild(broker.awaitChecks(10, "1 minute"))
        yield* TestClock.adjust("5 seconds")
        assert.isUndefined(waiting.pollUnsafe(), "still waiting before the first delay")
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual((yield* Fiber.join(waiting)).map((c) => c.transactionId), [half!.transactionId])
        const late = yield* Effect.forkChild(broker.awaitChecks(10, "10 seconds"))
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* Fiber.join(late), [], "a wait with no check ends empty at its time")
      })))

  it.effect("a check of a half resolved before it was taken is not returned", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [resolved, open] = yield* broker.send([message("tx", "resolved"), message("tx", "open")], { transactional: true })
        yield* TestClock.adjust("6 seconds")
        yield* broker.endTransaction("tx", resolved!.transactionId, "ROLLBACK")
        assert.deepStrictEqual((yield* broker.awaitChecks(10, 0)).map((c) => c.transactionId), [open!.transactionId])
      })))

  it.effect("at most maxDueChecks checks wait to be taken; the oldest is dropped", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const halves = yield* broker.send(["a", "b", "c"].map((body) => message("tx", body)), { transactional: true })
        yield* TestClock.adjust("6 seconds")
        assert.deepStrictEqual((yield* broker.awaitChecks(10, 0)).map((c) => c.transactionId), halves.slice(1).map((h) => h.transactionId))
      })).pipe(Effect.provideService(Transactions.TransactionSettings, {
        firstCheckAfter: "6 seconds",
        checkInterval: "30 seconds",
        maxChecks: 15,
        maxDueChecks: 2
      })))

  it.effect("a check taken without a checker and answered with a commit delivers the message", () =>
    withBroker((broker) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        yield* broker.send([message("tx", "checked")], { transactional: true })
        yield* TestClock.adjust("6 seconds")
        const [check] = yield* broker.awaitChecks(1, 0)
        yield* broker.endTransaction(check!.message.topic, check!.transactionId, "COMMIT")
        assert.deepStrictEqual((yield* broker.pop(pop)).map((r) => text(r.message)), ["checked"])
      })))

  it.effect("an open transaction survives a restart and can still be committed", () =>
    withBroker((broker, restart) =>
      Effect.gen(function*() {
        yield* broker.createTopic({ name: "tx", kind: "TRANSACTION", queues: 1 })
        const [half] = yield* broker.send([message("tx", "durable")], { transactional: true })
        const again = yield* restart()
        yield* again.endTransaction("tx", half!.transactionId, "COMMIT")
        assert.deepStrictEqual((yield* again.pop(pop)).map((r) => text(r.message)), ["durable"])
      })))
})
