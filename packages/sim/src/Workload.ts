/**
 * The clients of a simulated run, written with `@strait/client`, recording what they do in the
 * `History`:
 *
 * - producers send normal, FIFO (several message groups each, each group's sends one after another
 *   so its order is defined), delayed (some recalled before their time), priority, time-limited and
 *   transactional messages (committed or rolled back; check-backs answered from what the producer
 *   decided);
 * - consumers receive with an explicit invisibility, then acknowledge most messages, give some back
 *   (`ChangeInvisibility`), and forget some (they come back when their invisibility ends); while the
 *   run drains they acknowledge everything;
 * - a reader of the dead-letter topics notes what reached them;
 * - a pull consumer reads the normal topic by offset and commits its position.
 *
 * Every message's body is its workload key, so a delivery is matched to its send even when the send's
 * answer was lost.
 *
 * @since 0.1.0
 */
import { Producer, PullConsumer, StraitClient } from "@strait/client"
import { MessageBatch, ReceiptHandle } from "@strait/core"
import { MemoryTransport, type SimNetwork } from "@strait/transport"
import { Cause, Clock, Deferred, Duration, Effect, FiberSet, Layer, Random, Result, type Scope, Semaphore } from "effect"
import * as Checker from "./Checker.ts"
import type * as History from "./History.ts"

/**
 * The topics and groups of the workload. Sends are acknowledged once synced to disk (`flush: "sync"`),
 * so an acknowledged message survives any crash.
 *
 * @since 0.1.0
 */
export const topics = [
  { name: "orders", kind: "NORMAL", queues: 4, flush: "sync" },
  { name: "sequenced", kind: "FIFO", queues: 4, flush: "sync" },
  { name: "scheduled", kind: "DELAY", queues: 2, flush: "sync" },
  { name: "payments", kind: "TRANSACTION", queues: 2, flush: "sync" },
  { name: "ranked", kind: "PRIORITY", queues: 2, flush: "sync" }
] as const

/** @since 0.1.0 */
export const groups = [
  { name: "billing", fifo: false, maxDeliveryAttempts: 4, topics: ["orders", "scheduled", "payments", "ranked"] },
  { name: "ledger", fifo: true, maxDeliveryAttempts: 4, topics: ["sequenced"] }
] as const

/**
 * The pull consumers of the workload: each reads its topic by offset for its group.
 *
 * @since 0.1.0
 */
export const pullers = [{ name: "puller", group: "auditors", topic: "orders" }] as const

/**
 * How hard the workload pushes.
 *
 * @since 0.1.0
 */
export interface WorkloadOptions {
  readonly producers: number
  readonly consumers: number
  /** Messages per simulated second, all producers together. */
  readonly rate: number
  /** The rate as a multiple of `rate`, by the milliseconds since the workload started (default 1). */
  readonly ramp?: (elapsedMillis: number) => number
  /** How long a received message stays invisible. */
  readonly invisibleMillis: number
}

/**
 * The switches the scenario turns while the workload runs.
 *
 * @since 0.1.0
 */
export interface Control {
  /** Producers stop once this is set. */
  producing: boolean
  /** Consumers acknowledge everything once this is set. */
  draining: boolean
}

const text = new TextDecoder()

// an error as one line: its tag and what it says
const describe = (error: unknown) => {
  if (typeof error !== "object" || error === null) return String(error)
  const fields = error as { readonly _tag?: string; readonly reason?: unknown; readonly cause?: unknown }
  return [fields._tag, fields.reason, typeof fields.cause === "string" ? fields.cause : undefined].filter((part) => part !== undefined && part !== "").join(": ")
}

// one client's connection on the simulated network, named `name`
const clientLayer = (name: string, endpoints: ReadonlyArray<string>, producerTopics: ReadonlyArray<string> = []) =>
  Layer.fresh(
    StraitClient.StraitClient.layer({ endpoints, clientId: name, producerTopics, requestTimeout: Duration.seconds(5) }).pipe(
      Layer.provide(MemoryTransport.layer(name))
    )
  )

/**
 * One of `options`, chosen by `Random`.
 *
 * @since 0.1.0
 */
export const pickOne = <A>(options: ReadonlyArray<A>) => Effect.map(Random.nextIntBetween(0, options.length - 1), (i) => options[i]!)

/**
 * One producer until `control.producing` turns off.
 *
 * @since 0.1.0
 */
export const producer = (name: string, endpoints: ReadonlyArray<string>, history: History.History, control: Control, options: WorkloadOptions) =>
  Effect.gen(function*() {
    // the producer's decisions, which its check-backs answer from
    const committed = new Set<string>()
    const layer = Producer.Producer.layer({
      checker: (message) => Effect.succeed(committed.has(text.decode(message.body)) ? "COMMIT" : "ROLLBACK")
    }).pipe(Layer.provideMerge(clientLayer(name, endpoints, ["payments"])))
    const meanGapMillis = (1000 * options.producers) / options.rate
    const began = yield* Clock.currentTimeMillis
    const sequences = new Map<string, number>()
    let n = 0
    yield* Effect.gen(function*() {
      const send = yield* Producer.Producer
      // sends overlap (at most 64 at a time); a message group's sends go one after another, in order
      const inFlight = yield* Semaphore.make(64)
      const sending = yield* FiberSet.make()
      const tails = new Map<string, Deferred.Deferred<void>>()
      const launch = (one: Effect.Effect<void>, messageGroup?: string) =>
        Effect.gen(function*() {
          yield* inFlight.take(1)
          const before = messageGroup === undefined ? undefined : tails.get(messageGroup)
          const done = Deferred.makeUnsafe<void>()
          if (messageGroup !== undefined) tails.set(messageGroup, done)
          const ordered = before === undefined ? one : Effect.andThen(Deferred.await(before), one)
          yield* FiberSet.run(sending, ordered.pipe(Effect.ensuring(Effect.andThen(Deferred.succeed(done, undefined), inFlight.release(1)))))
        })
      while (control.producing) {
        const scale = options.ramp === undefined ? 1 : Math.max(0.01, options.ramp((yield* Clock.currentTimeMillis) - began))
        yield* Effect.sleep(Duration.millis(Math.max(1, Math.round(-Math.log(1 - (yield* Random.next)) * meanGapMillis / scale))))
        if (!control.producing) break
        const key = `${name}-${++n}`
        const roll = yield* Random.next
        const record = (at: number, event: Omit<History.Sent, "type" | "client" | "key" | "at" | "completedAt">) =>
          Effect.map(Clock.currentTimeMillis, (completedAt) => void history.events.push({ type: "send", at, completedAt, client: name, key, ...event }))
        if (roll < 0.4) {
          // normal, a third of them with a time to live
          const ttl = (yield* Random.next) < 0.3 ? yield* Random.nextIntBetween(2_000, 10_000) : undefined
          yield* launch(Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            const exit = yield* Effect.exit(send.send({ topic: "orders", body: key, ...(ttl === undefined ? {} : { timeToLive: Duration.millis(ttl) }) }))
            yield* record(at, {
              topic: "orders",
              kind: "NORMAL",
              outcome: exit._tag === "Success" ? "ok" : "fail",
              ...(exit._tag === "Success" ? { messageId: exit.value.messageId } : {}),
              ...(ttl === undefined ? {} : { ttlMillis: ttl })
            })
          }))
        } else if (roll < 0.7) {
          const messageGroup = `${name}-g${yield* Random.nextIntBetween(0, 3)}`
          const sequence = (sequences.get(messageGroup) ?? 0) + 1
          sequences.set(messageGroup, sequence)
          yield* launch(
            Effect.gen(function*() {
              const at = yield* Clock.currentTimeMillis
              const exit = yield* Effect.exit(send.send({ topic: "sequenced", body: key, messageGroup }))
              yield* record(at, {
                topic: "sequenced",
                kind: "FIFO",
                messageGroup,
                sequence,
                outcome: exit._tag === "Success" ? "ok" : "fail",
                ...(exit._tag === "Success" ? { messageId: exit.value.messageId } : {})
              })
            }),
            messageGroup
          )
        } else if (roll < 0.8) {
          const delay = yield* Random.nextIntBetween(100, 5_000)
          // a fifth of them recalled a while after they were sent (a recall that succeeds cancels it)
          const recallAfter = (yield* Random.next) < 0.2 ? yield* Random.nextIntBetween(0, delay) : undefined
          yield* launch(Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            const deliverAt = at + delay
            const exit = yield* Effect.exit(send.send({ topic: "scheduled", body: key, deliverAt }))
            yield* record(at, {
              topic: "scheduled",
              kind: "DELAY",
              deliverAt,
              outcome: exit._tag === "Success" ? "ok" : "fail",
              ...(exit._tag === "Success" ? { messageId: exit.value.messageId } : {})
            })
            const recallHandle = exit._tag === "Success" ? exit.value.recallHandle : undefined
            if (recallAfter === undefined || recallHandle === undefined) return
            yield* Effect.sleep(Duration.millis(recallAfter))
            const invokedAt = yield* Clock.currentTimeMillis
            const recalled = yield* Effect.exit(send.recall("scheduled", recallHandle))
            history.events.push({ type: "recall", at: yield* Clock.currentTimeMillis, invokedAt, client: name, key, outcome: recalled._tag === "Success" ? "ok" : "fail" })
          }))
        } else if (roll < 0.85) {
          // priority: higher first (no order is checked; every rule else is)
          const priority = yield* Random.nextIntBetween(0, 9)
          yield* launch(Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            const exit = yield* Effect.exit(send.send({ topic: "ranked", body: key, priority }))
            yield* record(at, {
              topic: "ranked",
              kind: "PRIORITY",
              outcome: exit._tag === "Success" ? "ok" : "fail",
              ...(exit._tag === "Success" ? { messageId: exit.value.messageId } : {})
            })
          }))
        } else {
          const commit = (yield* Random.next) < 0.7
          yield* launch(Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            const exit = yield* Effect.exit(send.transaction((sendHalf) =>
              Effect.gen(function*() {
                const receipt = yield* sendHalf({ topic: "payments", body: key })
                if (!commit) return yield* Effect.fail("rolled back by the workload" as const)
                committed.add(key)
                return receipt
              })
            ))
            yield* record(at, {
              topic: "payments",
              kind: "TRANSACTION",
              resolution: committed.has(key) ? "COMMIT" : "ROLLBACK",
              outcome: exit._tag === "Success" ? "ok" : "fail",
              ...(exit._tag === "Success" ? { messageId: exit.value.messageId } : {})
            })
          }))
        }
      }
      // the sends still out finish before the producer does
      yield* FiberSet.awaitEmpty(sending)
    }).pipe(Effect.provide(layer))
  })

interface Received {
  readonly key: string
  readonly receiptHandle: string
}

/**
 * One consumer of every group's topics (and, when `deadLetters`, of their dead-letter topics), until
 * interrupted.
 *
 * @since 0.1.0
 */
export const consumer = (
  name: string,
  endpoints: ReadonlyArray<string>,
  history: History.History,
  control: Control,
  options: WorkloadOptions,
  deadLetters = false
): Effect.Effect<void, never, Scope.Scope | SimNetwork.SimNetwork> =>
  Effect.gen(function*() {
    const lines = deadLetters
      ? groups.map((group) => ({ group: "dead-letters", topic: Checker.deadLetterTopic(group.name) }))
      : groups.flatMap((group) => group.topics.map((topic) => ({ group: group.name, topic })))
    yield* Effect.gen(function*() {
      const client = yield* StraitClient.StraitClient
      const settle = (group: string, topic: string, message: Received) =>
        Effect.gen(function*() {
          yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(0, 50)))
          const roll = control.draining || deadLetters ? 0 : yield* Random.next
          if (roll >= 0.9) return // forgotten: it comes back when its invisibility ends
          const type = roll < 0.8 ? "ack" : "nack"
          const invokedAt = yield* Clock.currentTimeMillis
          const note = (outcome: History.Settled["outcome"]) =>
            Effect.map(Clock.currentTimeMillis, (at) =>
              void history.events.push({ type, at, invokedAt, client: name, group, key: message.key, receiptHandle: message.receiptHandle, outcome }))
          // a consumer that crashes while it waits for the answer leaves the outcome unknown
          const exit = yield* Effect.exit(
            type === "ack"
              ? Effect.map(client.call({ _tag: "Ack", group, topic, receiptHandles: [message.receiptHandle] }, "Acked"), (answer) => answer.failures.length === 0)
              : Effect.as(client.call({ _tag: "ChangeInvisibility", group, topic, receiptHandle: message.receiptHandle, invisibleMillis: 1000 }, "Changed"), true)
          ).pipe(Effect.onInterrupt(() => note("unknown")))
          yield* note(exit._tag === "Success" && exit.value ? "ok" : "fail")
        })
      const loop = (group: string, topic: string) =>
        Effect.forever(Effect.gen(function*() {
          const requestedAt = yield* Clock.currentTimeMillis
          const answer = yield* Effect.exit(client.call({ _tag: "Receive", group, topic, maxMessages: 8, invisibleMillis: options.invisibleMillis, pollMillis: 1000 }, "Received", 1000))
          const now = yield* Clock.currentTimeMillis
          if (answer._tag === "Failure") {
            history.events.push({ type: "receive-failed", at: now, client: name, group, reason: describe(Cause.squash(answer.cause)) })
            return yield* Effect.sleep(Duration.millis(200))
          }
          const messages = MessageBatch.decodeStored(answer.value.messages)
          if (Result.isFailure(messages)) {
            history.events.push({ type: "receive-failed", at: now, client: name, group, reason: messages.failure.reason })
            return
          }
          const received = messages.success.map((message, i): Received => {
            const key = text.decode(message.body)
            const handle = answer.value.handles[i]!
            history.events.push({
              type: "deliver",
              at: now,
              requestedAt,
              client: name,
              group,
              topic,
              key,
              messageId: message.messageId,
              copy: `${ReceiptHandle.peek(handle.receiptHandle)?.brokerName ?? "?"}/${message.queueId}@${message.queueOffset}`,
              storedAt: message.storeTimestamp,
              attempt: message.deliveryAttempt,
              receiptHandle: handle.receiptHandle,
              invisibleUntil: handle.invisibleUntil
            })
            return { key, receiptHandle: handle.receiptHandle }
          })
          yield* Effect.forEach(received, (message) => settle(group, topic, message), { concurrency: "unbounded", discard: true })
        }))
      yield* Effect.forEach(lines, ({ group, topic }) => Effect.forkScoped(loop(group, topic)), { discard: true })
      return yield* Effect.never
    }).pipe(Effect.provide(clientLayer(name, endpoints)))
  })

/**
 * A pull consumer of `topic` for `group` until interrupted: it reads every queue part of the topic
 * (one per broker that served the queue) from its group's committed offset, notes each message, and
 * commits its position after each pull.
 *
 * @since 0.1.0
 */
export const puller = (
  name: string,
  endpoints: ReadonlyArray<string>,
  history: History.History,
  target: { readonly group: string; readonly topic: string }
): Effect.Effect<void, never, Scope.Scope | SimNetwork.SimNetwork> =>
  Effect.gen(function*() {
    const consumer = yield* PullConsumer.make(target)
    const round = Effect.gen(function*() {
      let pulled = 0
      for (const queue of yield* consumer.queues) {
        const messages = yield* consumer.pull(queue, 32)
        const at = yield* Clock.currentTimeMillis
        for (const message of messages) {
          const key = text.decode(message.body)
          history.events.push({ type: "pull", at, client: name, ...target, key, copy: `${queue.broker}/${queue.queueId}@${message.queueOffset}` })
        }
        pulled += messages.length
        if (messages.length === 0) continue
        const offset = yield* consumer.position(queue)
        const committed = yield* Effect.exit(consumer.commit(queue))
        history.events.push({
          type: "commit",
          at: yield* Clock.currentTimeMillis,
          client: name,
          group: target.group,
          queue: `${queue.broker}/${queue.queueId}`,
          offset,
          outcome: committed._tag === "Success" ? "ok" : "fail"
        })
      }
      if (pulled === 0) yield* Effect.sleep(Duration.millis(500))
    })
    return yield* Effect.forever(round.pipe(Effect.catch(() => Effect.sleep(Duration.millis(500)))))
  }).pipe(Effect.provide(clientLayer(name, endpoints)))
