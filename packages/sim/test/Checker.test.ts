// The checker's rules, each on a small history that keeps it and one that breaks it.
import { describe, expect, it } from "@effect/vitest"
import { Checker, type History } from "../src/index.ts"

const expect_: Checker.Expectations = {
  consumers: new Map([["orders", ["billing"]], ["sequenced", ["ledger"]]]),
  maxAttempts: 3,
  fifoTopics: new Set(["sequenced"]),
  failoverSettles: 20_000
}

const send = (key: string, at: number, extra: Partial<History.Sent> = {}): History.Sent => ({
  type: "send",
  at,
  completedAt: at + 5,
  client: "producer-0",
  key,
  topic: "orders",
  kind: "NORMAL",
  outcome: "ok",
  messageId: `id-${key}`,
  ...extra
})
const deliver = (key: string, at: number, attempt: number, extra: Partial<History.Delivered> = {}): History.Delivered => ({
  type: "deliver",
  at,
  requestedAt: at - 5,
  client: "consumer-0",
  group: "billing",
  topic: "orders",
  key,
  messageId: `id-${key}`,
  copy: `broker-0/0@${key}`,
  storedAt: 0,
  attempt,
  receiptHandle: `${key}-${attempt}`,
  invisibleUntil: at + 5_000,
  ...extra
})
const settle = (type: "ack" | "nack", key: string, attempt: number, at: number, extra: Partial<History.Settled> = {}): History.Settled => ({
  type,
  at,
  invokedAt: at - 3,
  client: "consumer-0",
  group: "billing",
  key,
  receiptHandle: `${key}-${attempt}`,
  outcome: "ok",
  ...extra
})
const fault = (name: string, at: number, nodes: ReadonlyArray<string> = []): History.Fault => ({ type: "fault", at, fault: name, nodes })

const rules = (events: ReadonlyArray<History.Event>) => Checker.check({ events: [...events], origin: 0 }, expect_).violations.map((violation) => violation.rule)

describe("the queue-semantics checker", () => {
  it("a history that keeps every rule has no violation", () => {
    expect(rules([send("a", 0), deliver("a", 100, 1), settle("ack", "a", 1, 150)])).toEqual([])
  })

  it("lost: an acknowledged send that never reached its group; a failed send or a rolled-back one may not arrive", () => {
    expect(rules([send("a", 0)])).toEqual(["lost"])
    expect(rules([send("a", 0, { outcome: "fail" })])).toEqual([])
    expect(rules([send("a", 0, { topic: "orders", kind: "TRANSACTION", resolution: "ROLLBACK" })])).toEqual([])
  })

  it("phantom: a delivery nobody sent, or of a rolled-back message", () => {
    expect(rules([deliver("ghost", 100, 1)])).toEqual(["phantom"])
    expect(rules([send("a", 0, { resolution: "ROLLBACK" }), deliver("a", 100, 1)])).toEqual(["phantom"])
  })

  it("ack-final: delivered again by a receive made after the acknowledgement was answered, unless a broker lost state in between", () => {
    const history = [send("a", 0), deliver("a", 100, 1), settle("ack", "a", 1, 150), deliver("a", 6_000, 2)]
    expect(rules(history)).toContain("ack-final")
    expect(rules([...history.slice(0, 3), fault("crash", 1_000, ["broker-0"]), history[3]!])).not.toContain("ack-final")
  })

  it("early-redelivery: a message comes again before its invisibility ended without being given back", () => {
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 2_000, 2)])).toEqual(["early-redelivery"])
    // given back (change of invisibility), or at the end of its window: fine
    expect(rules([send("a", 0), deliver("a", 100, 1), settle("nack", "a", 1, 200), deliver("a", 1_300, 2)])).toEqual([])
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 5_200, 2)])).toEqual([])
  })

  it("attempts: they go up by one; a repeat is a violation, a gap only where a delivery may have been lost", () => {
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 5_200, 1)])).toEqual(["attempts"])
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 5_200, 3)])).toEqual(["attempts"])
    expect(rules([send("a", 0), deliver("a", 100, 2)])).toEqual(["attempts"])
    const lost: History.ReceiveFailed = { type: "receive-failed", at: 3_000, client: "consumer-1", group: "billing", reason: "ConnectionClosed" }
    expect(rules([send("a", 0), deliver("a", 100, 1), lost, deliver("a", 5_200, 3)])).toEqual([])
  })

  it("a second stored copy (a send made again) is delivered on its own, attempts counted from 1", () => {
    expect(rules([
      send("a", 0),
      deliver("a", 100, 1),
      settle("ack", "a", 1, 150),
      deliver("a", 7_000, 1, { copy: "broker-1/2@9", receiptHandle: "a-copy" }),
      settle("ack", "a", 1, 7_050, { receiptHandle: "a-copy" })
    ])).toEqual([])
  })

  it("delay and ttl: never delivered before its time, nor by a receive made after its time to live since it was stored", () => {
    expect(rules([send("a", 0, { deliverAt: 1_000 }), deliver("a", 900, 1), settle("ack", "a", 1, 950)])).toEqual(["delay"])
    expect(rules([send("a", 0, { ttlMillis: 1_000 }), deliver("a", 3_000, 1, { storedAt: 10 }), settle("ack", "a", 1, 3_050)])).toEqual(["ttl"])
    // a time to live is not a promise of delivery
    expect(rules([send("a", 0, { ttlMillis: 1_000 })])).toEqual([])
  })

  it("fifo: a message group's next message only after the one before it was acknowledged, except across a failover", () => {
    const fifo = (key: string, at: number, sequence: number) => send(key, at, { topic: "sequenced", kind: "FIFO", messageGroup: "g", sequence })
    const got = (key: string, at: number) => deliver(key, at, 1, { group: "ledger", topic: "sequenced" })
    const ack = (key: string, at: number) => settle("ack", key, 1, at, { group: "ledger" })
    expect(rules([fifo("a", 0, 1), fifo("b", 10, 2), got("a", 100), got("b", 120), ack("a", 200), ack("b", 210)])).toEqual(["fifo"])
    expect(rules([fifo("a", 0, 1), fifo("b", 10, 2), got("a", 100), ack("a", 200), got("b", 220), ack("b", 230)])).toEqual([])
    expect(rules([fifo("a", 0, 1), fault("crash", 50, ["broker-0"]), fifo("b", 60, 2), got("b", 120), got("a", 300), ack("b", 310), ack("a", 320)])).toEqual([])
    // a broker scaled in whose disk later fills and is freed: the failover lasts until it is back, not
    // until its disk is freed
    expect(rules([
      fifo("a", 0, 1),
      fault("scale in", 50, ["broker-3"]),
      fifo("b", 60, 2),
      got("b", 40_000),
      fault("disk full", 41_000, ["broker-3"]),
      fault("disk freed", 42_000, ["broker-3"]),
      fault("scale out", 45_000, ["broker-3"]),
      got("a", 46_000),
      ack("b", 46_100),
      ack("a", 46_200)
    ])).toEqual([])
    // and once it is back and the failover has settled, order is owed again
    expect(rules([
      fault("scale in", 50, ["broker-3"]),
      fault("disk full", 100, ["broker-3"]),
      fault("disk freed", 200, ["broker-3"]),
      fault("scale out", 300, ["broker-3"]),
      fifo("a", 50_000, 1),
      fifo("b", 60_000, 2),
      got("b", 60_100),
      got("a", 60_200),
      ack("b", 60_300),
      ack("a", 60_400)
    ])).toEqual(["fifo"])
  })

  it("dead-letter: only after the last attempt, and never past it", () => {
    const dead = (key: string, at: number) => deliver(key, at, 1, { group: "dead-letters", topic: "%DLQ%billing", copy: "broker-0/0@dlq", receiptHandle: `${key}-dead` })
    expect(rules([send("a", 0), deliver("a", 100, 1), dead("a", 6_000)])).toEqual(["dead-letter"])
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 5_200, 2), deliver("a", 10_300, 3), dead("a", 16_000)])).toEqual([])
    // and never comes to its group past the last attempt
    expect(rules([send("a", 0), deliver("a", 100, 1), deliver("a", 5_200, 2), deliver("a", 10_300, 3), deliver("a", 15_400, 4)])).toEqual(["dead-letter"])
  })

  it("fencing: one broker per queue and epoch, and no write at an epoch after a newer claim", () => {
    const claim = (broker: string, epoch: number, at: number): History.QueueEvent => ({ type: "claim", at, broker, queue: "orders/0", epoch })
    const store = (broker: string, epoch: number, at: number): History.QueueEvent => ({ type: "store", at, broker, queue: "orders/0", epoch, messageId: "x" })
    expect(rules([claim("broker-0", 1, 0), claim("broker-1", 1, 10)])).toEqual(["fencing"])
    expect(rules([claim("broker-0", 1, 0), claim("broker-1", 2, 100), store("broker-0", 1, 150)])).toEqual(["fencing"])
    expect(rules([claim("broker-0", 1, 0), store("broker-0", 1, 50), claim("broker-1", 2, 100), store("broker-1", 2, 150)])).toEqual([])
  })

  it("offsets: a pull consumer's committed offset never goes back; what it pulls reaches its group", () => {
    const auditors: Checker.Expectations = { ...expect_, consumers: new Map([["orders", ["auditors"]]]) }
    const commit = (offset: number, at: number): History.Committed => ({ type: "commit", at, client: "puller", group: "auditors", queue: "broker-0/0", offset, outcome: "ok" })
    const pulled: History.Pulled = { type: "pull", at: 50, client: "puller", group: "auditors", topic: "orders", key: "a", copy: "broker-0/0@0" }
    const check = (events: ReadonlyArray<History.Event>) => Checker.check({ events: [...events], origin: 0 }, auditors).violations.map((violation) => violation.rule)
    expect(check([send("a", 0), pulled, commit(1, 60), commit(3, 200)])).toEqual([])
    expect(check([send("a", 0), pulled, commit(3, 60), commit(1, 200)])).toEqual(["offsets"])
    expect(check([send("a", 0)])).toEqual(["lost"])
  })

  it("a violation prints its rule and the events that show it", () => {
    const [violation] = Checker.check({ events: [send("a", 0)], origin: 0 }, expect_).violations
    expect(Checker.format(violation!)).toContain("rule lost: a was stored")
    expect(Checker.format(violation!)).toContain("producer-0 send a → orders")
  })
})
