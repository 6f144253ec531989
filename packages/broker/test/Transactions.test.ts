import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
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
