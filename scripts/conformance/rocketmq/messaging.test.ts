// Conformance: the official rocketmq-client-nodejs Producer, SimpleConsumer and PushConsumer against
// a real `strait dev` process over TCP (scenarios of shared/research/rocketmq-grpc.md §5). Each
// scenario has its own topics and groups (no other scenario may send to them), so they run at the
// same time.
import { ConsumeResult, FilterExpression, type MessageView, Producer, PushConsumer, SimpleConsumer } from "rocketmq-client-nodejs"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { codeOf, eventually, logger, receiveSome, rejection, type RunningNode, startNode } from "./harness.ts"

const SQL = 2 // FilterType.SQL of the client's protos

let node: RunningNode
const clients: Array<{ shutdown(): Promise<void> }> = []

const topics = [
  ["exact", "NORMAL"], ["handshake", "NORMAL"], ["signed", "NORMAL"], ["plain", "NORMAL"], ["batch", "NORMAL"], ["poll", "NORMAL"], ["expiry", "NORMAL"], ["change", "NORMAL"], ["dlq", "NORMAL"],
  ["tags", "NORMAL"], ["sql", "NORMAL"], ["share", "NORMAL"], ["fifo", "FIFO"], ["push", "NORMAL"], ["fifo-push", "FIFO"], ["fifo-push-acc", "FIFO"],
  ["delay", "DELAY"], ["recall", "DELAY"], ["tx", "TRANSACTION"], ["tx-check", "TRANSACTION"], ["prio", "PRIORITY"], ["limits", "NORMAL"]
] as const

beforeAll(async () => {
  node = await startNode({
    topics: topics.map(([name, kind]) => ({ name, kind, queues: kind === "FIFO" ? 4 : 2 })),
    groups: [
      { name: "g-dlq", maxDeliveryAttempts: 3 },
      { name: "g-fifo", fifo: true },
      { name: "g-fifo-push", fifo: true, maxDeliveryAttempts: 3 },
      { name: "g-fifo-push-acc", fifo: true, maxDeliveryAttempts: 3 }
    ],
    access: {
      accounts: [{ accessKey: "app", secretKey: "app-secret", grants: [{ resource: "*", actions: ["pub", "sub"] }] }],
      anonymous: [{ resource: "*", actions: ["pub", "sub", "admin"] }]
    },
    tuning: { transactionFirstCheckMillis: 1500, transactionCheckIntervalMillis: 1500, transactionMaxChecks: 2 }
  })
}, 60_000)

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.shutdown()))
  expect(await node.stop("SIGTERM")).toBe(0)
}, 60_000)

const producer = async (topic: string, options: object = {}) => {
  const client = new Producer({ endpoints: node.endpoints, topics: [topic], logger, ...options } as any)
  await client.startup()
  clients.push(client)
  return client
}

const simple = async (group: string, subscriptions: Record<string, string | FilterExpression>, options: object = {}) => {
  const client = new SimpleConsumer({
    endpoints: node.endpoints,
    consumerGroup: group,
    subscriptions: new Map(Object.entries(subscriptions)),
    awaitDuration: 3000,
    logger,
    ...options
  } as any)
  await client.startup()
  clients.push(client)
  return client
}

/** Receives until `count` messages arrived (acking each unless told otherwise) or nothing more comes. */
const drain = async (consumer: SimpleConsumer, count: number, options: { readonly ack?: boolean; readonly invisible?: number } = {}) => {
  const got: Array<MessageView> = []
  while (got.length < count) {
    const batch = await consumer.receive(32, options.invisible ?? 20_000)
    if (batch.length === 0) break
    for (const message of batch) {
      got.push(message)
      if (options.ack !== false) await consumer.ack(message)
    }
  }
  return got
}

const body = (message: MessageView) => message.body.toString()

describe.concurrent("the official RocketMQ Node client against strait dev", () => {
  test("1. producers and consumers start, and shut down cleanly", async () => {
    const p = await producer("handshake")
    const c = await simple("g-handshake", { handshake: "*" })
    const push = new PushConsumer({
      endpoints: node.endpoints,
      consumerGroup: "g-handshake-push",
      subscriptions: new Map([["handshake", "*"]]),
      messageListener: { consume: async () => ConsumeResult.SUCCESS },
      logger
    } as any)
    await push.startup()
    await c.shutdown()
    await p.shutdown()
    await push.shutdown()
  })

  test("2. startup fails cleanly: unknown topic (NotFound), bad access key or secret (Forbidden), bad SQL filter (BadRequest)", async () => {
    const missing = await rejection(new Producer({ endpoints: node.endpoints, topics: ["no-such-topic"], logger } as any).startup())
    expect(codeOf(missing)).toBe(40402)
    const badKey = await rejection(new Producer({
      endpoints: node.endpoints, topics: ["signed"], logger, sessionCredentials: { accessKey: "nobody", accessSecret: "x" }
    } as any).startup())
    expect(codeOf(badKey)).toBe(40300)
    const badSecret = await rejection(new Producer({
      endpoints: node.endpoints, topics: ["signed"], logger, sessionCredentials: { accessKey: "app", accessSecret: "wrong" }
    } as any).startup())
    expect(codeOf(badSecret)).toBe(40300)
    const signed = await producer("signed", { sessionCredentials: { accessKey: "app", accessSecret: "app-secret" } })
    expect((await signed.send({ topic: "signed", body: Buffer.from("signed") })).messageId).toBeTruthy()
    const badSql = await rejection(new SimpleConsumer({
      endpoints: node.endpoints, consumerGroup: "g-bad-sql", subscriptions: new Map([["sql", new FilterExpression("price >", SQL as any)]]), logger
    } as any).startup())
    expect(codeOf(badSql)).toBe(40010)
  }, 30_000)

  test("3. 1,000 messages are each received exactly once, with body, tag, keys and properties intact", async () => {
    const p = await producer("exact")
    const sentIds = new Set<string>()
    const bodies = ["plain", "emoji 🚀", "中文", "\u0000binary\u00ff"]
    for (let start = 0; start < 1000; start += 100) {
      const receipts = await Promise.all(Array.from({ length: 100 }, (_, j) => {
        const i = start + j
        return p.send({
          topic: "exact",
          body: Buffer.from(`${bodies[i % 4]}#${i}`),
          tag: `t${i % 3}`,
          keys: i % 2 === 0 ? [] : [`k${i}`, `k${i}b`],
          properties: new Map([["index", String(i)]])
        })
      }))
      for (const receipt of receipts) {
        expect(receipt.offset).toBeGreaterThanOrEqual(0)
        expect(receipt.transactionId).toBe(receipt.messageId)
        sentIds.add(receipt.messageId)
      }
    }
    const c = await simple("g-exact", { exact: "*" })
    const got = await drain(c, 1000)
    const seen = new Set(got.map((m) => m.messageId))
    expect(got.length).toBe(1000)
    expect(seen).toEqual(sentIds)
    for (const m of got) {
      const i = Number(m.properties.get("index"))
      expect(body(m)).toBe(`${bodies[i % 4]}#${i}`)
      expect(m.tag).toBe(`t${i % 3}`)
      expect(m.keys).toEqual(i % 2 === 0 ? [] : [`k${i}`, `k${i}b`])
      expect(m.deliveryAttempt).toBe(1)
      expect(m.bornTimestamp).toBeTruthy()
    }
    expect((await c.receive(32, 20_000)).length).toBe(0)
  }, 60_000)

  test("4. a receive of 50 returns at most 32", async () => {
    const p = await producer("batch")
    await Promise.all(Array.from({ length: 40 }, (_, i) => p.send({ topic: "batch", body: Buffer.from(`m${i}`) })))
    const c = await simple("g-batch", { batch: "*" })
    const first = await c.receive(50, 20_000)
    expect(first.length).toBeGreaterThan(0)
    expect(first.length).toBeLessThanOrEqual(32)
  })

  test("5. an empty receive long-polls for its await duration; a message sent meanwhile ends the poll at once", async () => {
    const c = await simple("g-poll", { poll: "*" }, { awaitDuration: 4000 })
    const started = Date.now()
    expect((await c.receive(1, 20_000)).length).toBe(0)
    const waited = Date.now() - started
    expect(waited).toBeGreaterThanOrEqual(3500)
    expect(waited).toBeLessThan(7000)
    const p = await producer("poll")
    const polling = c.receive(1, 20_000)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const sentAt = Date.now()
    await p.send({ topic: "poll", body: Buffer.from("wake up") })
    const got = await polling
    expect(got.map(body)).toEqual(["wake up"])
    expect(Date.now() - sentAt).toBeLessThan(1500)
  }, 30_000)

  test("6. an unacknowledged message comes back after its invisible time with attempt 2; its old handle no longer acks", async () => {
    const p = await producer("expiry")
    await p.send({ topic: "expiry", body: Buffer.from("again") })
    const c = await simple("g-expiry", { expiry: "*" })
    const [first] = await c.receive(1, 10_000)
    expect(first!.deliveryAttempt).toBe(1)
    const oldHandle = first!.receiptHandle
    const [second] = await receiveSome(c, 1, 10_000, 20_000)
    expect(second!.messageId).toBe(first!.messageId)
    expect(second!.deliveryAttempt).toBe(2)
    expect(second!.receiptHandle).not.toBe(oldHandle)
    const stale = await rejection(c.ack({ ...first!, receiptHandle: oldHandle } as MessageView))
    expect(codeOf(stale)).toBe(40013)
    await c.ack(second!)
  }, 40_000)

  test("7. change-invisibility extends the window with a new handle; after an ack a change fails", async () => {
    const p = await producer("change")
    await p.send({ topic: "change", body: Buffer.from("longer") })
    const c = await simple("g-change", { change: "*" })
    const [m] = await c.receive(1, 10_000)
    await c.changeInvisibleDuration(m!, 30_000)
    // 12 s later the first window would have ended: the message is still invisible
    await new Promise((resolve) => setTimeout(resolve, 12_000))
    expect((await c.receive(1, 10_000)).length).toBe(0)
    await c.ack(m!)
    const after = await rejection(c.changeInvisibleDuration(m!, 20_000))
    expect(codeOf(after)).toBe(40013)
  }, 40_000)

  test("8. past the group's max attempts the message goes to %DLQ%<group> with its id and origin", async () => {
    const p = await producer("dlq")
    const { messageId } = await p.send({ topic: "dlq", body: Buffer.from("poison") })
    const c = await simple("g-dlq", { dlq: "*" })
    const attempts: Array<number> = []
    const deadline = Date.now() + 45_000
    while (Date.now() < deadline && attempts.length < 4) {
      for (const m of await c.receive(1, 10_000)) attempts.push(m.deliveryAttempt ?? 0)
      if (attempts.length === 3) {
        // a fourth delivery would come 10 s after the third
        await new Promise((resolve) => setTimeout(resolve, 11_000))
        for (const m of await c.receive(1, 10_000)) attempts.push(m.deliveryAttempt ?? 0)
        break
      }
    }
    expect(attempts).toEqual([1, 2, 3])
    const dead = await simple("g-dlq-reader", { "%DLQ%g-dlq": "*" })
    const [letter] = await receiveSome(dead, 1, 10_000, 20_000)
    expect(letter!.messageId).toBe(messageId)
    expect(body(letter!)).toBe("poison")
  }, 90_000)

  test("9. tag filters: A || B, *, exact and case-sensitive; filtered-out messages are never delivered", async () => {
    const p = await producer("tags")
    for (const tag of ["A", "B", "C", "bb", "BB"]) await p.send({ topic: "tags", body: Buffer.from(tag), tag })
    await p.send({ topic: "tags", body: Buffer.from("untagged") })
    const either = await simple("g-tags-ab", { tags: "A || B" })
    expect((await drain(either, 10)).map(body).sort()).toEqual(["A", "B"])
    const all = await simple("g-tags-all", { tags: "*" })
    expect((await drain(all, 10)).map(body).sort()).toEqual(["A", "B", "BB", "C", "bb", "untagged"])
    const exact = await simple("g-tags-bb", { tags: "BB" })
    expect((await drain(exact, 10)).map(body)).toEqual(["BB"])
    const none = await simple("g-tags-none", { tags: "D" })
    expect((await drain(none, 10)).length).toBe(0)
  }, 40_000)

  test("10. SQL92 filters: comparison, BETWEEN, unknown property, TAGS", async () => {
    const p = await producer("sql")
    for (let price = 1; price <= 20; price++) {
      await p.send({ topic: "sql", body: Buffer.from(String(price)), tag: price % 2 === 0 ? "even" : "odd", properties: new Map([["price", String(price)]]) })
    }
    const over = await simple("g-sql-over", { sql: new FilterExpression("price > 15", SQL as any) })
    expect((await drain(over, 30)).map(body).sort()).toEqual(["16", "17", "18", "19", "20"])
    const between = await simple("g-sql-between", { sql: new FilterExpression("price BETWEEN 3 AND 5", SQL as any) })
    expect((await drain(between, 30)).map(body).sort()).toEqual(["3", "4", "5"])
    const unknown = await simple("g-sql-unknown", { sql: new FilterExpression("weight > 1", SQL as any) })
    expect((await drain(unknown, 30)).length).toBe(0)
    const tags = await simple("g-sql-tags", { sql: new FilterExpression("TAGS = 'even' AND price < 7", SQL as any) })
    expect((await drain(tags, 30)).map(body).sort()).toEqual(["2", "4", "6"])
  }, 40_000)

  test("11. every group gets every message; consumers of one group share them without duplicates", async () => {
    const p = await producer("share")
    await Promise.all(Array.from({ length: 100 }, (_, i) => p.send({ topic: "share", body: Buffer.from(`s${i}`) })))
    for (const group of ["g-share-1", "g-share-2"]) {
      const c = await simple(group, { share: "*" })
      expect(new Set((await drain(c, 100)).map(body)).size).toBe(100)
    }
    const members = await Promise.all([1, 2, 3].map(() => simple("g-share-3", { share: "*" })))
    const parts = await Promise.all(members.map((member) => drain(member, 100)))
    const all = parts.flat().map(body)
    expect(all.length).toBe(100)
    expect(new Set(all).size).toBe(100)
  }, 40_000)

  test("12. FIFO: one message group's messages arrive in order; while its head is not acked nothing behind it comes", async () => {
    const p = await producer("fifo")
    for (let i = 0; i < 10; i++) {
      for (const group of ["a", "b"]) await p.send({ topic: "fifo", body: Buffer.from(`${group}${i}`), messageGroup: group })
    }
    const c = await simple("g-fifo", { fifo: "*" })
    const first = await c.receive(32, 10_000)
    // unacknowledged: no more of either group until the heads come back
    expect((await c.receive(32, 10_000)).length).toBe(0)
    for (const m of first) await c.ack(m)
    const rest = await drain(c, 20)
    const order = [...first, ...rest].map(body)
    for (const group of ["a", "b"]) {
      expect(order.filter((b) => b.startsWith(group))).toEqual(Array.from({ length: 10 }, (_, i) => `${group}${i}`))
    }
  }, 40_000)

  test.for([
    { accelerator: "off", topic: "fifo-push", group: "g-fifo-push" },
    { accelerator: "on", topic: "fifo-push-acc", group: "g-fifo-push-acc" }
  ])("13. a FIFO push consumer (accelerator $accelerator) keeps each message group in order; a message failing every attempt goes to the DLQ and the group goes on", { timeout: 60_000 }, async ({ accelerator, group, topic }) => {
    const p = await producer(topic)
    for (let i = 0; i < 10; i++) {
      for (const messageGroup of ["a", "b"]) await p.send({ topic, body: Buffer.from(`${messageGroup}${i}`), messageGroup })
    }
    const consumed: Array<string> = []
    const attemptsOfPoison: Array<number> = []
    const push = new PushConsumer({
      endpoints: node.endpoints,
      consumerGroup: group,
      subscriptions: new Map([[topic, "*"]]),
      enableFifoConsumeAccelerator: accelerator === "on",
      messageListener: {
        consume: async (m: MessageView) => {
          if (body(m) === "a3") {
            attemptsOfPoison.push(m.deliveryAttempt ?? 0)
            return ConsumeResult.FAILURE
          }
          consumed.push(body(m))
          return ConsumeResult.SUCCESS
        }
      },
      logger
    } as any)
    await push.startup()
    clients.push(push)
    await eventually(() => consumed.length === 19, 40_000)
    for (const messageGroup of ["a", "b"]) {
      expect(consumed.filter((b) => b.startsWith(messageGroup))).toEqual(Array.from({ length: 10 }, (_, i) => `${messageGroup}${i}`).filter((b) => b !== "a3"))
    }
    expect(attemptsOfPoison.length).toBe(3)
    const dead = await simple(`${group}-dlq`, { [`%DLQ%${group}`]: "*" })
    const [letter] = await receiveSome(dead, 1, 10_000, 20_000)
    expect(body(letter!)).toBe("a3")
  })

  test("14. a push consumer gets every message; the ones it fails come back with attempt 2 and are then consumed", async () => {
    const p = await producer("push")
    await Promise.all(Array.from({ length: 50 }, (_, i) => p.send({ topic: "push", body: Buffer.from(String(i)) })))
    const succeeded = new Map<string, number>()
    const push = new PushConsumer({
      endpoints: node.endpoints,
      consumerGroup: "g-push",
      subscriptions: new Map([["push", "*"]]),
      messageListener: {
        consume: async (m: MessageView) => {
          if (Number(body(m)) % 10 === 0 && m.deliveryAttempt === 1) return ConsumeResult.FAILURE
          succeeded.set(body(m), m.deliveryAttempt ?? 0)
          return ConsumeResult.SUCCESS
        }
      },
      logger
    } as any)
    await push.startup()
    clients.push(push)
    await eventually(() => succeeded.size === 50, 40_000)
    for (const [text, attempt] of succeeded) expect(attempt).toBe(Number(text) % 10 === 0 ? 2 : 1)
  }, 60_000)

  test("16. a delayed message is not delivered before its time, then is, with its delivery timestamp", async () => {
    const p = await producer("delay")
    const at = new Date(Date.now() + 3000)
    await p.send({ topic: "delay", body: Buffer.from("later"), deliveryTimestamp: at })
    const c = await simple("g-delay", { delay: "*" }, { awaitDuration: 1000 })
    expect((await c.receive(1, 10_000)).length).toBe(0)
    const [m] = await receiveSome(c, 1, 10_000, 10_000)
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime())
    expect(m!.deliveryTimestamp?.getTime()).toBe(at.getTime())
    const tooFar = await rejection(p.send({ topic: "delay", body: Buffer.from("next year"), deliveryTimestamp: new Date(Date.now() + 400 * 86_400_000) }))
    expect(codeOf(tooFar)).toBe(40012)
  }, 30_000)

  test("17. a recalled delayed message is never delivered; a normal send has no recall handle", async () => {
    const p = await producer("recall")
    const receipt = await p.send({ topic: "recall", body: Buffer.from("never"), deliveryTimestamp: new Date(Date.now() + 2000) })
    expect(receipt.recallHandle).toBeTruthy()
    const recalled = await p.recallMessage("recall", receipt.recallHandle)
    expect(recalled.messageId).toBe(receipt.messageId)
    await expect(p.recallMessage("recall", "garbage")).rejects.toThrow()
    const c = await simple("g-recall", { recall: "*" }, { awaitDuration: 4000 })
    expect((await c.receive(1, 10_000)).length).toBe(0)
    const plain = await producer("plain")
    expect((await plain.send({ topic: "plain", body: Buffer.from("x") })).recallHandle ?? "").toBe("")
  }, 30_000)

  test("18. a transaction's message is invisible until commit; a rolled-back one is never delivered", async () => {
    // the client requires a checker for transactions; this one leaves everything to the producer
    const p = await producer("tx", { checker: { check: async () => 0 } })
    const committed = p.beginTransaction()
    await p.send({ topic: "tx", body: Buffer.from("commit me") }, committed)
    const rolledBack = p.beginTransaction()
    await p.send({ topic: "tx", body: Buffer.from("roll me back") }, rolledBack)
    const c = await simple("g-tx", { tx: "*" }, { awaitDuration: 1000 })
    expect((await c.receive(32, 10_000)).length).toBe(0)
    await committed.commit()
    await rolledBack.rollback()
    expect((await drain(c, 5)).map(body)).toEqual(["commit me"])
  }, 30_000)

  test("19. an unresolved transaction is checked back on its producer, whose answer resolves it; one left undecided is checked N times, then discarded", async () => {
    const checked: Array<string> = []
    const p = await producer("tx-check", {
      checker: {
        check: async (m: MessageView) => {
          checked.push(body(m))
          // COMMIT, ROLLBACK, or no answer (UNSPECIFIED: the producer sends nothing)
          return body(m) === "commit on check" ? 1 : body(m) === "roll back on check" ? 2 : 0
        }
      }
    })
    const forCommit = p.beginTransaction()
    await p.send({ topic: "tx-check", body: Buffer.from("commit on check") }, forCommit)
    const forRollback = p.beginTransaction()
    await p.send({ topic: "tx-check", body: Buffer.from("roll back on check") }, forRollback)
    const undecided = p.beginTransaction()
    await p.send({ topic: "tx-check", body: Buffer.from("never decided") }, undecided)
    const c = await simple("g-tx-check", { "tx-check": "*" }, { awaitDuration: 2000 })
    const got = await receiveSome(c, 32, 10_000, 15_000)
    expect(got.map(body)).toEqual(["commit on check"])
    // the undecided one is checked transactionMaxChecks (2) times, 1.5 s apart, then discarded
    await eventually(() => checked.filter((b) => b === "never decided").length === 2, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 3500))
    expect(checked.filter((b) => b === "never decided").length).toBe(2)
    expect((await c.receive(32, 10_000)).length).toBe(0)
    expect(checked.filter((b) => b !== "never decided").sort()).toEqual(["commit on check", "roll back on check"])
  }, 30_000)

  test("20. a priority topic serves higher priority first, same priority in send order", async () => {
    const p = await producer("prio")
    for (let round = 0; round < 3; round++) {
      for (const priority of [1, 5, 10]) await p.send({ topic: "prio", body: Buffer.from(`${priority}-${round}`), priority })
    }
    const c = await simple("g-prio", { prio: "*" })
    const got = (await drain(c, 9)).map(body)
    expect(got).toEqual(["10-0", "10-1", "10-2", "5-0", "5-1", "5-2", "1-0", "1-1", "1-2"])
  }, 30_000)

  test("21. size and validation limits answer with RocketMQ's codes", async () => {
    const p = await producer("limits")
    const large = Buffer.alloc(4 * 1024 * 1024 - 17 * 1024, 7)
    await p.send({ topic: "limits", body: large })
    const c = await simple("g-limits", { limits: "*" })
    const [m] = await c.receive(1, 20_000)
    expect(m!.body.length).toBe(large.length)
    await expect(p.send({ topic: "limits", body: Buffer.alloc(large.length + 1) })).rejects.toThrow()
    expect(codeOf(await rejection(p.send({ topic: "limits", body: Buffer.alloc(0) })))).toBe(41302)
    expect(codeOf(await rejection(p.send({ topic: "limits", body: Buffer.from("x"), properties: new Map([["UNIQ_KEY", "x"]]) })))).toBe(40007)
    expect(codeOf(await rejection(p.send({ topic: "limits", body: Buffer.from("x"), tag: "a|b" })))).toBe(40004)
    const big = new Map(Array.from({ length: 10 }, (_, i) => [`key${i}`, "v".repeat(2000)] as [string, string]))
    expect(codeOf(await rejection(p.send({ topic: "limits", body: Buffer.from("x"), properties: big })))).toBe(43101)
  }, 30_000)

  test("22. a FIFO message to a NORMAL topic is refused", async () => {
    const p = await producer("limits")
    await expect(p.send({ topic: "limits", body: Buffer.from("x"), messageGroup: "g" })).rejects.toThrow()
  })

  test("23. namespaces keep the same topic name apart", async () => {
    for (const ns of ["ns1", "ns2"]) await node.admin("topic", "create", "shared", "--kind", "normal", "--namespace", ns)
    const inNs = async (ns: string, text: string) => {
      const p = await producer("shared", { namespace: ns })
      await p.send({ topic: "shared", body: Buffer.from(text) })
    }
    await inNs("ns1", "one")
    await inNs("ns2", "two")
    const read = async (ns: string) => drain(await simple("g-ns", { shared: "*" }, { namespace: ns }), 10)
    expect((await read("ns1")).map(body)).toEqual(["one"])
    expect((await read("ns2")).map(body)).toEqual(["two"])
  }, 30_000)
})
