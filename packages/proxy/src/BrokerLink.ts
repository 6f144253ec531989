/**
 * A proxy's link to one broker: a data-plane client over one `Transport` connection, reconnected on
 * the next call after the connection ends (the broker restarted, or sent GOAWAY); a connect that
 * fails is tried twice more, 100 ms apart, before the call fails with `BrokerUnreachable`.
 *
 * @since 0.1.0
 */
import type { Transport as TransportShape } from "@strait/core"
import { Transport } from "@strait/core"
import { Client } from "@strait/broker"
import { Duration, Effect, Exit, Schedule, Schema, Scope, Semaphore } from "effect"

/**
 * The broker could not be reached.
 *
 * @since 0.1.0
 */
export class BrokerUnreachable extends Schema.TaggedError<BrokerUnreachable>()("BrokerUnreachable", {
  broker: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `broker ${this.broker} is unreachable: ${this.reason}`
  }
}

/**
 * A link to a broker.
 *
 * @since 0.1.0
 */
export interface BrokerLink {
  /** The broker's address. */
  readonly address: string
  /** The client of the current connection, connecting first when there is none or it ended. */
  readonly client: Effect.Effect<Client.BrokerClient, BrokerUnreachable>
}

/**
 * Links to the broker at `address` for as long as the current scope lives. With several addresses
 * (shared memory first, then TCP), each connect takes the first that answers.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(addresses: string | ReadonlyArray<string>) {
  const tried = typeof addresses === "string" ? [addresses] : addresses
  const address = tried[tried.length - 1]!
  const transport = yield* Transport.Transport
  const scope = yield* Effect.scope
  const lock = yield* Semaphore.make(1)
  let current: { readonly client: Client.BrokerClient; readonly connection: TransportShape.Connection; readonly scope: Scope.Closeable } | undefined
  const connect = lock.withPermits(1)(Effect.gen(function*() {
    if (current !== undefined) {
      if ((yield* current.connection.state) === "open") return current.client
      yield* Scope.close(current.scope, Exit.void)
      current = undefined
    }
    const child = yield* Scope.fork(scope)
    let attempt = transport.connect(tried[0]!)
    for (const next of tried.slice(1)) {
      attempt = attempt.pipe(Effect.catch((error) =>
        Effect.andThen(Effect.logDebug(`could not link to ${tried[0]} (${error._tag}); using ${next}`), transport.connect(next))))
    }
    const connection = yield* attempt.pipe(
      Scope.provide(child),
      Effect.tapError(() => Scope.close(child, Exit.void))
    )
    const client = yield* Client.make(connection).pipe(Scope.provide(child))
    current = { client, connection, scope: child }
    return client
  }))
  // a failed connect sent nothing, so every request may wait for a second and third try (a broker
  // restarting, a connection refused once)
  const reconnect = Effect.mapError(
    connect,
    (error) => new BrokerUnreachable({ broker: address, reason: error._tag === "ConnectFailed" ? error.reason ?? "connection refused" : error.reason })
  ).pipe(Effect.retry({ times: 2, schedule: Schedule.spaced(Duration.millis(100)) }))
  const link: BrokerLink = {
    address,
    client: Effect.suspend(() =>
      current === undefined ? reconnect : Effect.flatMap(current.connection.state, (state) => state === "open" ? Effect.succeed(current!.client) : reconnect)
    )
  }
  return link
})
