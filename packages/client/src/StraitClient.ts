/**
 * A client's connection to a Strait cluster: one connection at a time to one of its proxies, over
 * the `Transport` (`tcp://host:port`, or `mem://name` for a node in the same process), said Hello on,
 * and replaced when it ends.
 *
 * **Details**
 *
 * - A call that finds no open connection connects to the next endpoint in turn, backing off between
 *   rounds, until the call's deadline.
 * - A proxy that drains (GOAWAY) lets the calls in flight on its connection finish, and the
 *   connection closes once they are answered; new calls go to a new connection, usually another
 *   proxy. A call whose connection ended before it was answered is made again on the next one, so
 *   application code sees no error from a proxy going away. Every request of the protocol may be made
 *   twice: a send carries its message id (the broker stores it once), and a receive whose answer was
 *   lost is released by the proxy.
 *
 * @since 0.1.0
 */
import { Frame, Signature, type Transport as TransportShape } from "@strait/core"
import { Transport } from "@strait/core"
import { Multiplex } from "@strait/transport"
import { Clock, Context, Duration, Effect, Exit, Layer, Random, Redacted, Schedule, Scope, Semaphore } from "effect"
import * as Protocol from "./Protocol.ts"

/**
 * Where the cluster is and who the client is.
 *
 * @since 0.1.0
 */
export interface ClientConfig {
  /** Proxies' `Transport` addresses: `tcp://host:port`, `mem://name`. */
  readonly endpoints: ReadonlyArray<string>
  /** This client's id (default: a random one). */
  readonly clientId?: string
  readonly namespace?: string
  /** AK/SK credentials, for clusters that require signed clients. */
  readonly credentials?: { readonly accessKey: string; readonly secretKey: Redacted.Redacted<string> }
  /** Topics this client sends transactional messages to: their check-backs come to it. */
  readonly producerTopics?: ReadonlyArray<string>
  /** How long a call may take, connecting included (default 30 s; long polls add their poll time). */
  readonly requestTimeout?: Duration.Input
}

/**
 * An answer of the kind `T`.
 *
 * @since 0.1.0
 */
export type Answer<T extends Protocol.Response["_tag"]> = Extract<Protocol.Response, { readonly _tag: T }>

/**
 * A connected client.
 *
 * @since 0.1.0
 */
export class StraitClient extends Context.Service<StraitClient, {
  readonly clientId: string
  /** Makes a request and expects an answer of kind `expected`; `extraMillis` lengthens the deadline (long polls). */
  readonly call: <T extends Protocol.Response["_tag"]>(
    request: Protocol.Request,
    expected: T,
    extraMillis?: number
  ) => Effect.Effect<Answer<T>, Protocol.Failure>
}>()("@strait/client/StraitClient") {
  /** A client of the cluster at `config.endpoints`, over the `Transport` given. */
  static readonly layer = (config: ClientConfig): Layer.Layer<StraitClient, never, TransportShape.Transport> => Layer.effect(StraitClient, make(config))
}

const unavailable = (reason: string, cause: string) => new Protocol.Unavailable({ reason, cause })

// a connection ended before its answer came: the call is made again on the next connection
const connectionLost = new Set(["ConnectionClosed", "ConnectionDraining"])

/**
 * A client for as long as the scope lives.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(config: ClientConfig) {
  if (config.endpoints.length === 0) return yield* Effect.die(new Error("a Strait client needs at least one endpoint"))
  const transport = yield* Transport.Transport
  const scope = yield* Effect.scope
  const timeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(config.requestTimeout ?? Duration.seconds(30)))
  const clientId = config.clientId ?? `strait-${(yield* Random.nextIntBetween(0, 2 ** 31 - 1)).toString(36)}-${(yield* Random.nextIntBetween(0, 2 ** 31 - 1)).toString(36)}`
  const lock = yield* Semaphore.make(1)
  let next = yield* Random.nextIntBetween(0, config.endpoints.length - 1)

  interface Linked {
    readonly connection: TransportShape.Connection
    readonly requester: Multiplex.Requester
    readonly scope: Scope.Closeable
  }
  let current: Linked | undefined
  const retired: Array<Linked> = []

  const request = (linked: Linked, body: Protocol.Request, extraMillis: number) =>
    linked.requester.request(Frame.Type.Client, Protocol.encodeRequest(body), Duration.millis(timeoutMillis + extraMillis)).pipe(
      Effect.flatMap((frame) =>
        Protocol.decodeResponse(frame.payload).pipe(Effect.mapError((error) => unavailable(`a malformed answer: ${error.message}`, "MalformedResponse")))
      )
    )

  // one endpoint: connect, say Hello
  const open = (address: string) =>
    Effect.gen(function*() {
      const child = yield* Scope.fork(scope)
      const connection = yield* transport.connect(address).pipe(Scope.provide(child), Effect.tapError(() => Scope.close(child, Exit.void)))
      const requester = yield* Multiplex.requester(connection).pipe(Scope.provide(child))
      const linked: Linked = { connection, requester, scope: child }
      const now = yield* Clock.currentTimeMillis
      const dateTime = Signature.dateTimeOf(now)
      const hello = yield* request(linked, {
        _tag: "Hello",
        clientId,
        namespace: config.namespace ?? "",
        producerTopics: [...(config.producerTopics ?? [])],
        ...(config.credentials === undefined ? {} : {
          authorization: Signature.authorization(config.credentials.accessKey, Redacted.value(config.credentials.secretKey), dateTime),
          dateTime
        })
      }, 0).pipe(Effect.tapError(() => Scope.close(child, Exit.void)))
      if (hello._tag === "Failed") {
        yield* Scope.close(child, Exit.void)
        return yield* Effect.fail(hello.error)
      }
      return linked
    })

  // a new connection: each endpoint in turn, rounds backing off, until the deadline
  const reconnect = lock.withPermits(1)(Effect.gen(function*() {
    if (current !== undefined && (yield* current.connection.state) === "open") return current
    // a draining connection finishes its calls in flight, then closes on its own; connections that
    // ended free what they held
    if (current !== undefined) retired.push(current)
    current = undefined
    for (const linked of retired.splice(0)) {
      const state = yield* linked.connection.state
      if (state === "closed" || state === "peer-dead") yield* Scope.close(linked.scope, Exit.void)
      else retired.push(linked)
    }
    const attempt = Effect.suspend(() => {
      const address = config.endpoints[next % config.endpoints.length]!
      next++
      return open(address).pipe(
        Effect.mapError((error): Protocol.Failure =>
          "_tag" in error && (error._tag === "Unauthorized" || error._tag === "Forbidden" || error._tag === "BadRequest")
            ? error as Protocol.Failure
            : unavailable(`cannot reach ${address}: ${"reason" in error ? String(error.reason) : error._tag}`, error._tag))
      )
    })
    const linked = yield* attempt.pipe(
      Effect.retry({
        while: (error) => error._tag === "Unavailable",
        schedule: Schedule.min([Schedule.exponential(Duration.millis(50), 2), Schedule.spaced(Duration.seconds(2))])
      }),
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMillis),
        orElse: () => Effect.fail(unavailable(`no proxy of ${config.endpoints.join(", ")} answered within ${timeoutMillis} ms`, "ConnectFailed"))
      })
    )
    current = linked
    return linked
  }))
  // the open connection without taking the lock; else a new one
  const connected = Effect.suspend(() => {
    const linked = current
    if (linked === undefined) return reconnect
    return Effect.flatMap(linked.connection.state, (state) => state === "open" ? Effect.succeed(linked) : reconnect)
  })

  const call = <T extends Protocol.Response["_tag"]>(body: Protocol.Request, expected: T, extraMillis = 0): Effect.Effect<Answer<T>, Protocol.Failure> =>
    Effect.gen(function*() {
      for (let attempt = 1; ; attempt++) {
        const linked = yield* connected
        const answer = yield* Effect.result(request(linked, body, extraMillis))
        if (answer._tag === "Success") {
          const response = answer.success
          if (response._tag === "Failed") return yield* Effect.fail(response.error)
          if (response._tag !== expected) return yield* Effect.fail(unavailable(`expected ${expected}, got ${response._tag}`, "MalformedResponse"))
          return response as Answer<T>
        }
        const error = answer.failure
        if (attempt < 3 && connectionLost.has(error._tag)) continue
        return yield* Effect.fail(error._tag === "Unavailable" ? error : unavailable(`the call failed: ${error._tag}`, error._tag))
      }
    })

  // a heartbeat keeps the session alive between calls
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.seconds(10)), Effect.ignore(call({ _tag: "Heartbeat" }, "Done")))))
  return StraitClient.of({ clientId, call })
})
