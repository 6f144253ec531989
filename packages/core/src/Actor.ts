/**
 * An actor: one fiber that owns its state and reads a bounded mailbox.
 *
 * Callers `tell` (fire and forget) or `ask` (request/reply through a `Deferred` carried in the
 * message). The actor lives in the `Scope` it was made in: closing that scope is how it stops.
 * Stopping closes the mailbox, lets the worker finish what it holds and what is queued until a
 * deadline, then interrupts it and fails whatever is left with `Draining`, so no caller ever waits
 * forever. A defect in a handler fails the messages it was handling with `ActorCrashed` and restarts
 * the actor (a new incarnation: `init` runs again and reloads the state) on a `Schedule`.
 *
 * A batch actor takes every queued message (up to `maxBatch`) in one step: the pattern partitions
 * use to write many appends with one storage call.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Queue,
  Schedule,
  type Scope
} from "effect"

/**
 * The actor is stopping or has stopped and takes no more messages; a message it accepted but could
 * not finish before its drain deadline also fails with this.
 *
 * @since 0.1.0
 */
export class Draining extends Data.TaggedError("Draining")<{ readonly actor: string }> {
  override get message() {
    return `actor ${this.actor} is draining`
  }
}

/**
 * A handler died (a defect) while handling this message; the actor restarts.
 *
 * @since 0.1.0
 */
export class ActorCrashed extends Data.TaggedError("ActorCrashed")<{
  readonly actor: string
  readonly defect: unknown
}> {
  override get message() {
    return `actor ${this.actor} crashed: ${String(this.defect)}`
  }
}

/**
 * The reply slot of an `ask`: the handler completes it with a value or a typed error.
 *
 * @since 0.1.0
 */
export type Reply<A, E = never> = Deferred.Deferred<A, E | Draining | ActorCrashed>

/**
 * What every mailbox message may carry: the reply of an `ask`. The kit completes it when the
 * handler does not (crash, drain), so every message type must name its reply field `reply`.
 *
 * @since 0.1.0
 */
export interface Envelope {
  readonly reply?: Reply<any, any> | undefined
}

/**
 * A reference to a running actor.
 *
 * @since 0.1.0
 */
export interface Actor<M extends Envelope> {
  readonly name: string
  /**
   * Queues a message; suspends while the mailbox is full (back-pressure).
   */
  readonly tell: (message: M) => Effect.Effect<void, Draining>
  /**
   * Builds a message around a fresh reply slot, queues it and waits for the reply.
   */
  readonly ask: <A, E = never>(
    make: (reply: Reply<A, E>) => M
  ) => Effect.Effect<A, E | Draining | ActorCrashed>
  /** Messages queued and not yet taken by the worker. */
  readonly queued: Effect.Effect<number>
}

/**
 * Defaults for actor tunables; override with `Effect.provideService(effect, ActorDefaults, …)`.
 *
 * @since 0.1.0
 */
export const ActorDefaults = Context.Reference<{
  readonly mailboxCapacity: number
  readonly maxBatch: number
  readonly drainTimeout: Duration.Input
  readonly restart: Schedule.Schedule<unknown, ActorCrashed>
}>("@strait/core/Actor/ActorDefaults", {
  defaultValue: () => ({
    mailboxCapacity: 1024,
    maxBatch: 256,
    drainTimeout: Duration.seconds(5),
    restart: Schedule.max([Schedule.exponential(Duration.millis(10)), Schedule.recurs(10)])
  })
})

interface CommonOptions<S, R> {
  /** Names the actor in errors and logs. */
  readonly name: string
  /** Builds the state; runs again on every restart, so it reloads whatever it needs. */
  readonly init: Effect.Effect<S, never, R>
  /** Mailbox size; `tell` and `ask` suspend while it is full. */
  readonly mailboxCapacity?: number
  /** How long a stop waits for queued and in-flight messages before failing them. */
  readonly drainTimeout?: Duration.Input
  /** Restarts after a crash, as long as the schedule continues; then the actor stops. */
  readonly restart?: Schedule.Schedule<unknown, ActorCrashed>
  /**
   * The handler may hand replies to another fiber that completes them later (a syncer answering
   * after an fsync): a step that returns with replies still open does not fail them. A step that
   * crashes or is interrupted still fails what is open.
   */
  readonly repliesOutliveStep?: boolean
}

/**
 * Options of an actor that handles one message per step.
 *
 * @since 0.1.0
 */
export interface Options<S, M extends Envelope, R> extends CommonOptions<S, R> {
  /** Handles one message and completes its reply, if it has one. */
  readonly handle: (state: S, message: M) => Effect.Effect<void, never, R>
}

/**
 * Options of an actor that handles every queued message (up to `maxBatch`) in one step.
 *
 * @since 0.1.0
 */
export interface BatchOptions<S, M extends Envelope, R> extends CommonOptions<S, R> {
  /** Handles a non-empty batch in arrival order and completes each reply. */
  readonly handleBatch: (state: S, messages: ReadonlyArray<M>) => Effect.Effect<void, never, R>
  readonly maxBatch?: number
}

const failReplies = (messages: ReadonlyArray<Envelope>, error: Draining | ActorCrashed) =>
  Effect.forEach(messages, (message) => message.reply ? Deferred.fail(message.reply, error) : Effect.void, {
    discard: true
  })

const unanswered = (messages: ReadonlyArray<Envelope>) =>
  messages.filter((message) => message.reply !== undefined && !Deferred.isDoneUnsafe(message.reply))

// Runs after every step. The usual case (every reply completed) allocates nothing: errors carry a
// stack trace, so they are built only for replies still open.
const completeOnExit = (name: string, messages: ReadonlyArray<Envelope>, repliesOutliveStep: boolean) => (exit: Exit.Exit<void>) => {
  if (repliesOutliveStep && Exit.isSuccess(exit)) return Effect.void
  const open = unanswered(messages)
  if (open.length === 0) return Effect.void
  if (Exit.isSuccess(exit)) {
    return failReplies(open, new ActorCrashed({ actor: name, defect: "handler returned without replying" }))
  }
  const defect = exit.cause.reasons.find(Cause.isDieReason)
  return failReplies(
    open,
    defect === undefined ? new Draining({ actor: name }) : new ActorCrashed({ actor: name, defect: defect.defect })
  )
}

const spawn = Effect.fnUntraced(function*<S, M extends Envelope, R>(
  options: CommonOptions<S, R>,
  step: (state: S, mailbox: Queue.Dequeue<M, Cause.Done>) => Effect.Effect<void, Cause.Done, R>
) {
  const defaults = yield* ActorDefaults
  const name = options.name
  const mailbox = yield* Queue.bounded<M, Cause.Done>(options.mailboxCapacity ?? defaults.mailboxCapacity)

  const incarnation = Effect.gen(function*() {
    const state = yield* options.init
    while (true) yield* step(state, mailbox)
  }).pipe(
    Effect.catchIf(Cause.isDone, () => Effect.void),
    Effect.catchDefect((defect) => Effect.fail(new ActorCrashed({ actor: name, defect })))
  )

  const supervised = incarnation.pipe(
    Effect.tapError((crash) => Effect.logWarning(`actor ${name} crashed; restarting`, crash.defect)),
    Effect.retry(options.restart ?? defaults.restart),
    Effect.catch((crash) =>
      Effect.logError(`actor ${name} crashed too often; stopping`, crash.defect).pipe(
        Effect.andThen(Queue.end(mailbox)),
        Effect.andThen(Queue.clear(mailbox)),
        Effect.flatMap((left) => failReplies(left, crash))
      )
    )
  )

  // The worker is forked first and the drain finalizer added second: finalizers run in reverse, so
  // the drain runs while the worker is still alive.
  const worker = yield* Effect.forkScoped(supervised)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Queue.end(mailbox)
      const finished = yield* Fiber.await(worker).pipe(
        Effect.timeoutOption(options.drainTimeout ?? defaults.drainTimeout)
      )
      if (finished._tag === "None") yield* Fiber.interrupt(worker)
      yield* failReplies(yield* Queue.clear(mailbox), new Draining({ actor: name }))
    })
  )

  const offer = (message: M): Effect.Effect<void, Draining> =>
    Effect.flatMap(
      Queue.offer(mailbox, message),
      (accepted) => accepted ? Effect.void : Effect.fail(new Draining({ actor: name }))
    )
  // with room in the mailbox the message goes in synchronously; a full or closed one takes the
  // suspending path, which waits for room or reports Draining
  const tell = (message: M): Effect.Effect<void, Draining> =>
    Effect.suspend(() => Queue.offerUnsafe(mailbox, message) ? Effect.void : offer(message))

  const actor: Actor<M> = {
    name,
    tell,
    ask: <A, E = never>(make: (reply: Reply<A, E>) => M) =>
      Effect.suspend(() => {
        const reply = Deferred.makeUnsafe<A, E | Draining | ActorCrashed>()
        const message = make(reply)
        return Queue.offerUnsafe(mailbox, message)
          ? Deferred.await(reply)
          : Effect.andThen(offer(message), Deferred.await(reply))
      }),
    queued: Queue.size(mailbox)
  }
  return actor
})

/**
 * Starts an actor that handles one message per step, in the current `Scope`.
 *
 * **Details**
 *
 * The handler must complete the reply of every message it is given; a reply it leaves open is
 * failed with `ActorCrashed` so no caller hangs. Closing the scope stops the actor (see the module
 * doc for the drain).
 *
 * @since 0.1.0
 */
export const make = <S, M extends Envelope, R>(
  options: Options<S, M, R>
): Effect.Effect<Actor<M>, never, Scope.Scope | R> =>
  spawn<S, M, R>(options, (state, mailbox) =>
    Effect.flatMap(Queue.take(mailbox), (message) =>
      options.handle(state, message).pipe(
        Effect.onExit(completeOnExit(options.name, [message], options.repliesOutliveStep === true))
      )))

/**
 * Starts an actor that handles every queued message, up to `maxBatch`, in one step.
 *
 * **When to use**
 *
 * When one effect per batch is much cheaper than one per message: a partition writes all queued
 * appends with one storage call and completes them together.
 *
 * @since 0.1.0
 */
export const makeBatched = <S, M extends Envelope, R>(
  options: BatchOptions<S, M, R>
): Effect.Effect<Actor<M>, never, Scope.Scope | R> =>
  Effect.flatMap(ActorDefaults, (defaults) => {
    const maxBatch = options.maxBatch ?? defaults.maxBatch
    return spawn<S, M, R>(options, (state, mailbox) =>
      Effect.flatMap(Queue.takeBetween(mailbox, 1, maxBatch), (messages) =>
        options.handleBatch(state, messages).pipe(
          Effect.onExit(completeOnExit(options.name, messages, options.repliesOutliveStep === true))
        )))
  })
