/**
 * The broker's data-plane server: answers `Protocol` requests arriving over any `Transport`.
 *
 * Each connection is served with request multiplexing (many requests in flight, answered as they
 * finish). A request that does not decode is answered with `BadRequest`; every failure is answered with
 * its typed error; a defect is logged and answered with `BrokerUnavailable`: a bad request fails only
 * itself and nothing crashes the broker.
 *
 * @since 0.1.0
 */
import { Bytes, ConsumerGroup, Frame, MessageBatch, Transport } from "@strait/core"
import { Multiplex } from "@strait/transport"
import { Cause, Duration, Effect, Layer, Result, Schema, Stream } from "effect"
import * as Broker from "./Broker.ts"
import * as Filter from "./Filter.ts"
import * as Protocol from "./Protocol.ts"

const isFailure = Schema.is(Protocol.Failure)

// an error of the protocol as it is; anything else (a storage failure) as the broker being unavailable
const asFailure = (error: unknown): Protocol.Failure =>
  isFailure(error)
    ? error
    : new Protocol.BrokerUnavailable({ reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })

const failed = (error: unknown): Protocol.Response => ({ _tag: "Failed", error: asFailure(error) })

const decodeMessages = (bytes: Uint8Array) => {
  const decoded = MessageBatch.decode(bytes)
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : Result.fail(new Protocol.BadRequest({ reason: `the messages do not decode: ${decoded.failure.reason}` }))
}

const filterOf = (expression: { readonly type: "TAG" | "SQL92"; readonly expression: string } | undefined) =>
  expression === undefined ? Effect.succeed(undefined) : Filter.parse(expression)

/** Carries out one request against the broker. */
const dispatch = (broker: Broker.Broker["Service"], request: Protocol.Request) => {
  switch (request._tag) {
    case "Produce":
      return Effect.gen(function*() {
        // a send whose messages do not decode is refused alone; the others go to the broker together.
        // The bytes are copied out of the frame: the store keeps recent records in memory, and a view
        // would keep the whole socket chunk it came in alive.
        const decoded = request.sends.map(({ fence, messages, transactional }) =>
          Result.map(decodeMessages(messages), (batch) => ({ messages: batch, transactional, encoded: Bytes.keep(messages), ...(fence === undefined ? {} : { fence }) })))
        const accepted = decoded.filter(Result.isSuccess).map((result) => result.success)
        const outcomes = yield* broker.sendMany(accepted)
        let next = 0
        return {
          _tag: "Produced" as const,
          results: decoded.map((result) => {
            const outcome: Result.Result<ReadonlyArray<Broker.SendReceipt>, unknown> = Result.isSuccess(result) ? outcomes[next++]! : Result.fail(result.failure)
            return Result.isSuccess(outcome)
              ? {
                _tag: "Sent" as const,
                receipts: outcome.success.map(({ messageId, offset, queueId, recallHandle, storeTimestamp }) => ({
                  messageId,
                  queueId,
                  offset,
                  storeTimestamp,
                  ...(recallHandle === undefined ? {} : { recallHandle })
                }))
              }
              : { _tag: "Refused" as const, error: asFailure(outcome.failure) }
          })
        }
      })
    case "Pop":
      return Effect.gen(function*() {
        const filter = yield* filterOf(request.filter)
        const received = yield* broker.pop({
          group: request.group,
          topic: request.topic,
          maxMessages: request.maxMessages,
          invisibleDuration: Duration.millis(request.invisibleMillis),
          ...(request.pollMillis === undefined ? {} : { pollTimeout: Duration.millis(request.pollMillis) }),
          ...(filter === undefined ? {} : { filter }),
          ...(request.attemptId === undefined ? {} : { attemptId: request.attemptId })
        })
        return {
          _tag: "Popped" as const,
          handles: received.map(({ invisibleUntil, receiptHandle }) => ({ receiptHandle, invisibleUntil })),
          messages: MessageBatch.encodeStored(received.map((r) => r.message))
        }
      })
    case "Ack":
      return Effect.map(broker.ackMany(request.group, request.topic, request.receiptHandles), (results) => ({
        _tag: "Acked" as const,
        failures: results.flatMap((result, index) => Result.isFailure(result) ? [{ index, error: asFailure(result.failure) }] : [])
      }))
    case "ChangeInvisibility":
      return Effect.map(
        broker.changeInvisibility(request.group, request.topic, request.receiptHandle, Duration.millis(request.invisibleMillis)),
        (receiptHandle) => ({ _tag: "Renewed" as const, receiptHandle })
      )
    case "RenewInvisibility":
      return Effect.map(
        broker.renewInvisibility(request.group, request.topic, request.receiptHandle, Duration.millis(request.invisibleMillis)),
        (invisibleUntil) => ({ _tag: "WindowExtended" as const, invisibleUntil })
      )
    case "EndTransaction":
      return Effect.as(broker.endTransaction(request.topic, request.transactionId, request.resolution), { _tag: "Done" as const })
    case "Recall":
      return Effect.map(broker.recall(request.topic, request.recallHandle), (messageId) => ({ _tag: "Recalled" as const, messageId }))
    case "Pull":
      return Effect.gen(function*() {
        const filter = yield* filterOf(request.filter)
        const pulled = yield* broker.pull({
          topic: request.topic,
          queueId: request.queueId,
          offset: request.offset,
          maxCount: request.maxCount,
          ...(request.maxBytes === undefined ? {} : { maxBytes: request.maxBytes }),
          ...(filter === undefined ? {} : { filter })
        })
        return {
          _tag: "Pulled" as const,
          messages: MessageBatch.encodeStored(pulled.messages),
          nextOffset: pulled.nextOffset,
          start: pulled.start,
          end: pulled.end
        }
      })
    case "CommitOffset":
      return Effect.as(broker.commitOffset(request.group, request.topic, request.queueId, request.offset), { _tag: "Done" as const })
    case "QueryOffset":
      return Effect.map(broker.committedOffset(request.group, request.topic, request.queueId), (offset) =>
        ({ _tag: "Offset" as const, ...(offset === undefined ? {} : { offset }) }))
    case "CreateTopic":
      return Effect.andThen(
        broker.createTopic({ name: request.name, kind: request.kind, queues: request.queues, flush: request.flush }),
        describe(broker, request.name)
      )
    case "DescribeTopic":
      return describe(broker, request.name)
    case "UpdateTopic":
      return Effect.andThen(
        broker.updateTopic(request.name, {
          ...(request.queues === undefined ? {} : { queues: request.queues }),
          ...(request.flush === undefined ? {} : { flush: request.flush })
        }),
        describe(broker, request.name)
      )
    case "DeleteTopic":
      return Effect.as(broker.deleteTopic(request.name), { _tag: "Done" as const })
    case "ListTopics":
      return Effect.map(broker.topics, (specs) => ({
        _tag: "TopicsListed" as const,
        topics: specs.map(({ flush, kind, name, queues }) => ({ name, kind, queues, flush }))
      }))
    case "ForwardToDeadLetter":
      return Effect.as(broker.forwardToDeadLetter(request.group, request.topic, request.receiptHandle), { _tag: "Done" as const })
    case "DescribeGroup":
      return Effect.map(broker.group(request.name), (group) => ({ _tag: "GroupDescribed" as const, group }))
    case "SetGroup":
      return Effect.gen(function*() {
        const name = yield* ConsumerGroup.validateName(request.group.name)
        yield* broker.setGroup(new ConsumerGroup.ConsumerGroup({ ...request.group, name }))
        return { _tag: "Done" as const }
      })
    case "GroupProgress":
      return Effect.map(broker.groupProgress(request.group), (queues) => ({ _tag: "GroupProgressed" as const, queues }))
    case "ListGroups":
      return Effect.map(broker.groups, (groups) => ({ _tag: "GroupsListed" as const, groups }))
    case "AwaitChecks":
      return Effect.map(broker.awaitChecks(request.max, Duration.millis(Math.max(0, request.waitMillis))), (checks) => ({
        _tag: "ChecksDue" as const,
        checks: checks.map(({ attempt, transactionId }) => ({ transactionId, attempt })),
        messages: MessageBatch.encode(checks.map((check) => check.message))
      }))
  }
}

const describe = (broker: Broker.Broker["Service"], name: string) =>
  Effect.map(broker.describeTopic(name), ({ queues, spec }) => ({
    _tag: "TopicDescribed" as const,
    name: spec.name,
    kind: spec.kind,
    queues: spec.queues,
    flush: spec.flush,
    bounds: queues
  }))

/**
 * Answers one request frame.
 *
 * @since 0.1.0
 */
export const handle = (broker: Broker.Broker["Service"]) => (frame: Frame.Frame): Effect.Effect<Uint8Array> =>
  (frame.type !== Frame.Type.Broker
    ? Effect.succeed(failed(new Protocol.BadRequest({ reason: `frame type ${frame.type} is not a broker request` })))
    : Protocol.decodeRequest(frame.payload).pipe(
      Effect.mapError((error) => new Protocol.BadRequest({ reason: error.message })),
      Effect.flatMap((request): Effect.Effect<Protocol.Response, unknown> => dispatch(broker, request)),
      Effect.catchCause((cause) => {
        const failure = cause.reasons.find(Cause.isFailReason)
        if (failure !== undefined) return Effect.succeed(failed(failure.error))
        return Effect.logError("broker request died", cause).pipe(Effect.as(failed(Cause.squash(cause))))
      })
    )).pipe(Effect.map(Protocol.encodeResponse))

/**
 * Serves every connection of `listener` until the scope closes.
 *
 * @since 0.1.0
 */
export const serve = (listener: Transport.Listener, options: { readonly concurrency?: number } = {}) =>
  Effect.gen(function*() {
    const answer = handle(yield* Broker.Broker)
    yield* Stream.runForEach(listener.connections, (connection) =>
      Effect.forkScoped(Multiplex.serve(connection, answer, { concurrency: options.concurrency ?? 256 }).pipe(Effect.ignore)))
  })

/**
 * Listens at `address` and serves the broker there while the layer lives.
 *
 * @since 0.1.0
 */
export const layer = (address: string): Layer.Layer<never, Transport.InvalidAddress | Transport.AddressInUse, Broker.Broker | Transport.Transport> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const listener = yield* transport.listen(address)
    yield* Effect.forkScoped(serve(listener))
  }))
