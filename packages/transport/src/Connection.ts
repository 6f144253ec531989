/**
 * The connection engine that every Transport Layer runs over its own byte pipe.
 *
 * A Layer only moves bytes (`Pipe`: a socket, an in-memory wire, a shared-memory ring). This module
 * turns a pipe into a `Transport.Connection`: it frames and unframes with the core codec, hands
 * application frames to a bounded inbox (a slow reader stops the pipe, which stops the writer),
 * answers the transport's own control frames (heartbeat, orderly close, GOAWAY), and keeps the state.
 * A malformed frame closes only this connection, with a typed error.
 *
 * @since 0.1.0
 */
import { Frame, Transport } from "@strait/core"
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  Queue,
  Result,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"

/**
 * The pipe under a connection stopped: `orderly` when the peer ended its side (end of stream),
 * otherwise reset, severed or failed.
 *
 * @since 0.1.0
 */
export class PipeClosed extends Data.TaggedError("PipeClosed")<{
  readonly orderly: boolean
  readonly reason: string
}> {}

/**
 * Where a pipe delivers what arrives: called synchronously from the pipe's own callbacks.
 *
 * @since 0.1.0
 */
export interface PipeReceiver {
  /** One chunk, in order. Returning `false` asks the pipe to deliver nothing more until `resume`. */
  readonly data: (chunk: Uint8Array) => boolean
  /**
   * `true` when `data` keeps no view of its chunk once it returns (it parses or copies what it
   * needs): a pipe may then read the next chunk into the same memory. Without it every chunk is
   * the receiver's to keep.
   */
  readonly copies?: boolean
  /** Nothing more will arrive: the peer ended its side (`orderly`), or the pipe was reset or failed. */
  readonly closed: (reason: PipeClosed) => void
}

/**
 * A bidirectional byte pipe with back-pressure: what a Transport Layer provides to the engine.
 *
 * **Details**
 *
 * Arriving bytes are pushed to a receiver rather than pulled, so a frame goes from the socket's (or
 * ring's) callback straight into the connection's inbox, with no fiber in between.
 *
 * @since 0.1.0
 */
export interface Pipe {
  /** Writes the chunks in order as one vectored write; suspends while the other side is slow. */
  readonly write: (chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, PipeClosed>
  /** Starts delivering to `receiver`; called once. */
  readonly deliver: (receiver: PipeReceiver) => void
  /** Delivers again after the receiver asked for a pause. */
  readonly resume: () => void
  /** Ends this side's writing after what was written (the peer reads end of stream). */
  readonly end: Effect.Effect<void>
  /** Tears the pipe down at once, in both directions. */
  readonly destroy: Effect.Effect<void>
}

/**
 * Connection tunables.
 *
 * **Details**
 *
 * A side sends a heartbeat when it sent nothing for one interval, and declares the peer dead after
 * `missedHeartbeats` intervals in which nothing at all arrived. A close that cannot write its
 * goodbye within `closeTimeout` (the peer stopped reading) tears the pipe down instead.
 *
 * @since 0.1.0
 */
export const ConnectionSettings = Context.Reference<{
  readonly heartbeatInterval: Duration.Input
  readonly missedHeartbeats: number
  readonly inboxFrames: number
  readonly closeTimeout: Duration.Input
}>("@strait/transport/Connection/ConnectionSettings", {
  defaultValue: () => ({
    heartbeatInterval: Duration.seconds(1),
    missedHeartbeats: 3,
    inboxFrames: 1024,
    closeTimeout: Duration.seconds(1)
  })
})

/**
 * A connection plus what its Layer needs to manage it.
 *
 * @since 0.1.0
 */
export interface Managed extends Transport.Connection {
  /** Completes when the connection is closed or its peer is dead. */
  readonly terminated: Effect.Effect<void>
}

const control = (type: number): Frame.Frame => Frame.make(type, 0, new Uint8Array(0))

/**
 * Runs the engine over `pipe` in the current scope; closing the scope closes the connection.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(pipe: Pipe, remote: string) {
  const settings = yield* ConnectionSettings
  const limits = yield* Frame.FrameLimits
  const known = yield* Frame.FrameTypes
  const decoder = new Frame.Decoder({ maxPayloadBytes: limits.maxPayloadBytes, known })
  const stateRef = yield* SubscriptionRef.make<Transport.ConnectionState>("open")
  const inbox = yield* Queue.bounded<Frame.Frame, Transport.ConnectionError | Cause.Done>(settings.inboxFrames)
  const terminated = yield* Deferred.make<void>()

  // plain mirrors of the state, read synchronously on every send
  let state: Transport.ConnectionState = "open"
  let closeReason = ""
  let peerDraining = false
  let writes = 0
  let reads = 0

  const isTerminal = () => state === "closed" || state === "peer-dead"
  const closedError = () =>
    new Transport.ConnectionClosed({ remote, state: state === "peer-dead" ? "peer-dead" : "closed", reason: closeReason })

  const enter = (next: "draining") =>
    Effect.suspend(() => {
      if (state !== "open") return Effect.void
      state = next
      return SubscriptionRef.set(stateRef, next)
    })

  /** The one way into a terminal state: records why, settles the inbox, and tears down or ends the pipe. */
  const terminate = (
    next: "closed" | "peer-dead",
    reason: string,
    inboxEnd: Transport.ConnectionError | undefined,
    teardown: Effect.Effect<void>
  ) =>
    Effect.suspend(() => {
      if (isTerminal()) return Effect.void
      state = next
      closeReason = reason
      // whole or not at all: a terminal state always ends the inbox and resolves `terminated`
      return Effect.uninterruptible(Effect.all([
        SubscriptionRef.set(stateRef, next),
        inboxEnd === undefined ? Queue.end(inbox) : Queue.fail(inbox, inboxEnd),
        teardown,
        Deferred.succeed(terminated, undefined)
      ], { discard: true }))
    })

  const peerDead = (reason: string) =>
    Effect.suspend(() =>
      terminate("peer-dead", reason, new Transport.ConnectionClosed({ remote, state: "peer-dead", reason }), pipe.destroy)
    )

  const writeFrames = (frames: ReadonlyArray<Frame.Frame>) => {
    writes++
    return pipe.write(Frame.encode(frames))
  }

  const send = (frames: ReadonlyArray<Frame.Frame>): Effect.Effect<void, Transport.ConnectionError> => {
    if (isTerminal()) return Effect.fail(closedError())
    if (peerDraining) {
      for (const frame of frames) {
        if (!Frame.isResponse(frame.type)) return Effect.fail(new Transport.ConnectionDraining({ remote }))
      }
    }
    return Effect.catchTag(writeFrames(frames), "PipeClosed", () => Effect.fail(closedError()))
  }

  const close: Effect.Effect<void> = Effect.suspend(() => {
    if (isTerminal()) return Effect.void
    const goodbye = writeFrames([control(Frame.Control.Close)]).pipe(
      Effect.andThen(pipe.end),
      Effect.timeoutOption(settings.closeTimeout),
      Effect.flatMap((done) => done._tag === "None" ? pipe.destroy : Effect.void),
      Effect.catch(() => pipe.destroy)
    )
    return terminate("closed", "closed by this side", undefined, goodbye)
  })

  // What the receiver cannot finish synchronously goes to the control fiber, in arrival order:
  // frames the full inbox did not take (the pipe stays paused until they are in), the peer's
  // control frames, bad input and the end of the pipe.
  type Event =
    | { readonly _tag: "Overflow"; readonly frames: ReadonlyArray<Frame.Frame> }
    | { readonly _tag: "GoAway" }
    | { readonly _tag: "Close" }
    | { readonly _tag: "Malformed"; readonly error: Transport.MalformedInput }
    | { readonly _tag: "Ended"; readonly reason: PipeClosed }
  const events = yield* Queue.unbounded<Event>()
  let overflows = 0
  let stopped = false

  const deliverFrames = (frames: Array<Frame.Frame>) => {
    if (frames.length === 0) return
    if (overflows > 0) {
      overflows++
      Queue.offerUnsafe(events, { _tag: "Overflow", frames })
      return
    }
    const remaining = Queue.offerAllUnsafe(inbox, frames)
    if (remaining.length > 0 && !isTerminal()) {
      overflows++
      Queue.offerUnsafe(events, { _tag: "Overflow", frames: remaining })
    }
  }

  const receiver: PipeReceiver = {
    data: (chunk) => {
      if (stopped) return true
      reads++
      const decoded = decoder.push(chunk)
      if (Result.isFailure(decoded)) {
        stopped = true
        Queue.offerUnsafe(events, { _tag: "Malformed", error: new Transport.MalformedInput({ remote, error: decoded.failure }) })
        return true
      }
      let frames: Array<Frame.Frame> = []
      for (const frame of decoded.success) {
        if (!Frame.isControl(frame.type)) {
          frames.push(frame)
          continue
        }
        if (frame.type === Frame.Control.Heartbeat) continue
        deliverFrames(frames)
        frames = []
        if (frame.type === Frame.Control.GoAway) Queue.offerUnsafe(events, { _tag: "GoAway" })
        else if (frame.type === Frame.Control.Close) {
          stopped = true
          Queue.offerUnsafe(events, { _tag: "Close" })
          return true
        }
      }
      deliverFrames(frames)
      return overflows === 0
    },
    closed: (reason) => {
      Queue.offerUnsafe(events, { _tag: "Ended", reason })
    }
  }

  const handle = (event: Event): Effect.Effect<void> => {
    switch (event._tag) {
      case "Overflow":
        return Queue.offerAll(inbox, event.frames).pipe(Effect.andThen(Effect.sync(() => {
          if (--overflows === 0) pipe.resume()
        })))
      case "GoAway":
        return Effect.suspend(() => {
          peerDraining = true
          return enter("draining")
        })
      case "Close":
        return terminate("closed", "closed by the peer", undefined, pipe.end)
      case "Malformed":
        return terminate("peer-dead", "malformed frame", event.error, pipe.destroy)
      case "Ended":
        return peerDead(event.reason.orderly ? "the peer's stream ended without a close" : event.reason.reason)
    }
  }
  const controller = Effect.forever(Effect.flatMap(Queue.take(events), handle))

  // one tick per interval, the first one interval after the start
  const heartbeat = Effect.gen(function*() {
    let lastWrites = writes
    let lastReads = reads
    let silent = 0
    while (!isTerminal()) {
      yield* Effect.sleep(settings.heartbeatInterval)
      silent = reads === lastReads ? silent + 1 : 0
      lastReads = reads
      if (silent >= settings.missedHeartbeats) {
        return yield* peerDead(`nothing arrived for ${silent} heartbeat intervals`)
      }
      if (writes === lastWrites) yield* writeFrames([control(Frame.Control.Heartbeat)]).pipe(Effect.ignore)
      lastWrites = writes
    }
  })

  const untilTerminated = Deferred.await(terminated)
  yield* Effect.forkScoped(Effect.raceFirst(controller, untilTerminated))
  pipe.deliver(receiver)
  yield* Effect.forkScoped(Effect.raceFirst(heartbeat, untilTerminated))
  yield* Effect.addFinalizer(() => close)

  const drain = (deadline: Duration.Input): Effect.Effect<void> =>
    Effect.gen(function*() {
      if (state === "open") {
        yield* writeFrames([control(Frame.Control.GoAway)]).pipe(Effect.ignore)
        yield* enter("draining")
      }
      yield* Effect.timeoutOption(untilTerminated, deadline)
      yield* close
    })

  const connection: Managed = {
    remote,
    send,
    frames: Stream.fromQueue(inbox),
    receive: Queue.takeAll(inbox),
    state: SubscriptionRef.get(stateRef),
    changes: SubscriptionRef.changes(stateRef),
    drain,
    close,
    terminated: untilTerminated
  }
  return connection
})

/**
 * Accepts connections for a listener: each pipe gets its own child scope of the listener's scope
 * (so closing the listener closes them all), is offered to `accepted`, and releases its scope when
 * it terminates, so a long-lived listener does not accumulate finished connections.
 *
 * @since 0.1.0
 */
export const accept = (
  listenerScope: Scope.Scope,
  accepted: Queue.Queue<Transport.Connection, Cause.Done>,
  pipe: Pipe,
  remote: string
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(listenerScope)
    const connection = yield* make(pipe, remote).pipe(Scope.provide(scope))
    yield* Effect.forkIn(
      Effect.andThen(connection.terminated, Scope.close(scope, Exit.void)),
      listenerScope
    )
    const offered = yield* Queue.offer(accepted, connection)
    if (!offered) yield* Scope.close(scope, Exit.void)
  })

/**
 * A listener over a server of sockets (TCP, a Unix socket, an RDMA side channel): `start` listens
 * and calls back with each accepted socket; `pipeOf` makes its pipe (at once for TCP, after a
 * hand-over for shared memory or RDMA), which becomes a connection in the listener's queue; a socket
 * whose pipe cannot be made is left to `pipeOf` to close, and logged. `start`'s failure code
 * `EADDRINUSE` is `AddressInUse`, any other an `InvalidAddress`.
 *
 * @since 0.1.0
 */
export const listenSockets = <S>(options: {
  readonly address: string
  readonly acceptBacklog: number
  readonly start: (onSocket: (socket: S) => void) => Effect.Effect<{ readonly address: string; readonly close: Effect.Effect<void> }, string>
  readonly pipeOf: (socket: S) => Effect.Effect<Pipe, string>
  readonly remoteOf: (socket: S) => string
}): Effect.Effect<Transport.Listener, Transport.InvalidAddress | Transport.AddressInUse, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const context = yield* Effect.context<never>()
    const accepted = yield* Queue.bounded<Transport.Connection, Cause.Done>(options.acceptBacklog)
    const server = yield* options.start((socket) => {
      const remote = options.remoteOf(socket)
      Effect.runForkWith(context)(options.pipeOf(socket).pipe(
        Effect.flatMap((pipe) => accept(scope, accepted, pipe, remote)),
        Effect.catch((reason) => Effect.logDebug(`a link from ${remote} was not set up: ${reason}`))
      ))
    }).pipe(
      Effect.mapError((code) =>
        code === "EADDRINUSE"
          ? new Transport.AddressInUse({ address: options.address })
          : new Transport.InvalidAddress({ address: options.address, reason: code }))
    )
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(accepted), server.close))
    return { address: server.address, connections: Stream.fromQueue(accepted) }
  })

/**
 * A Transport over sockets of one scheme (TCP; a Unix socket handing over shared memory; an RDMA
 * side channel): `parse` reads an address into its target or says why it is none; `listen` serves
 * {@link listenSockets} at the target (`start`, `pipeOf`, `remoteOf`); `connect` opens a pipe to the
 * target with `open` within `connectTimeout` (a failure, or the time running out, is `ConnectFailed`).
 *
 * @since 0.1.0
 */
export const socketTransport = <T, S>(options: {
  readonly scheme: Transport.Scheme
  readonly parse: (address: string) => T | Transport.InvalidAddress
  readonly acceptBacklog: number
  readonly connectTimeout: Duration.Input
  readonly start: (target: T) => (onSocket: (socket: S) => void) => Effect.Effect<{ readonly address: string; readonly close: Effect.Effect<void> }, string>
  readonly pipeOf: (socket: S) => Effect.Effect<Pipe, string>
  readonly remoteOf: (socket: S, target: T) => string
  readonly open: (target: T) => Effect.Effect<Pipe, string>
}): Transport.Transport["Service"] =>
  Transport.Transport.of({
    schemes: [options.scheme],
    listen: (address) =>
      Effect.gen(function*() {
        const target = options.parse(address)
        if (target instanceof Transport.InvalidAddress) return yield* target
        return yield* listenSockets<S>({
          address,
          acceptBacklog: options.acceptBacklog,
          start: options.start(target),
          pipeOf: options.pipeOf,
          remoteOf: (socket) => options.remoteOf(socket, target)
        })
      }),
    connect: (address) =>
      Effect.gen(function*() {
        const target = options.parse(address)
        if (target instanceof Transport.InvalidAddress) return yield* target
        const pipe = yield* options.open(target).pipe(
          Effect.timeoutOrElse({ duration: options.connectTimeout, orElse: () => Effect.fail("timed out") }),
          Effect.mapError((reason) => new Transport.ConnectFailed({ address, reason }))
        )
        return yield* make(pipe, address)
      })
  })
