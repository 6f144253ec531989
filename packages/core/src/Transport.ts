/**
 * The `Transport` service: how Strait nodes reach each other on the data plane.
 *
 * `listen` yields connections and `connect` opens one. A connection carries `Frame`s in order in both
 * directions, applies back-pressure (a send suspends while the peer is slow; nothing is dropped
 * silently), reports its state, and supports `drain` = GOAWAY. Every Layer (memory, TCP, shared
 * memory, RDMA) passes the same contract suite, so callers never know which one they run on.
 *
 * @since 0.1.0
 */
import { type Cause, Context, Data, type Duration, type Effect, type Scope, type Stream } from "effect"
import type { Frame, FrameError } from "./Frame.ts"

/**
 * Where a connection goes: `mem://name`, `tcp://host:port`, `shm://path` or `rdma://host:port`.
 *
 * @since 0.1.0
 */
export type Address = string

/**
 * The schemes a Transport may serve.
 *
 * @since 0.1.0
 */
export type Scheme = "mem" | "tcp" | "shm" | "rdma"

/**
 * A connection's life: `open`; `draining` once either side sent GOAWAY; `closed` after an orderly
 * close by either side; `peer-dead` when the peer vanished (crash, reset, silence past the heartbeat
 * timeout) or sent bytes that are not frames.
 *
 * @since 0.1.0
 */
export type ConnectionState = "open" | "draining" | "closed" | "peer-dead"

/**
 * The address does not parse, or names a scheme this Transport does not serve.
 *
 * @since 0.1.0
 */
export class InvalidAddress extends Data.TaggedError("InvalidAddress")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `invalid address ${this.address}: ${this.reason}`
  }
}

/**
 * Another listener holds the address.
 *
 * @since 0.1.0
 */
export class AddressInUse extends Data.TaggedError("AddressInUse")<{ readonly address: string }> {
  override get message() {
    return `${this.address} is in use by another listener`
  }
}

/**
 * Nothing listens at the address, it refused, or it could not be reached before the connect timeout.
 *
 * @since 0.1.0
 */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `cannot connect to ${this.address}: ${this.reason}`
  }
}

/**
 * The connection is closed (`reason` says how) and carries nothing more.
 *
 * @since 0.1.0
 */
export class ConnectionClosed extends Data.TaggedError("ConnectionClosed")<{
  readonly remote: string
  readonly state: "closed" | "peer-dead"
  readonly reason: string
}> {
  override get message() {
    return `the connection to ${this.remote} is ${this.state === "closed" ? "closed" : "dead"}: ${this.reason}`
  }
}

/**
 * The peer sent GOAWAY: this side may still answer and finish in-flight requests, but opens no new
 * ones on this connection.
 *
 * @since 0.1.0
 */
export class ConnectionDraining extends Data.TaggedError("ConnectionDraining")<{ readonly remote: string }> {
  override get message() {
    return `${this.remote} is draining the connection (GOAWAY): no new requests on it`
  }
}

/**
 * The peer sent bytes that are not valid frames; the connection was closed because of it.
 *
 * @since 0.1.0
 */
export class MalformedInput extends Data.TaggedError("MalformedInput")<{
  readonly remote: string
  readonly error: FrameError
}> {}

/**
 * What a connection's `send` or `frames` can fail with.
 *
 * @since 0.1.0
 */
export type ConnectionError = ConnectionClosed | ConnectionDraining | MalformedInput

/**
 * One connection between two endpoints.
 *
 * @since 0.1.0
 */
export interface Connection {
  /** The peer's address as this side knows it (for logs and errors). */
  readonly remote: string
  /**
   * Sends a batch of frames in order as one write. Suspends while the peer is slow. Fails with
   * `ConnectionDraining` for a new request (a frame that is not a response) after the peer's GOAWAY.
   */
  readonly send: (frames: ReadonlyArray<Frame>) => Effect.Effect<void, ConnectionError>
  /**
   * The frames the peer sent, in order. Ends after an orderly close; fails with `ConnectionClosed`
   * (`peer-dead`) or `MalformedInput` otherwise. Read it once: it is a single-consumer stream.
   */
  readonly frames: Stream.Stream<Frame, ConnectionError>
  /**
   * The same frames without a Stream: waits for and returns every frame that has arrived, in order;
   * fails with `Cause.Done` after an orderly close. For hot loops (request multiplexing) where a
   * Stream's per-pull cost shows. Use either this or `frames`, not both.
   */
  readonly receive: Effect.Effect<ReadonlyArray<Frame>, ConnectionError | Cause.Done>
  /** The current state. */
  readonly state: Effect.Effect<ConnectionState>
  /** The current state, then every change. */
  readonly changes: Stream.Stream<ConnectionState>
  /**
   * GOAWAY: tells the peer to open no new requests here, waits until the peer closes or the deadline
   * passes, then closes. In-flight requests in both directions may finish meanwhile.
   */
  readonly drain: (deadline: Duration.Input) => Effect.Effect<void>
  /** Closes now, in order: the peer sees `closed`, not `peer-dead`. */
  readonly close: Effect.Effect<void>
}

/**
 * A listening endpoint. Closing its scope stops accepting and closes every connection it accepted.
 *
 * @since 0.1.0
 */
export interface Listener {
  /** The bound address (with the real port when `tcp://host:0` was asked for). */
  readonly address: Address
  /** Accepted connections, in order of arrival. */
  readonly connections: Stream.Stream<Connection>
}

/**
 * The data-plane transport.
 *
 * @since 0.1.0
 */
export class Transport extends Context.Service<Transport, {
  /** The schemes this Layer serves. */
  readonly schemes: ReadonlyArray<Scheme>
  /** Listens at `address` until the scope closes. */
  readonly listen: (address: Address) => Effect.Effect<Listener, InvalidAddress | AddressInUse, Scope.Scope>
  /** Connects to `address`; the connection closes when the scope closes. */
  readonly connect: (address: Address) => Effect.Effect<Connection, InvalidAddress | ConnectFailed, Scope.Scope>
}>()("@strait/core/Transport") {}

/**
 * Splits an address into its scheme and the rest, checking the scheme is one of `schemes`.
 *
 * @since 0.1.0
 */
export const parseAddress = (
  address: Address,
  schemes: ReadonlyArray<Scheme>
): { readonly scheme: Scheme; readonly rest: string } | InvalidAddress => {
  const match = /^([a-z]+):\/\/(.+)$/.exec(address)
  if (match === null) return new InvalidAddress({ address, reason: "expected scheme://location" })
  const scheme = match[1] as Scheme
  if (!schemes.includes(scheme)) {
    return new InvalidAddress({ address, reason: `scheme ${scheme} is not served here (${schemes.join(", ")})` })
  }
  return { scheme, rest: match[2]! }
}

/**
 * A `scheme://host:port` address's host (IPv6 without its brackets) and port, checking the scheme.
 *
 * @since 0.1.0
 */
export const parseHostPort = (address: Address, scheme: Scheme): { readonly host: string; readonly port: number } | InvalidAddress => {
  const parsed = parseAddress(address, [scheme])
  if (parsed instanceof InvalidAddress) return parsed
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(parsed.rest)
  const port = match === null ? -1 : Number(match[2])
  if (match === null || port > 65535) return new InvalidAddress({ address, reason: `expected ${scheme}://host:port` })
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port }
}

/**
 * How a listener's bound host and port are written back as an address (IPv6 in brackets).
 *
 * @since 0.1.0
 */
export const formatHostPort = (scheme: Scheme, host: string, port: number): Address =>
  `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`
