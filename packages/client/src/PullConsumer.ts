/**
 * Reading queues by offset: a pull consumer chooses which queue it reads and from where, and commits
 * how far it got, as Kafka consumers and RocketMQ pull consumers do.
 *
 * **Details**
 *
 * A queue is one broker's queue of the topic (`{ broker, queueId }`): offsets count per broker, so
 * after a broker failover the topic's queue has a part on each broker that served it. `queues` lists
 * them all. `pull(queue)` reads from the consumer's position on it: the group's committed offset,
 * else the queue's start, then wherever the last pull ended; `commit(queue)` stores the position.
 *
 * @since 0.1.0
 */
import { type Message, MessageBatch } from "@strait/core"
import { Effect, Result } from "effect"
import * as Protocol from "./Protocol.ts"
import { StraitClient } from "./StraitClient.ts"

/**
 * One broker's queue of a topic, with its first and next offsets when listed.
 *
 * @since 0.1.0
 */
export interface PullQueue {
  readonly broker: string
  readonly queueId: number
  readonly start: number
  readonly end: number
}

const keyOf = (queue: { readonly broker: string; readonly queueId: number }) => `${queue.broker}/${queue.queueId}`

/**
 * A pull consumer of `topic` for `group`.
 *
 * @since 0.1.0
 */
export const make = (options: { readonly group: string; readonly topic: string; readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string } }) =>
  Effect.gen(function*() {
    const client = yield* StraitClient
    const positions = new Map<string, number>()
    const target = (queue: PullQueue) => ({ topic: options.topic, broker: queue.broker, queueId: queue.queueId })

    const position = (queue: PullQueue) =>
      Effect.gen(function*() {
        const known = positions.get(keyOf(queue))
        if (known !== undefined) return known
        const committed = yield* client.call({ _tag: "QueryOffset", group: options.group, ...target(queue) }, "Offset")
        const start = Math.max(queue.start, committed.offset ?? queue.start)
        positions.set(keyOf(queue), start)
        return start
      })

    return {
      /** Every queue of the topic on every broker, with its bounds now. */
      queues: Effect.map(client.call({ _tag: "PullQueues", topic: options.topic }, "Queues"), (answer): ReadonlyArray<PullQueue> => answer.queues),
      /** The consumer's position on a queue: where the next pull starts. */
      position,
      /** Up to `maxCount` messages of the queue from the consumer's position, which moves past them. */
      pull: (queue: PullQueue, maxCount = 32) =>
        Effect.gen(function*() {
          const offset = yield* position(queue)
          const answer = yield* client.call({
            _tag: "Pull",
            ...target(queue),
            offset,
            maxCount,
            ...(options.filter === undefined ? {} : { filter: options.filter })
          }, "Pulled")
          const messages = MessageBatch.decodeStored(answer.messages)
          if (Result.isFailure(messages)) {
            return yield* new Protocol.Unavailable({ reason: `pulled messages do not decode: ${messages.failure.reason}`, cause: "MalformedMessageBatch" })
          }
          positions.set(keyOf(queue), answer.nextOffset)
          return messages.success as ReadonlyArray<Message.StoredMessage>
        }),
      /** Moves the position on a queue (to read again, or skip). */
      seek: (queue: PullQueue, offset: number) => Effect.sync(() => void positions.set(keyOf(queue), offset)),
      /** Stores the consumer's position on the queue as the group's offset. */
      commit: (queue: PullQueue) =>
        Effect.flatMap(position(queue), (offset) => Effect.asVoid(client.call({ _tag: "CommitOffset", group: options.group, ...target(queue), offset }, "Done")))
    }
  })

/**
 * A pull consumer.
 *
 * @since 0.1.0
 */
export type PullConsumer = Effect.Success<ReturnType<typeof make>>
