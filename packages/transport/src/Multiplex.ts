/**
 * Request/reply over one connection: many requests in flight at once, each matched to its reply by
 * the frame's correlation id.
 *
 * The requesting side owns the correlation ids of its requests; the serving side answers a request
 * of type T with a frame of type `Frame.responseType(T)` and the same correlation. A reply that comes
 * after its request timed out is dropped. When the connection ends, every request still waiting
 * fails with the connection's error, so no caller waits forever. After the peer's GOAWAY the
 * requesting side sends nothing new, and closes the connection once no request waits for a reply, so
 * the peer's drain ends as soon as its answers are out.
 *
 * @since 0.1.0
 */
import { Frame, MinHeap, Transport } from "@strait/core"
import { Cause, Clock, Data, Deferred, Duration, Effect, Exit, FiberSet, Semaphore, Stream } from "effect"

/**
 * No reply arrived within the request's timeout.
 *
 * @since 0.1.0
 */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{
  readonly remote: string
  readonly type: number
  readonly timeout: Duration.Duration
}> {}

/**
 * The requesting side of a connection.
 *
 * @since 0.1.0
 */
export interface Requester {
  readonly connection: Transport.Connection
  /**
   * Sends one request and waits for its reply frame.
   *
   * **Gotchas**
   *
   * Fails with `ConnectionDraining` after the peer's GOAWAY: open the request on another connection.
   */
  readonly request: (
    type: number,
    payload: Uint8Array,
    timeout: Duration.Input
  ) => Effect.Effect<Frame.Frame, Transport.ConnectionError | RequestTimeout>
  /** Requests waiting for a reply. */
  readonly inFlight: Effect.Effect<number>
}

/**
 * Starts reading replies from `connection` in the current scope; the requester then owns the
 * connection's frame stream (nothing else may read it).
 *
 * @since 0.1.0
 */
export const requester = Effect.fnUntraced(function*(connection: Transport.Connection) {
  interface Waiting {
    readonly reply: Deferred.Deferred<Frame.Frame, Transport.ConnectionError | RequestTimeout>
    readonly at: number
    readonly type: number
    readonly timeout: Duration.Duration
  }
  const waiting = new Map<number, Waiting>()
  let nextCorrelation = 1
  let ended: Transport.ConnectionError | undefined

  // after the peer's GOAWAY no request is added: the last reply out lets the connection close
  let draining = false
  const idle = Deferred.makeUnsafe<void>()
  const forget = (correlation: number) => {
    waiting.delete(correlation)
    if (draining && waiting.size === 0) Deferred.doneUnsafe(idle, Exit.void)
  }
  yield* Effect.forkScoped(Effect.gen(function*() {
    const state = yield* Stream.runHead(Stream.filter(connection.changes, (state) => state !== "open"))
    if (state._tag === "None" || state.value !== "draining") return
    draining = true
    if (waiting.size === 0) Deferred.doneUnsafe(idle, Exit.void)
    yield* Deferred.await(idle)
    yield* Effect.uninterruptible(connection.close)
  }))

  const failAll = (error: Transport.ConnectionError) =>
    Effect.suspend(() => {
      ended = error
      const all = [...waiting.values()]
      waiting.clear()
      return Effect.forEach(all, ({ reply }) => Deferred.fail(reply, error), { discard: true })
    })

  const settle = (frames: ReadonlyArray<Frame.Frame>) =>
    Effect.forEach(frames, (frame) => {
      const entry = waiting.get(frame.correlation)
      if (entry === undefined || !Frame.isResponse(frame.type)) return Effect.void
      forget(frame.correlation)
      return Deferred.succeed(entry.reply, frame)
    }, { discard: true })
  // however reading ends (the connection's end, or this scope closing), no request is left waiting
  yield* Effect.forkScoped(
    Effect.forever(Effect.flatMap(connection.receive, settle)).pipe(
      Effect.catchIf(Cause.isDone, () => Effect.void),
      Effect.onExit((exit) => failAll(endError(connection, exit)))
    )
  )

  // Timeouts: one fiber sleeps until the earliest deadline, rather than a timer per request. Entries
  // of answered requests stay in the heap until they reach its top, and go then whatever their time
  // (or a compaction drops them); the fiber is woken only by a deadline earlier than the one it
  // sleeps until, so a steady stream of requests answered in time costs it no wake of its own.
  type Deadline = { readonly at: number; readonly correlation: number; readonly entry: Waiting }
  const byTime = (a: Deadline, b: Deadline) => a.at - b.at
  let deadlines = new MinHeap.MinHeap<Deadline>(byTime)
  let wake = Deferred.makeUnsafe<void>()
  // when the fiber wakes next on its own (never: it waits to be woken)
  let armedAt = Number.POSITIVE_INFINITY
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (let top = deadlines.peek(); top !== undefined; top = deadlines.peek()) {
      const live = waiting.get(top.correlation) === top.entry
      if (live && top.at > now) break
      deadlines.pop()
      if (!live) continue
      forget(top.correlation)
      Deferred.doneUnsafe(top.entry.reply, Exit.fail(new RequestTimeout({ remote: connection.remote, type: top.entry.type, timeout: top.entry.timeout })))
    }
    const next = deadlines.peek()
    armedAt = next === undefined ? Number.POSITIVE_INFINITY : next.at
    const signal = Deferred.await(wake)
    yield* next === undefined ? signal : Effect.timeoutOption(signal, Duration.millis(next.at - now))
  })))
  const schedule = (correlation: number, entry: Waiting) => {
    if (deadlines.size > 2 * waiting.size + 1024) {
      // mostly answered requests: keep the live ones only
      deadlines = new MinHeap.MinHeap<Deadline>(byTime)
      for (const [c, e] of waiting) deadlines.insert({ at: e.at, correlation: c, entry: e })
    }
    deadlines.insert({ at: entry.at, correlation, entry })
    if (entry.at < armedAt) {
      armedAt = entry.at
      const sleeping = wake
      wake = Deferred.makeUnsafe<void>()
      Deferred.doneUnsafe(sleeping, Exit.void)
    }
  }

  const request = (type: number, payload: Uint8Array, timeout: Duration.Input) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (ended !== undefined) return Effect.fail(ended)
      const correlation = nextCorrelation
      nextCorrelation = nextCorrelation === 0xffff_ffff ? 1 : nextCorrelation + 1
      const duration = Duration.fromInputUnsafe(timeout)
      const entry: Waiting = { reply: Deferred.makeUnsafe(), at: now + Duration.toMillis(duration), type, timeout: duration }
      waiting.set(correlation, entry)
      schedule(correlation, entry)
      return connection.send([Frame.make(type, correlation, payload)]).pipe(
        Effect.andThen(Deferred.await(entry.reply)),
        Effect.onExit(() => Effect.sync(() => waiting.get(correlation) === entry && forget(correlation)))
      )
    })

  const result: Requester = { connection, request, inFlight: Effect.sync(() => waiting.size) }
  return result
})

const endError = (
  connection: Transport.Connection,
  exit: Exit.Exit<unknown, Transport.ConnectionError>
): Transport.ConnectionError => {
  const failure = Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isFailReason) : undefined
  return failure?.error ??
    new Transport.ConnectionClosed({ remote: connection.remote, state: "closed", reason: "the connection closed" })
}

/**
 * Serves requests arriving on `connection` until it ends: each request runs `handle` (up to
 * `concurrency` at once) and its result goes back as the reply. Replies to requests are the only
 * frames a served connection sends, so a peer's GOAWAY never stops them.
 *
 * @since 0.1.0
 */
export const serve = <E, R>(
  connection: Transport.Connection,
  handle: (request: Frame.Frame) => Effect.Effect<Uint8Array, E, R>,
  options: { readonly concurrency: number }
): Effect.Effect<void, Transport.ConnectionError | E, R> =>
  Effect.scoped(Effect.gen(function*() {
    // a receive loop forking one fiber per request (at most `concurrency` at once): cheaper per
    // request than a Stream with concurrent mapping, and replies go out as each request finishes
    const running = yield* FiberSet.make<void, Transport.ConnectionError | E>()
    const permits = yield* Semaphore.make(options.concurrency)
    const answer = (request: Frame.Frame) =>
      Effect.flatMap(
        handle(request),
        (payload) => connection.send([Frame.make(Frame.responseType(request.type), request.correlation, payload)])
      )
    while (true) {
      const frames = yield* connection.receive.pipe(Effect.catchIf(Cause.isDone, () => Effect.succeed(undefined)))
      if (frames === undefined) break
      for (const frame of frames) {
        if (Frame.isResponse(frame.type)) continue
        yield* permits.take(1)
        yield* FiberSet.run(running, answer(frame).pipe(Effect.ensuring(permits.release(1))))
      }
    }
    // a connection that is gone cannot carry answers: the requests still running are interrupted
    // (a parked long poll then takes nothing it could not deliver); a draining one lets them finish
    const state = yield* connection.state
    if (state === "closed" || state === "peer-dead") yield* FiberSet.clear(running)
    else yield* FiberSet.join(running)
  }))
