/**
 * Consuming messages with Pop: `Consumer.run` hands each message of a topic to a handler for a group;
 * the handler's success acknowledges it, its failure gives it back to be delivered again later.
 * `Consumer.stream` gives the same messages as a `Stream`, each to be acknowledged, given back or
 * dead-lettered by whoever consumes the stream.
 *
 * **Details**
 *
 * - Acknowledgements of handlers that finish at about the same time travel in one request.
 * - Messages are received with automatic renewal: the proxy keeps them invisible to the rest of the
 *   group while this client lives, however long a handler takes.
 * - A failed handler's message comes back after `retryDelay(attempt)` (default: 1 s, doubling, at most
 *   a minute), its delivery attempt one higher; past the group's most attempts it goes to the group's
 *   dead-letter topic (the broker's rule).
 * - At most `prefetch` messages wait for a handler; `concurrency` handlers run at once. A FIFO group
 *   gets a message group's next message only after its head is acknowledged, so groups stay in order
 *   whatever the concurrency.
 * - Interrupting `run` stops receiving, lets the handlers running finish (and acknowledges or gives
 *   back their messages), and gives back the messages still waiting; a receive in flight ends within
 *   its poll time and what it brings is given back.
 *
 * @since 0.1.0
 */
import { type Message, MessageBatch } from "@strait/core"
import { Cause, Data, Deferred, Duration, Effect, Exit, Fiber, Queue, Result, Schema, Stream } from "effect"
import * as Batcher from "./internal/Batcher.ts"
import * as Protocol from "./Protocol.ts"
import { StraitClient } from "./StraitClient.ts"

/**
 * A received message and its handle.
 *
 * @since 0.1.0
 */
export interface Delivery {
  readonly message: Message.StoredMessage
  readonly receiptHandle: string
}

/**
 * What a consumer consumes, and how.
 *
 * @since 0.1.0
 */
export interface ConsumerOptions {
  readonly group: string
  readonly topic: string
  readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
  /** Handlers running at once (default 1). */
  readonly concurrency?: number
  /** Messages received ahead of the handlers (default 32). */
  readonly prefetch?: number
  /** How long a receive waits for a message (default 2 s; a stop waits for it at most this long). */
  readonly pollTime?: Duration.Input
  /** When a message whose handler failed comes back, by its delivery attempt. */
  readonly retryDelay?: (attempt: number) => Duration.Input
}

/**
 * What a handler returns when it settled the message itself (forwarded it to the dead-letter topic):
 * `run` then neither acknowledges nor gives it back.
 *
 * @since 0.1.0
 */
export const alreadySettled: unique symbol = Symbol.for("@strait/client/Consumer/alreadySettled")

/**
 * `alreadySettled`'s type.
 *
 * @since 0.1.0
 */
export type AlreadySettled = typeof alreadySettled

const defaultRetryDelay = (attempt: number) => Duration.millis(Math.min(60_000, 1000 * 2 ** Math.max(0, attempt - 1)))

/**
 * A consumer's receiving half, for as long as the scope lives: a receiver fiber that keeps the
 * waiting line (at most `prefetch` messages) filled, and how a message is settled or given back.
 */
interface Receiving {
  readonly waiting: Queue.Queue<Delivery, Protocol.Failure>
  /** Ends with the receiver's failure; never succeeds. */
  readonly receiver: Fiber.Fiber<never, Protocol.Failure>
  /** Acknowledges (acknowledgements made together travel in one request). */
  readonly ack: (delivery: Delivery) => Effect.Effect<void, Protocol.Failure>
  /** Gives the message back, to come again after `retryDelay` of its delivery attempt. */
  readonly nack: (delivery: Delivery) => Effect.Effect<void, Protocol.Failure>
  /** Moves the message to the group's dead-letter topic. */
  readonly deadLetter: (delivery: Delivery) => Effect.Effect<void, Protocol.Failure>
  /** Gives messages back at once (ignoring failures: they come back when their window ends anyway). */
  readonly release: (deliveries: ReadonlyArray<Delivery>) => Effect.Effect<void>
  /** Gives back what waits in the line. */
  readonly giveBackWaiting: Effect.Effect<void>
  /** Stops receiving (a receive in flight finishes first) and gives back what waits. */
  readonly stop: Effect.Effect<void>
}

const forwardToDeadLetter = (
  client: StraitClient["Service"],
  target: { readonly group: string; readonly topic: string },
  delivery: Delivery
) => Effect.asVoid(client.call({ _tag: "ForwardToDeadLetter", ...target, receiptHandle: delivery.receiptHandle }, "Done"))

const receiving = (options: ConsumerOptions) =>
  Effect.gen(function*() {
    const client = yield* StraitClient
    const prefetch = Math.max(1, options.prefetch ?? 32)
    const pollMillis = Duration.toMillis(Duration.fromInputUnsafe(options.pollTime ?? Duration.seconds(2)))
    const retryDelay = options.retryDelay ?? defaultRetryDelay
    const waiting = yield* Queue.bounded<Delivery, Protocol.Failure>(prefetch)
    const target = { group: options.group, topic: options.topic }
    // acknowledgements of handlers finishing at about the same time go in one request
    const acknowledge = yield* Batcher.make<string, void, Protocol.Failure>(
      { maxBatch: 256, slotLease: Batcher.slotLease },
      (receiptHandles) =>
        Effect.map(Effect.result(client.call({ _tag: "Ack", ...target, receiptHandles: [...receiptHandles] }, "Acked")), (answer) => {
          if (Result.isFailure(answer)) return receiptHandles.map(() => Exit.fail(answer.failure))
          const outcomes: Array<Exit.Exit<void, Protocol.Failure>> = receiptHandles.map(() => Exit.void)
          for (const { error, index } of answer.success.failures) outcomes[index] = Exit.fail(error)
          return outcomes
        }),
      new Protocol.Unavailable({ reason: "the answer lacks this acknowledgement's result", cause: "MalformedResponse" })
    )

    const release = (deliveries: ReadonlyArray<Delivery>) =>
      deliveries.length === 0
        ? Effect.void
        : Effect.ignore(client.call({ _tag: "Release", ...target, receiptHandles: deliveries.map((d) => d.receiptHandle) }, "Done"))

    // one receive, whole: what it brings goes to the waiting line, or back if the line is closed
    const receiveOnce = Effect.gen(function*() {
      const room = Math.max(1, Math.min(32, prefetch - (yield* Queue.size(waiting))))
      const answer = yield* client.call({
        _tag: "Receive",
        ...target,
        maxMessages: room,
        pollMillis,
        ...(options.filter === undefined ? {} : { filter: options.filter })
      }, "Received", pollMillis)
      const messages = MessageBatch.decodeStored(answer.messages)
      if (Result.isFailure(messages)) {
        return yield* new Protocol.Unavailable({ reason: `received messages do not decode: ${messages.failure.reason}`, cause: "MalformedMessageBatch" })
      }
      const deliveries = messages.success.map((message, i): Delivery => ({ message, receiptHandle: answer.handles[i]!.receiptHandle }))
      for (let i = 0; i < deliveries.length; i++) {
        if (!(yield* Queue.offer(waiting, deliveries[i]!))) return yield* release(deliveries.slice(i))
      }
    })

    // what waits goes back (a line that failed holds nothing more to give)
    const giveBackWaiting = Effect.flatMap(Effect.orElseSucceed(Queue.clear(waiting), (): ReadonlyArray<Delivery> => []), release)

    // the receiver: each receive runs whole, so a stop never drops what one brought
    const receiver = yield* Effect.forkScoped(Effect.forever(Effect.uninterruptibleMask((restore) =>
      Effect.andThen(restore(Effect.void), receiveOnce.pipe(
        Effect.catch((error) =>
          error._tag === "Unavailable" || error._tag === "Throttled"
            ? Effect.logDebug("receiving failed; trying again in a second", error).pipe(Effect.andThen(Effect.sleep(Duration.seconds(1))))
            : Effect.fail(error))
      ))
    )))

    const receiving: Receiving = {
      waiting,
      receiver,
      ack: (delivery) => acknowledge(delivery.receiptHandle),
      nack: (delivery) =>
        Effect.asVoid(client.call({
          _tag: "ChangeInvisibility",
          ...target,
          receiptHandle: delivery.receiptHandle,
          invisibleMillis: Duration.toMillis(Duration.fromInputUnsafe(retryDelay(delivery.message.deliveryAttempt)))
        }, "Changed")),
      deadLetter: (delivery) => forwardToDeadLetter(client, target, delivery),
      release,
      giveBackWaiting,
      stop: Effect.andThen(Fiber.interrupt(receiver), giveBackWaiting)
    }
    return receiving
  })

/**
 * Receives the messages of `options.topic` for `options.group` until interrupted, handing each to
 * `handler`: success acknowledges it, failure gives it back for a later attempt.
 *
 * @since 0.1.0
 */
export const run = <E, R>(
  options: ConsumerOptions,
  handler: (delivery: Delivery) => Effect.Effect<void | AlreadySettled, E, R>
): Effect.Effect<never, Protocol.Failure, StraitClient | R> =>
  Effect.gen(function*() {
    const concurrency = Math.max(1, options.concurrency ?? 1)
    const { ack, nack, receiver, stop, waiting } = yield* receiving(options)

    const handle = (delivery: Delivery) =>
      Effect.exit(handler(delivery)).pipe(
        Effect.flatMap((exit) =>
          Exit.isSuccess(exit) && exit.value === alreadySettled
            ? Effect.void
            : Exit.isSuccess(exit)
            ? ack(delivery)
            : nack(delivery)
        ),
        Effect.catch((error) => Effect.logWarning(`settling message ${delivery.message.messageId} failed; it comes back when its window ends`, error))
      )

    // a worker takes a message (interruptible while it waits) and handles it whole (not interruptible)
    const worker = Effect.forever(Effect.uninterruptibleMask((restore) => Effect.flatMap(Effect.orDie(restore(Queue.take(waiting))), handle)))
    const workers = yield* Effect.forEach(Array.from({ length: concurrency }), () => Effect.forkChild(worker))
    // stopping: no more receives (one in flight finishes first), what waits goes back, handlers finish
    return yield* (Fiber.join(receiver).pipe(Effect.ensuring(Effect.andThen(stop, Fiber.interruptAll(workers)))) as Effect.Effect<never, Protocol.Failure>)
  }).pipe(Effect.scoped) as Effect.Effect<never, Protocol.Failure, StraitClient | R>

/**
 * A message as {@link stream} gives it, with how to settle it.
 *
 * @since 0.1.0
 */
export interface Received extends Delivery {
  /** Acknowledges the message: it is done. */
  readonly ack: Effect.Effect<void, Protocol.Failure>
  /** Gives the message back: it comes again after `retryDelay` of its delivery attempt, one attempt higher. */
  readonly nack: Effect.Effect<void, Protocol.Failure>
  /** Moves the message to the group's dead-letter topic (`%DLQ%<group>`), keeping its id and origin. */
  readonly deadLetter: Effect.Effect<void, Protocol.Failure>
}

/**
 * What a consumer stream consumes, and how: {@link ConsumerOptions} but `concurrency`, which whoever
 * consumes the stream decides.
 *
 * @since 0.1.0
 */
export type StreamOptions = Omit<ConsumerOptions, "concurrency">

const streamEnded = new Protocol.InvalidReceiptHandle({
  reason: "the stream that received this message has ended, and gave back what it had not settled",
  cause: "StreamEnded"
})

/**
 * The messages of `options.topic` for `options.group` as a `Stream`: each element is settled by
 * its `ack`, `nack` or `deadLetter`. The stream runs until its consumer stops pulling (interruption, `Stream.take`,
 * an error downstream); then receiving stops (a receive in flight ends within `pollTime`), and every
 * message received but neither acknowledged nor given back goes back to the group at once (its
 * `ack`, `nack` and `deadLetter` then fail with `InvalidReceiptHandle`, cause `StreamEnded`). At most
 * `prefetch` messages wait in the stream's line, and about as many more in the chunk its consumer is
 * working through; downstream decides the concurrency (`Stream.mapEffect(f, { concurrency })`). A
 * receive that fails for good (`Unauthorized`, a topic that does not exist) fails the stream.
 *
 * @since 0.1.0
 */
export const stream = (options: StreamOptions): Stream.Stream<Received, Protocol.Failure, StraitClient> =>
  Stream.unwrap(Effect.gen(function*() {
    const { ack, deadLetter, giveBackWaiting, nack, receiver, release, stop, waiting } = yield* receiving(options)
    // handed out and not yet settled, by receipt handle
    const unsettled = new Map<string, Delivery>()
    let ended = false
    yield* Effect.addFinalizer(() =>
      Effect.andThen(stop, Effect.suspend(() => {
        ended = true
        const left = [...unsettled.values()]
        unsettled.clear()
        return release(left)
      })))
    // a receiver that fails for good ends the stream with its failure
    yield* Effect.forkScoped(Effect.flatMap(Fiber.await(receiver), (exit) =>
      Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? Effect.andThen(giveBackWaiting, Queue.failCause(waiting, exit.cause)) : Effect.void))
    const settle = (delivery: Delivery, how: (delivery: Delivery) => Effect.Effect<void, Protocol.Failure>) =>
      Effect.suspend(() => {
        if (ended) return Effect.fail(streamEnded)
        unsettled.delete(delivery.receiptHandle)
        return how(delivery)
      })
    return Stream.map(Stream.fromQueue(waiting), (delivery): Received => {
      unsettled.set(delivery.receiptHandle, delivery)
      return {
        message: delivery.message,
        receiptHandle: delivery.receiptHandle,
        ack: settle(delivery, ack),
        nack: settle(delivery, nack),
        deadLetter: settle(delivery, deadLetter)
      }
    })
  }))

/**
 * A message as a typed stream (`Consumer.schema(S).stream`) gives it: with its body's decoded value.
 *
 * @since 0.1.0
 */
export interface TypedReceived<A> extends Received {
  readonly value: A
}

/**
 * What to do with a message whose body does not decode with the consumer's schema.
 *
 * @since 0.1.0
 */
export type DecodeErrorPolicy = "dead-letter" | "skip" | "fail"

/**
 * A message body did not decode with the consumer's schema (policy `fail` stops the consumer with it;
 * the message is given back).
 *
 * @since 0.1.0
 */
export class BodyDecodeFailed extends Data.TaggedError("BodyDecodeFailed")<{
  readonly messageId: string
  readonly topic: string
  readonly reason: string
}> {}

/**
 * A consumer of typed messages: bodies are JSON decoded with `schema` before the handler sees them.
 * A body that does not decode is dead-lettered, skipped (acknowledged unhandled), or stops the
 * consumer with `BodyDecodeFailed`, as `onDecodeError` says (default `dead-letter`); it never
 * reaches the handler and never crashes anything.
 *
 * @since 0.1.0
 */
export const schema = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  policy: { readonly onDecodeError?: DecodeErrorPolicy } = {}
) => {
  const decode = Schema.decodeUnknownExit(Schema.fromJsonString(schema) as unknown as Schema.Codec<S["Type"], string>)
  const onDecodeError = policy.onDecodeError ?? "dead-letter"
  // the body's value, or why it does not decode
  const decodeBody = (delivery: Delivery): Result.Result<S["Type"], BodyDecodeFailed> => {
    const decoded = decode(textDecoder.decode(delivery.message.body))
    return Exit.isSuccess(decoded)
      ? Result.succeed(decoded.value as S["Type"])
      : Result.fail(new BodyDecodeFailed({ messageId: delivery.message.messageId, topic: delivery.message.topic, reason: String(Cause.squash(decoded.cause)) }))
  }
  const skipped = (delivery: Delivery, failure: BodyDecodeFailed) =>
    Effect.logWarning(`skipping message ${delivery.message.messageId}: its body does not decode`, failure)
  // moved to the dead-letter topic by `forward`; a failure to move it is logged (it comes back later)
  const deadLettered = (delivery: Delivery, failure: BodyDecodeFailed, forward: Effect.Effect<void, Protocol.Failure>) =>
    forward.pipe(
      Effect.andThen(Effect.logWarning(`message ${delivery.message.messageId} went to the dead-letter topic: its body does not decode`, failure)),
      Effect.catch((error) => Effect.logWarning(`could not dead-letter message ${delivery.message.messageId}`, error))
    )
  return {
    run: <E, R>(
      options: ConsumerOptions,
      handler: (value: S["Type"], delivery: Delivery) => Effect.Effect<void, E, R>
    ): Effect.Effect<never, Protocol.Failure | BodyDecodeFailed, StraitClient | R> =>
      Effect.gen(function*() {
        const client = yield* StraitClient
        const fatal = yield* Deferred.make<never, BodyDecodeFailed>()
        const target = { group: options.group, topic: options.topic }
        const typed = (delivery: Delivery): Effect.Effect<void | AlreadySettled, E, R> => {
          const decoded = decodeBody(delivery)
          if (Result.isSuccess(decoded)) return handler(decoded.success, delivery)
          const failure = decoded.failure
          switch (onDecodeError) {
            case "skip":
              return skipped(delivery, failure)
            case "dead-letter":
              return Effect.as(deadLettered(delivery, failure, forwardToDeadLetter(client, target, delivery)), alreadySettled)
            case "fail":
              return client.call({ _tag: "Release", ...target, receiptHandles: [delivery.receiptHandle] }, "Done").pipe(
                Effect.ignore,
                Effect.andThen(Deferred.fail(fatal, failure)),
                Effect.as(alreadySettled)
              )
          }
        }
        return yield* Effect.raceFirst(run(options, typed), Deferred.await(fatal))
      }) as Effect.Effect<never, Protocol.Failure | BodyDecodeFailed, StraitClient | R>,
    /**
     * {@link stream} of decoded messages: each element carries its body's `value`. A body that does
     * not decode never reaches the stream: it is acknowledged (`skip`), moved to the dead-letter topic
     * (`dead-letter`), or fails the stream with `BodyDecodeFailed` (`fail`; the message goes back as
     * the stream ends).
     */
    stream: (options: StreamOptions): Stream.Stream<TypedReceived<S["Type"]>, Protocol.Failure | BodyDecodeFailed, StraitClient> =>
      Stream.filterMapEffect(stream(options), (received): Effect.Effect<Result.Result<TypedReceived<S["Type"]>, void>, BodyDecodeFailed> => {
        const decoded = decodeBody(received)
        if (Result.isSuccess(decoded)) return Effect.succeed(Result.succeed({ ...received, value: decoded.success }))
        const failure = decoded.failure
        switch (onDecodeError) {
          case "skip":
            return Effect.as(
              Effect.andThen(
                skipped(received, failure),
                Effect.catch(received.ack, (error) => Effect.logWarning(`acknowledging skipped message ${received.message.messageId} failed; it comes back when its window ends`, error))
              ),
              Result.failVoid
            )
          case "dead-letter":
            return Effect.as(deadLettered(received, failure, received.deadLetter), Result.failVoid)
          case "fail":
            return Effect.fail(failure)
        }
      })
  }
}

const textDecoder = new TextDecoder()
