/**
 * The stateless proxy core: what every client protocol (RocketMQ gRPC first) is translated onto.
 *
 * A request arrives with its caller's context (client id, namespace, who signed it); the proxy checks
 * access, qualifies names with the namespace, and carries the request to the broker over a
 * `BrokerLink`. It keeps only soft state, lost harmlessly with the process:
 *
 * - client sessions by client id, alive while a telemetry stream of theirs is open, or for
 *   `clientTimeout` after their last heartbeat, call or stream;
 * - for receives with automatic renewal (push consumers), the messages each client holds: the proxy
 *   renews their invisibility while the client lives (the broker keeps their handles valid, so a
 *   proxy that restarts loses nothing but the renewal), and releases them soon after it terminates or
 *   dies (`releaseAfter`);
 * - which client sent each half message, so the broker's transaction check-back reaches that producer
 *   (or any live producer of the topic).
 *
 * A receive's broker pop always runs to its end: when the caller goes away first, whatever the pop
 * took is released (visible again after `releaseAfter`) instead of staying invisible for its window.
 *
 * @since 0.1.0
 */
import { ConsumerGroup, Message, Topic } from "@strait/core"
import type { Transport as TransportShape } from "@strait/core"
import type { Client, Transactions } from "@strait/broker"
import type { LoadReports, MetadataStore } from "@strait/control"
import { Clock, Context, Duration, Effect, Exit, Fiber, Layer, Result, Schema, Scope, Tracer } from "effect"
import * as AccessControl from "./AccessControl.ts"
import * as BrokerLink from "./BrokerLink.ts"
import * as Namespaces from "./Namespaces.ts"
import * as Quotas from "./Quotas.ts"
import * as Routing from "./Routing.ts"

/**
 * Proxy tunables (RocketMQ's proxy defaults where it has them).
 *
 * @since 0.1.0
 */
export const ProxySettings = Context.Reference<{
  /** The window of a receive with automatic renewal; renewed while the client lives. */
  readonly autoRenewWindow: Duration.Input
  /** How often held messages are looked at for renewal. */
  readonly renewInterval: Duration.Input
  /** A held message is renewed when its window ends within this. */
  readonly renewAhead: Duration.Input
  /** No message is renewed for longer than this in all; its window then runs out. */
  readonly maxRenewal: Duration.Input
  /** A client not heard from (heartbeat or call) for this long is gone: what it holds is released. */
  readonly clientTimeout: Duration.Input
  /** Messages released (their client gone, or a receive abandoned) are visible again after this. */
  readonly releaseAfter: Duration.Input
  /** How long one wait for the broker's transaction check-backs lasts. */
  readonly checkPollWait: Duration.Input
  /** Most receives long-polling at once; one more is refused with `TooManyReceives`. */
  readonly maxParkedReceives: number
  /** How long a send waits for a broker to serve its queue when none does (a topic just created). */
  readonly ownerWait: Duration.Input
}>("@strait/proxy/Proxy/ProxySettings", {
  defaultValue: () => ({
    autoRenewWindow: Duration.seconds(60),
    renewInterval: Duration.seconds(5),
    renewAhead: Duration.seconds(10),
    maxRenewal: Duration.hours(3),
    clientTimeout: Duration.seconds(30),
    releaseAfter: Duration.seconds(1),
    checkPollWait: Duration.seconds(20),
    maxParkedReceives: 10_000,
    ownerWait: Duration.seconds(3)
  })
})

/**
 * The request carries no client id where one is required (RocketMQ `CLIENT_ID_REQUIRED`).
 *
 * @since 0.1.0
 */
export class ClientIdRequired extends Schema.TaggedError<ClientIdRequired>()("ClientIdRequired", {}) {
  override get message() {
    return "the request carries no client id"
  }
}

/**
 * As many receives as the proxy allows are long-polling already (RocketMQ `TOO_MANY_REQUESTS`,
 * "polling full"); the client backs off and tries again.
 *
 * @since 0.1.0
 */
export class TooManyReceives extends Schema.TaggedError<TooManyReceives>()("TooManyReceives", { limit: Schema.Number }) {
  override get message() {
    return `${this.limit} receives are long-polling already`
  }
}

/**
 * The broker could not be reached.
 *
 * @since 0.1.0
 */
export const BrokerUnreachable = BrokerLink.BrokerUnreachable

/**
 * The broker could not be reached.
 *
 * @since 0.1.0
 */
export type BrokerUnreachable = BrokerLink.BrokerUnreachable

/**
 * What a proxy operation can fail with: the broker's errors, and access control's.
 *
 * @since 0.1.0
 */
export type ProxyError = Routing.RoutingError | AccessControl.Forbidden | TooManyReceives | Quotas.Throttled

/**
 * Where a message sent through the proxy was stored.
 *
 * @since 0.1.0
 */
export interface SentReceipt {
  readonly messageId: string
  readonly queueId: number
  readonly offset: number
  readonly recallHandle?: string
}

/**
 * Who is calling: the client's id (empty for admin tools), its namespace, and who signed the request.
 *
 * @since 0.1.0
 */
export interface CallerContext {
  readonly clientId: string
  readonly namespace: string
  readonly principal: AccessControl.Principal
}

/**
 * A transaction check-back for a producer: resolve the half message `transactionId` by ending its
 * transaction. The half message carries the topic as the producer names it.
 *
 * @since 0.1.0
 */
export type CheckBack = Transactions.TransactionCheck

/**
 * What a client registers on its session: its kind, the topics it publishes to (producers) or the
 * group it consumes as, and where check-backs for it go.
 *
 * @since 0.1.0
 */
export interface Registration {
  readonly kind: "producer" | "consumer"
  readonly topics: ReadonlyArray<string>
  readonly group?: string
  readonly checks?: (check: CheckBack) => Effect.Effect<void>
}

/**
 * A receive: up to `maxMessages` of `topic` for `group`, invisible for `invisibleMillis`, or with
 * automatic renewal while the client lives when `invisibleMillis` is absent.
 *
 * @since 0.1.0
 */
export interface ReceiveRequest {
  readonly group: string
  readonly topic: string
  readonly maxMessages: number
  readonly invisibleMillis?: number
  readonly pollMillis: number
  readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
  readonly attemptId?: string
  /** The broker to poll (a RocketMQ route names one per queue); without it, each live broker in turn. */
  readonly broker?: string
}

/**
 * A consumer group's position on one queue of one broker.
 *
 * @since 0.1.0
 */
export interface GroupQueueProgress {
  readonly broker: string
  readonly topic: string
  readonly queueId: number
  readonly end: number
  readonly consumed: number
  readonly lag: number
  readonly inFlight: number
}

/**
 * A queue of one broker, as pull consumers read it.
 *
 * @since 0.1.0
 */
export interface PullQueue {
  readonly broker: string
  readonly queueId: number
  readonly start: number
  readonly end: number
}

/**
 * A pull from a queue of one broker.
 *
 * @since 0.1.0
 */
export interface PullRequest {
  readonly topic: string
  readonly broker: string
  readonly queueId: number
  readonly offset: number
  readonly maxCount: number
  readonly filter?: { readonly type: "TAG" | "SQL92"; readonly expression: string }
}

/**
 * A topic as a client sees it.
 *
 * @since 0.1.0
 */
export interface TopicView {
  readonly name: string
  readonly kind: Topic.TopicKind
  readonly queues: number
  readonly flush: "sync" | "async"
}

// a message a client holds under automatic renewal (keyed by its handle, which renewal keeps valid)
interface Lease {
  readonly group: string
  readonly topic: string
  readonly handle: string
  invisibleUntil: number
  readonly since: number
  failures: number
}

// a registration as the session keeps it: the topics by their broker (qualified) names, each with the
// name the client knows, and the group's broker name
interface Registered {
  readonly kind: Registration["kind"]
  readonly topics: ReadonlyMap<string, string>
  readonly group?: string
  readonly checks?: Registration["checks"]
}

interface Session {
  readonly clientId: string
  readonly namespace: string
  lastSeen: number
  /** Telemetry streams open: a client with one is alive however long it stays silent. */
  streams: number
  registration: Registered | undefined
  readonly leases: Map<string, Lease>
}

/**
 * The span a W3C `traceparent` (a message's trace context) names, if it is one.
 *
 * @since 0.1.0
 */
export const spanOfTraceContext = (traceContext: string | undefined): Tracer.ExternalSpan | undefined => {
  if (traceContext === undefined) return undefined
  const match = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/.exec(traceContext)
  return match === null ? undefined : Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (Number.parseInt(match[3]!, 16) & 1) === 1 })
}

// spans on the message path skip the stack trace capture: it was the proxy's largest single cost
const untraced = { captureStackTrace: false } as const

// the span of one message's way through the proxy: a child of the producer's span when the message carries one
const messageSpan = (name: string, kind: Tracer.SpanKind, message: Message.Message) => {
  const parent = spanOfTraceContext(message.traceContext)
  return Effect.withSpan(name, {
    kind,
    attributes: { "messaging.system": "strait", "messaging.destination.name": message.topic, "messaging.message.id": message.messageId },
    ...(parent === undefined ? {} : { parent })
  }, untraced)
}

// how many half-message senders are remembered (the oldest are forgotten first)
const maxRememberedHalves = 100_000

/**
 * A proxy's reading of its own load.
 *
 * @since 0.1.0
 */
export interface Meter {
  /** Messages sent and received so far. */
  readonly messages: number
  /** Bytes of those messages' bodies. */
  readonly bytes: number
  /** Client sessions alive now. */
  readonly sessions: number
  /** Messages received by clients and not yet acknowledged, that this proxy renews. */
  readonly holding: number
  readonly parkedReceives: number
  /** The p99 latency of the sends since the reading before, in milliseconds (0 without sends). */
  readonly p99Millis: number
}

/**
 * The proxy core.
 *
 * @since 0.1.0
 */
export class Proxy extends Context.Service<Proxy, {
  /** Checks a request's signature headers. */
  readonly authenticate: AccessControl.AccessControl["authenticate"]
  /** Notes that the client is alive (a heartbeat); a new client over its namespace's connections is `Throttled`. */
  readonly heartbeat: (caller: CallerContext) => Effect.Effect<void, Quotas.Throttled>
  /**
   * Registers what the client is and where its check-backs go, for as long as the scope lives
   * (a telemetry stream). While a stream is open the client is alive; after the last one closes its
   * session lives on until it terminates or times out.
   */
  readonly register: (caller: CallerContext, registration: Registration) => Effect.Effect<void, Quotas.Throttled, Scope.Scope>
  /** The client is leaving: what it holds under automatic renewal is released now. */
  readonly terminate: (caller: CallerContext) => Effect.Effect<void>
  /** A topic's kind and queues, for routing. */
  readonly topic: (caller: CallerContext, name: string) => Effect.Effect<TopicView, ProxyError>
  /** A consumer group's settings. */
  readonly group: (caller: CallerContext, name: string) => Effect.Effect<ConsumerGroup.ConsumerGroup, ProxyError>
  /** The brokers serving a topic's queues now, for the client's route (`undefined`: the one broker). */
  readonly route: (caller: CallerContext, topic: string) => Effect.Effect<Routing.Route, ProxyError>
  /** The broker serving each queue of a topic (`undefined`: the one broker, or none now). */
  readonly owners: (caller: CallerContext, topic: string) => Effect.Effect<ReadonlyArray<string | undefined>, ProxyError>
  /** Sends each message on its own: one result per message, in order. */
  readonly send: (
    caller: CallerContext,
    messages: ReadonlyArray<Message.Message>,
    options?: { readonly transactional?: boolean }
  ) => Effect.Effect<ReadonlyArray<Result.Result<SentReceipt, ProxyError>>, AccessControl.Forbidden>
  /** Receives (long polling up to `pollMillis`). */
  readonly receive: (caller: CallerContext, request: ReceiveRequest) => Effect.Effect<ReadonlyArray<Client.Received>, ProxyError>
  /** Gives back messages received but never handed to the client: visible again after `releaseAfter`. */
  readonly release: (caller: CallerContext, group: string, topic: string, receiptHandles: ReadonlyArray<string>) => Effect.Effect<void>
  /** Acknowledges messages: for each handle, `undefined` or why it failed. */
  readonly ack: (
    caller: CallerContext,
    group: string,
    topic: string,
    receiptHandles: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<ProxyError | undefined>, AccessControl.Forbidden>
  /** Moves a received message's invisibility; returns its new handle. */
  readonly changeInvisibility: (caller: CallerContext, group: string, topic: string, receiptHandle: string, millis: number) => Effect.Effect<string, ProxyError>
  /** Moves a received message to the group's dead-letter topic. */
  readonly forwardToDeadLetter: (caller: CallerContext, group: string, topic: string, receiptHandle: string) => Effect.Effect<void, ProxyError>
  readonly endTransaction: (caller: CallerContext, topic: string, transactionId: string, resolution: "COMMIT" | "ROLLBACK") => Effect.Effect<void, ProxyError>
  /** Cancels a delayed message not yet delivered; returns its id. */
  readonly recall: (caller: CallerContext, topic: string, recallHandle: string) => Effect.Effect<string, ProxyError>
  readonly createTopic: (caller: CallerContext, spec: TopicView) => Effect.Effect<TopicView, ProxyError>
  readonly updateTopic: (caller: CallerContext, name: string, change: { readonly queues?: number; readonly flush?: "sync" | "async" }) => Effect.Effect<TopicView, ProxyError>
  readonly deleteTopic: (caller: CallerContext, name: string) => Effect.Effect<void, ProxyError>
  readonly topics: (caller: CallerContext) => Effect.Effect<ReadonlyArray<TopicView>, ProxyError>
  readonly setGroup: (caller: CallerContext, group: ConsumerGroup.ConsumerGroup) => Effect.Effect<void, ProxyError>
  readonly groups: (caller: CallerContext) => Effect.Effect<ReadonlyArray<ConsumerGroup.ConsumerGroup>, ProxyError>
  /** The queues of a topic to pull from: per broker, each queue's first and next offsets. */
  readonly pullQueues: (caller: CallerContext, topic: string) => Effect.Effect<ReadonlyArray<PullQueue>, ProxyError>
  /** Reads a queue of one broker from `offset`, at most `maxCount` messages. */
  readonly pull: (caller: CallerContext, request: PullRequest) => Effect.Effect<{
    readonly messages: ReadonlyArray<Message.StoredMessage>
    readonly nextOffset: number
  }, ProxyError>
  /** Stores a group's offset on a queue of one broker. */
  readonly commitOffset: (caller: CallerContext, group: string, queue: { readonly topic: string; readonly broker: string; readonly queueId: number }, offset: number) => Effect.Effect<void, ProxyError>
  /** A group's stored offset on a queue of one broker, if any. */
  readonly queryOffset: (caller: CallerContext, group: string, queue: { readonly topic: string; readonly broker: string; readonly queueId: number }) => Effect.Effect<number | undefined, ProxyError>
  /** Where a consumer group stands on every queue of every broker (admin): lag and messages in flight. */
  readonly groupProgress: (caller: CallerContext, group: string) => Effect.Effect<ReadonlyArray<GroupQueueProgress>, ProxyError>
  /** Replaces the cluster's access settings (admin on `*`); `false` for a proxy without a control plane. */
  readonly setAccess: (caller: CallerContext, settings: AccessControl.AccessSettings) => Effect.Effect<boolean, ProxyError>
  /** The cluster's nodes and queue owners (admin). */
  readonly status: (caller: CallerContext) => Effect.Effect<Routing.ClusterStatus, ProxyError>
  /** Receives long-polling now. */
  readonly parkedReceives: Effect.Effect<number>
  /**
   * What this proxy has carried (running totals of messages and body bytes sent and received) and
   * holds now, for its load report. The p99 is of the sends since the reading before: reading starts
   * a new window.
   */
  readonly meter: Effect.Effect<Meter>
  /** Live sessions, for tests and operators. */
  readonly sessions: Effect.Effect<ReadonlyArray<{ readonly clientId: string; readonly kind?: string; readonly holding: number }>>
}>()("@strait/proxy/Proxy") {
  /**
   * A proxy in front of the broker at `broker` (a `Transport` address), with access control from
   * `access` (everything allowed without it).
   */
  static readonly layer = (options: {
    readonly broker: string
    readonly access?: AccessControl.AccessSettings
    readonly quotas?: Quotas.QuotaSettings
  }): Layer.Layer<Proxy, never, TransportShape.Transport> =>
    Layer.effect(Proxy, Effect.flatMap(Routing.single(options.broker), (routing) => make(routing, options.access, options.quotas)))

  /**
   * A proxy of a cluster: routes from the control plane's catalog in the `MetadataStore`, brokers
   * reached over the `Transport` at the addresses they registered.
   */
  static readonly layerCluster = (options: {
    readonly access?: AccessControl.AccessSettings
    readonly quotas?: Quotas.QuotaSettings
    /** This host's id: brokers on it that serve shared memory are linked through it. */
    readonly hostId?: string
  } = {}): Layer.Layer<Proxy, never, TransportShape.Transport | MetadataStore.MetadataStore> =>
    Layer.effect(Proxy, Effect.flatMap(Routing.cluster(options.hostId === undefined ? {} : { hostId: options.hostId }), (routing) => make(routing, options.access, options.quotas)))
}

/**
 * A proxy's load report sample: what it carried and holds (its meter), and the CPU time `cpuMicros`
 * gives (the process's, or 0 where CPU is not measured, as in the simulator).
 *
 * @since 0.1.0
 */
export const loadSample = (proxy: Proxy["Service"], cpuMicros: () => number): Effect.Effect<LoadReports.Sample> =>
  Effect.map(proxy.meter, (meter) => ({
    cpuMicros: cpuMicros(),
    messages: meter.messages,
    bytes: meter.bytes,
    connections: meter.sessions,
    popInFlight: meter.holding,
    backlog: 0,
    lagMillis: 0,
    p99Millis: meter.p99Millis
  }))

const encodeAccess = Schema.encodeSync(AccessControl.AccessSettingsJson)

// how many times a send is tried on another broker after a refusal a retry may cure
const sendAttempts = 3

const make = Effect.fnUntraced(function*(
  routing: Routing.Routing,
  accessSettings: AccessControl.AccessSettings | undefined,
  quotaSettings: Quotas.QuotaSettings | undefined
) {
  const settings = yield* ProxySettings
  const quotas = Quotas.make(quotaSettings)
  // the control plane's access settings when it holds some (followed as they change), else the proxy's own
  const own = AccessControl.make(accessSettings)
  let stored: { readonly source: unknown; readonly control: AccessControl.AccessControl } | undefined
  const decodeAccess = Schema.decodeUnknownExit(AccessControl.AccessSettingsJson)
  // plain code: it runs on every call (decoding again only when the stored settings changed)
  const currentAccess = () => {
    const source = routing.accessSettings()
    if (source === undefined) return own
    if (stored?.source !== source) {
      const decoded = decodeAccess(source)
      stored = { source, control: Exit.isSuccess(decoded) ? AccessControl.make(decoded.value) : own }
    }
    return stored.control
  }
  const access: AccessControl.AccessControl = {
    authenticate: (headers) => Effect.suspend(() => currentAccess().authenticate(headers)),
    authorize: (principal, namespace, action, resource) => Effect.suspend(() => currentAccess().authorize(principal, namespace, action, resource))
  }
  const scope = yield* Effect.scope
  const autoRenewMillis = Duration.toMillis(settings.autoRenewWindow)
  const renewAheadMillis = Duration.toMillis(settings.renewAhead)
  const maxRenewalMillis = Duration.toMillis(settings.maxRenewal)
  const clientTimeoutMillis = Duration.toMillis(settings.clientTimeout)
  const releaseMillis = Duration.toMillis(settings.releaseAfter)

  const sessions = new Map<string, Session>()
  let parkedReceives = 0
  // what the meter reads: running totals, and the send latencies of the current window (at most the
  // last 4096 of them)
  let meteredMessages = 0
  let meteredBytes = 0
  // a ring: once full, each send overwrites the oldest
  const latencies = new Float64Array(4096)
  let sendsInWindow = 0
  // transaction id -> the client that sent the half message, and the broker that holds it (insertion order = age)
  const halfSenders = new Map<string, { readonly clientId: string | undefined; readonly broker: string | undefined }>()

  const via = <A, E>(ref: Routing.BrokerRef, f: (client: Client.BrokerClient) => Effect.Effect<A, E>) => Effect.flatMap(ref.client, f)
  const viaHandle = <A, E>(handle: string, f: (client: Client.BrokerClient) => Effect.Effect<A, E>) =>
    Effect.flatMap(routing.forHandle(handle), (ref) => via(ref, f))
  // a request a broker may or may not know (a transaction, a recall): the broker that knows it, else each in turn
  const firstThatKnows = <A, E extends { readonly _tag: string }>(
    known: Routing.BrokerRef | undefined,
    unknownTag: string,
    f: (client: Client.BrokerClient) => Effect.Effect<A, E>
  ) =>
    Effect.gen(function*() {
      const candidates = known !== undefined ? [known] : yield* routing.brokers
      let last: E | Routing.RoutingError | undefined
      for (const ref of candidates) {
        const outcome = yield* Effect.result(via(ref, f))
        if (Result.isSuccess(outcome)) return outcome.success
        last = outcome.failure
        if (outcome.failure._tag !== unknownTag) break
      }
      return yield* Effect.fail(last ?? new BrokerLink.BrokerUnreachable({ broker: "none", reason: "no broker is registered" }))
    })

  // clients connected per namespace, for its connections quota
  const connected = new Map<string, number>()
  const forget = (session: Session) => {
    if (sessions.get(session.clientId) !== session) return
    sessions.delete(session.clientId)
    const left = (connected.get(session.namespace) ?? 1) - 1
    if (left <= 0) connected.delete(session.namespace)
    else connected.set(session.namespace, left)
  }
  // the caller's session, opened on its first call unless its namespace has all the clients it may
  const sessionOf = (caller: CallerContext, now: number): Session | undefined | Quotas.Throttled => {
    if (caller.clientId === "") return undefined
    let session = sessions.get(caller.clientId)
    if (session === undefined) {
      const open = connected.get(caller.namespace) ?? 0
      const refused = quotas.admitConnection(caller.namespace, open)
      if (refused !== undefined) return refused
      connected.set(caller.namespace, open + 1)
      sessions.set(caller.clientId, session = { clientId: caller.clientId, namespace: caller.namespace, lastSeen: now, streams: 0, registration: undefined, leases: new Map() })
    }
    session.lastSeen = now
    return session
  }
  const touch = (caller: CallerContext) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const session = sessionOf(caller, now)
      return session instanceof Quotas.Throttled ? Effect.fail(session) : Effect.succeed(session)
    })

  // the client settles a message it holds: automatic renewal of it ends
  const takeLease = (session: Session | undefined, handle: string) => {
    session?.leases.delete(handle)
    return handle
  }

  const qualify = Namespaces.qualify
  const authorize = (caller: CallerContext, action: AccessControl.Action, resource: string) =>
    access.authorize(caller.principal, caller.namespace, action, resource)

  const view = (namespace: string, topic: { readonly name: string; readonly kind: Topic.TopicKind; readonly queues: number; readonly flush: "sync" | "async" }): TopicView => ({
    name: Namespaces.unqualify(namespace, topic.name) ?? topic.name,
    kind: topic.kind,
    queues: topic.queues,
    flush: topic.flush
  })

  // release: visible again soon, for every handle given (failures are moot: the window ends anyway)
  const releaseHandles = (group: string, topic: string, handles: ReadonlyArray<string>) =>
    Effect.forEach(
      handles,
      (handle) => Effect.ignore(viaHandle(handle, (broker) => broker.changeInvisibility(group, topic, handle, Duration.millis(releaseMillis)))),
      { concurrency: "unbounded", discard: true }
    )

  const releaseLeases = (session: Session) =>
    Effect.suspend(() => {
      const leases = [...session.leases.values()]
      session.leases.clear()
      return Effect.forEach(leases, (lease) => releaseHandles(lease.group, lease.topic, [lease.handle]), { concurrency: "unbounded", discard: true })
    })

  // renews held messages while their clients live; forgets clients gone silent
  const renewOnce = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const session of [...sessions.values()]) {
      if (session.streams === 0 && now - session.lastSeen > clientTimeoutMillis) {
        forget(session)
        yield* Effect.logInfo(`client ${session.clientId} timed out; releasing ${session.leases.size} held messages`)
        yield* releaseLeases(session)
        continue
      }
      for (const lease of session.leases.values()) {
        if (lease.invisibleUntil - now > renewAheadMillis) continue
        if (now - lease.since >= maxRenewalMillis) {
          session.leases.delete(lease.handle)
          continue
        }
        const renewed = yield* viaHandle(lease.handle, (broker) => broker.renewInvisibility(lease.group, lease.topic, lease.handle, Duration.millis(autoRenewMillis))).pipe(Effect.result)
        if (Result.isSuccess(renewed)) {
          lease.invisibleUntil = renewed.success
          lease.failures = 0
        } else if (++lease.failures >= 3 || renewed.failure._tag === "ReceiptHandleStale" || renewed.failure._tag === "ReceiptHandleExpired") {
          session.leases.delete(lease.handle)
        }
      }
    }
  })
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(settings.renewInterval), renewOnce)))

  // the broker's transaction check-backs, each to the producer that sent the half, or any producer of the topic
  const route = (check: Transactions.TransactionCheck) =>
    Effect.gen(function*() {
      const sender = halfSenders.get(check.transactionId)?.clientId
      const candidates = [...sessions.values()].filter((session) =>
        session.registration?.checks !== undefined && session.registration.kind === "producer")
      const target = candidates.find((session) => session.clientId === sender) ??
        candidates.find((session) => session.registration!.topics.has(check.message.topic))
      if (target === undefined) {
        return yield* Effect.logDebug(`no live producer for the check-back of ${check.transactionId} on ${check.message.topic}`)
      }
      yield* target.registration!.checks!({
        transactionId: check.transactionId,
        message: new Message.Message({ ...check.message, topic: target.registration!.topics.get(check.message.topic) ?? check.message.topic }),
        attempt: check.attempt
      })
    })

  // one long poll for check-backs per broker, started and stopped as brokers come and go
  const checkPolls = new Map<string, Fiber.Fiber<never>>()
  const pollChecks = (ref: Routing.BrokerRef) =>
    Effect.forever(
      via(ref, (broker) => broker.awaitChecks(32, Duration.toMillis(settings.checkPollWait))).pipe(
        Effect.flatMap((checks) => Effect.forEach(checks, route, { discard: true })),
        Effect.catch((error) => Effect.logDebug("waiting for check-backs failed; trying again in a second", error).pipe(Effect.andThen(Effect.sleep(Duration.seconds(1)))))
      )
    )
  const syncCheckPolls = Effect.gen(function*() {
    const brokers = yield* routing.brokers
    const keys = new Set(brokers.map((ref) => ref.id ?? ""))
    for (const [key, fiber] of checkPolls) {
      if (keys.has(key)) continue
      checkPolls.delete(key)
      yield* Fiber.interrupt(fiber)
    }
    for (const ref of brokers) if (!checkPolls.has(ref.id ?? "")) checkPolls.set(ref.id ?? "", yield* Effect.forkIn(pollChecks(ref), scope))
  })
  yield* syncCheckPolls
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.seconds(1)), syncCheckPolls)))

  // a send to the broker serving the message's queue; a refusal a retry may cure (the broker lost the
  // queue, went away, or has not mirrored the topic yet) is retried on another broker
  const retryable = new Set(["NotQueueOwner", "BrokerUnreachable", "BrokerUnavailable", "ConnectionClosed", "ConnectionDraining", "TopicNotFound"])
  // a queue with no broker serving it yet (a topic just created, a dead broker's lease not yet
  // expired) gets one within moments: the route is read again for up to `ownerWait`
  const ownerWaitSteps = Math.ceil(Duration.toMillis(settings.ownerWait) / 100)
  const routeSend = (message: Message.Message, exclude: ReadonlySet<string>) =>
    Effect.gen(function*() {
      for (let step = 0; ; step++) {
        const route = yield* Effect.result(routing.forSend(message.topic, message.messageGroup, exclude))
        if (Result.isSuccess(route)) return route.success
        const unserved = route.failure._tag === "BrokerUnreachable" && route.failure.broker === "none"
        if (!unserved || step >= ownerWaitSteps) return yield* Effect.fail(route.failure)
        yield* Effect.sleep(Duration.millis(100))
        yield* routing.refresh
      }
    })
  // a route with no queue served at all (a topic just created) is read again for up to `ownerWait`,
  // so that a client starting right after the topic's creation does not take an empty route
  const routeServed = (name: string) =>
    Effect.gen(function*() {
      for (let step = 0; ; step++) {
        const route = yield* routing.route(name)
        if (route.some((entry) => entry.queues > 0) || step >= ownerWaitSteps) return route
        yield* Effect.sleep(Duration.millis(100))
        yield* routing.refresh
      }
    })
  const sendRouted = (message: Message.Message, transactional: boolean, clientId: string | undefined) =>
    Effect.gen(function*() {
      const exclude = new Set<string>()
      const fenced = new Set<string>()
      for (let attempt = 1; ; attempt++) {
        const { fence, ref } = yield* routeSend(message, exclude)
        const sent = yield* Effect.result(via(ref, (broker) => broker.send([message], { transactional, ...(fence === undefined ? {} : { fence }) })))
        if (Result.isSuccess(sent)) {
          if (transactional) {
            halfSenders.set(message.messageId, { clientId, broker: ref.id })
            if (halfSenders.size > maxRememberedHalves) halfSenders.delete(halfSenders.keys().next().value!)
          }
          return sent.success
        }
        if (ref.id === undefined || attempt >= sendAttempts || !retryable.has(sent.failure._tag)) return yield* Effect.fail(sent.failure)
        // a broker that no longer holds what this proxy believed: read the catalog again and route anew
        // (the broker may hold the queue at a newer epoch); refused twice, or for any other reason:
        // try another broker
        if (sent.failure._tag === "NotQueueOwner" && !fenced.has(ref.id)) {
          fenced.add(ref.id)
          yield* routing.refresh
        } else {
          exclude.add(ref.id)
        }
        yield* Effect.logDebug(`broker ${ref.id} refused a send to ${message.topic} (${sent.failure._tag}); trying another`)
      }
    })

  const service: Proxy["Service"] = {
    authenticate: access.authenticate,
    heartbeat: (caller) => Effect.asVoid(touch(caller)),
    register: (caller, registration) =>
      Effect.gen(function*() {
        const session = yield* touch(caller)
        if (session === undefined) return
        const qualified: Registered = {
          kind: registration.kind,
          topics: new Map(registration.topics.map((topic) => [qualify(caller.namespace, topic), topic])),
          ...(registration.group === undefined ? {} : { group: qualify(caller.namespace, registration.group) }),
          ...(registration.checks === undefined ? {} : { checks: registration.checks })
        }
        session.registration = qualified
        session.streams++
        // the stream ended: no check-backs go there any more; the session lives on until it times out
        yield* Effect.addFinalizer(() =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            session.streams--
            session.lastSeen = now
            if (session.registration === qualified) {
              const { checks: _, ...rest } = qualified
              session.registration = rest
            }
          })
        )
      }),
    terminate: (caller) =>
      Effect.suspend(() => {
        const session = sessions.get(caller.clientId)
        if (session === undefined) return Effect.void
        forget(session)
        return releaseLeases(session)
      }),
    topic: (caller, name) =>
      Effect.gen(function*() {
        yield* touch(caller)
        const described = yield* routing.topic(qualify(caller.namespace, name))
        return view(caller.namespace, described)
      }),
    group: (caller, name) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${name}`)
        const group = yield* routing.group(qualify(caller.namespace, name))
        return new ConsumerGroup.ConsumerGroup({ ...group, name: name as ConsumerGroup.ConsumerGroupName })
      }),
    route: (caller, name) => Effect.andThen(touch(caller), routeServed(qualify(caller.namespace, name))),
    owners: (caller, name) => Effect.andThen(touch(caller), routing.owners(qualify(caller.namespace, name))),
    send: (caller, messages, sendOptions = {}) =>
      Effect.gen(function*() {
        for (const message of messages) yield* authorize(caller, "pub", `topic:${message.topic}`)
        const touched = yield* Effect.result(touch(caller))
        if (Result.isFailure(touched)) return messages.map(() => Result.fail(touched.failure))
        const session = touched.success
        const transactional = sendOptions.transactional === true
        // the messages over the namespace's quota are refused, each on its own
        const { admitted, refusal } = yield* quotas.admitSend(caller.namespace, messages.map((message) => message.body.length))
        const started = yield* Clock.currentTimeMillis
        for (let i = 0; i < admitted; i++) meteredBytes += messages[i]!.body.length
        meteredMessages += admitted
        return yield* Effect.forEach(messages, (message, i): Effect.Effect<Result.Result<SentReceipt, ProxyError>> => {
          if (i >= admitted) return Effect.succeed(Result.fail(refusal!))
          const qualified = caller.namespace === "" ? message : Message.withTopic(message, qualify(caller.namespace, message.topic))
          return sendRouted(qualified, transactional, session?.clientId).pipe(
            messageSpan("strait.proxy.send", "producer", message),
            Effect.map(([receipt]) => ({
              messageId: receipt!.messageId,
              queueId: receipt!.queueId,
              offset: receipt!.offset,
              ...(receipt!.recallHandle === undefined ? {} : { recallHandle: receipt!.recallHandle })
            })),
            Effect.result
          )
        }, { concurrency: "unbounded" }).pipe(Effect.tap(Effect.flatMap(Clock.currentTimeMillis, (ended) =>
          Effect.sync(() => {
            latencies[sendsInWindow++ % latencies.length] = ended - started
          }))))
      }),
    receive: (caller, request) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `topic:${request.topic}`)
        yield* authorize(caller, "sub", `group:${request.group}`)
        const session = yield* touch(caller)
        const group = qualify(caller.namespace, request.group)
        const topic = qualify(caller.namespace, request.topic)
        yield* quotas.admitReceive(caller.namespace)
        const autoRenew = request.invisibleMillis === undefined
        const parks = request.pollMillis > 0
        if (parks && parkedReceives >= settings.maxParkedReceives) return yield* new TooManyReceives({ limit: settings.maxParkedReceives })
        const pop = via(yield* routing.forReceive(request.broker, `${group}\u0000${topic}`), (broker) => broker.pop({
          group,
          topic,
          maxMessages: request.maxMessages,
          invisibleDuration: Duration.millis(request.invisibleMillis ?? autoRenewMillis),
          pollTimeout: Duration.millis(request.pollMillis),
          ...(request.filter === undefined ? {} : { filter: request.filter }),
          ...(request.attemptId === undefined ? {} : { attemptId: request.attemptId })
        }))
        // the pop runs to its end even if the caller leaves: what it took then is released
        if (parks) parkedReceives++
        const fiber = yield* Effect.forkIn(Effect.ensuring(pop, Effect.sync(() => parks && parkedReceives--)), scope)
        const received = yield* Fiber.join(fiber).pipe(
          Effect.onInterrupt(() =>
            Effect.forkIn(
              Fiber.await(fiber).pipe(Effect.flatMap((exit) =>
                Exit.isSuccess(exit) ? releaseHandles(group, topic, exit.value.map((r) => r.receiptHandle)) : Effect.void
              )),
              scope
            ))
        )
        let bytes = 0
        for (const { message } of received) bytes += message.body.length
        meteredMessages += received.length
        meteredBytes += bytes
        yield* quotas.received(caller.namespace, received.length, bytes)
        yield* Effect.annotateCurrentSpan({
          "messaging.message.count": received.length,
          "messaging.message.ids": received.map((r) => r.message.messageId)
        })
        if (autoRenew && session !== undefined) {
          const now = yield* Clock.currentTimeMillis
          for (const { invisibleUntil, receiptHandle } of received) {
            session.leases.set(receiptHandle, { group, topic, handle: receiptHandle, invisibleUntil, since: now, failures: 0 })
          }
        }
        return received
      }).pipe(Effect.withSpan("strait.proxy.receive", {
        kind: "consumer",
        attributes: { "messaging.system": "strait", "messaging.destination.name": request.topic, "messaging.consumer.group.name": request.group }
      }, untraced)),
    release: (caller, group, topic, handles) =>
      Effect.suspend(() => {
        const session = sessions.get(caller.clientId)
        const current = handles.map((handle) => takeLease(session, handle))
        return releaseHandles(qualify(caller.namespace, group), qualify(caller.namespace, topic), current)
      }),
    ack: (caller, group, topic, receiptHandles) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${group}`)
        const touched = yield* Effect.result(touch(caller))
        if (Result.isFailure(touched)) return receiptHandles.map((): ProxyError | undefined => touched.failure)
        const session = touched.success
        const current = receiptHandles.map((handle) => takeLease(session, handle))
        const qualifiedGroup = qualify(caller.namespace, group)
        const qualifiedTopic = qualify(caller.namespace, topic)
        if (current.length === 1) {
          // single acknowledgements of many callers share one request (the client coalesces them)
          return yield* Effect.match(viaHandle(current[0]!, (broker) => broker.ack(qualifiedGroup, qualifiedTopic, current[0]!)), {
            onFailure: (error): ReadonlyArray<ProxyError | undefined> => [error],
            onSuccess: () => [undefined]
          })
        }
        // one request per broker that issued some of the handles
        const byBroker = new Map<Routing.BrokerRef, Array<number>>()
        const results: Array<ProxyError | undefined> = current.map(() => undefined)
        for (let i = 0; i < current.length; i++) {
          const ref = yield* Effect.result(routing.forHandle(current[i]!))
          if (Result.isFailure(ref)) results[i] = ref.failure
          else byBroker.set(ref.success, [...(byBroker.get(ref.success) ?? []), i])
        }
        yield* Effect.forEach(byBroker, ([ref, indexes]) =>
          Effect.map(Effect.result(via(ref, (broker) => broker.ackMany(qualifiedGroup, qualifiedTopic, indexes.map((i) => current[i]!)))), (outcome) =>
            indexes.forEach((index, j) => {
              results[index] = Result.isSuccess(outcome) ? outcome.success[j] : outcome.failure
            })), { concurrency: "unbounded", discard: true })
        return results
      }).pipe(Effect.withSpan("strait.proxy.ack", {
        kind: "consumer",
        attributes: { "messaging.system": "strait", "messaging.destination.name": topic, "messaging.consumer.group.name": group, "messaging.message.count": receiptHandles.length }
      }, untraced)),
    changeInvisibility: (caller, group, topic, receiptHandle, millis) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${group}`)
        const handle = takeLease(yield* touch(caller), receiptHandle)
        return yield* viaHandle(handle, (broker) =>
          broker.changeInvisibility(qualify(caller.namespace, group), qualify(caller.namespace, topic), handle, Duration.millis(millis)))
      }),
    forwardToDeadLetter: (caller, group, topic, receiptHandle) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${group}`)
        const handle = takeLease(yield* touch(caller), receiptHandle)
        return yield* viaHandle(handle, (broker) => broker.forwardToDeadLetter(qualify(caller.namespace, group), qualify(caller.namespace, topic), handle))
      }),
    endTransaction: (caller, topic, transactionId, resolution) =>
      Effect.gen(function*() {
        yield* authorize(caller, "pub", `topic:${topic}`)
        yield* touch(caller)
        const holder = halfSenders.get(transactionId)?.broker
        const known = holder === undefined ? undefined : (yield* routing.brokers).find((ref) => ref.id === holder)
        yield* firstThatKnows(known, "TransactionNotFound", (broker) => broker.endTransaction(qualify(caller.namespace, topic), transactionId, resolution))
        halfSenders.delete(transactionId)
      }),
    recall: (caller, topic, recallHandle) =>
      Effect.gen(function*() {
        yield* authorize(caller, "pub", `topic:${topic}`)
        return yield* firstThatKnows(undefined, "RecallFailed", (broker) => broker.recall(qualify(caller.namespace, topic), recallHandle))
      }),
    createTopic: (caller, spec) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", `topic:${spec.name}`)
        const created = yield* routing.createTopic({ ...spec, name: qualify(caller.namespace, spec.name) })
        return view(caller.namespace, created)
      }),
    updateTopic: (caller, name, change) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", `topic:${name}`)
        const updated = yield* routing.updateTopic(qualify(caller.namespace, name), change)
        return view(caller.namespace, updated)
      }),
    deleteTopic: (caller, name) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", `topic:${name}`)
        yield* routing.deleteTopic(qualify(caller.namespace, name))
      }),
    topics: (caller) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", "topic:*")
        const all = yield* routing.topics
        return all.flatMap((topic) => Namespaces.unqualify(caller.namespace, topic.name) === undefined ? [] : [view(caller.namespace, topic)])
      }),
    setGroup: (caller, group) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", `group:${group.name}`)
        yield* routing.setGroup(new ConsumerGroup.ConsumerGroup({ ...group, name: qualify(caller.namespace, group.name) as ConsumerGroup.ConsumerGroupName }))
      }),
    groups: (caller) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", "group:*")
        const all = yield* routing.groups
        return all.flatMap((group) => {
          const name = Namespaces.unqualify(caller.namespace, group.name)
          return name === undefined ? [] : [new ConsumerGroup.ConsumerGroup({ ...group, name: name as ConsumerGroup.ConsumerGroupName })]
        })
      }),
    status: (caller) => Effect.andThen(authorize(caller, "admin", "cluster:*"), routing.status),
    setAccess: (caller, accessSettings) =>
      Effect.andThen(authorize(caller, "admin", "*"), routing.setAccessSettings(encodeAccess(accessSettings))),
    pullQueues: (caller, topic) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `topic:${topic}`)
        const qualified = qualify(caller.namespace, topic)
        const perBroker = yield* Effect.forEach(yield* routing.brokers, (ref) =>
          via(ref, (broker) => broker.describeTopic(qualified)).pipe(
            Effect.map((described) => described.bounds.map(({ end, queueId, start }): PullQueue => ({ broker: ref.id ?? "broker", queueId, start, end }))),
            // a broker that has not mirrored the topic yet holds none of its messages
            Effect.catchTag("TopicNotFound", () => Effect.succeed([] as ReadonlyArray<PullQueue>))
          ), { concurrency: "unbounded" })
        return perBroker.flat()
      }),
    pull: (caller, request) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `topic:${request.topic}`)
        yield* touch(caller)
        const pulled = yield* via(yield* routing.broker(request.broker), (broker) =>
          broker.pull({
            topic: qualify(caller.namespace, request.topic),
            queueId: request.queueId,
            offset: request.offset,
            maxCount: request.maxCount,
            ...(request.filter === undefined ? {} : { filter: request.filter })
          }))
        return { messages: pulled.messages, nextOffset: pulled.nextOffset }
      }),
    commitOffset: (caller, group, queue, offset) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${group}`)
        yield* via(yield* routing.broker(queue.broker), (broker) =>
          broker.commitOffset(qualify(caller.namespace, group), qualify(caller.namespace, queue.topic), queue.queueId, offset))
      }),
    queryOffset: (caller, group, queue) =>
      Effect.gen(function*() {
        yield* authorize(caller, "sub", `group:${group}`)
        return yield* via(yield* routing.broker(queue.broker), (broker) =>
          broker.queryOffset(qualify(caller.namespace, group), qualify(caller.namespace, queue.topic), queue.queueId))
      }),
    groupProgress: (caller, group) =>
      Effect.gen(function*() {
        yield* authorize(caller, "admin", `group:${group}`)
        const rows = yield* Effect.forEach(yield* routing.brokers, (ref) =>
          Effect.map(via(ref, (broker) => broker.groupProgress(qualify(caller.namespace, group))), (queues) =>
            queues.flatMap((queue): ReadonlyArray<GroupQueueProgress> => {
              const topic = Namespaces.unqualify(caller.namespace, queue.topic)
              return topic === undefined ? [] : [{ ...queue, topic, broker: ref.id ?? "broker", lag: Math.max(0, queue.end - queue.consumed) }]
            })), { concurrency: "unbounded" })
        return rows.flat().sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.broker < b.broker ? -1 : a.broker > b.broker ? 1 : a.queueId - b.queueId)
      }),
    parkedReceives: Effect.sync(() => parkedReceives),
    meter: Effect.sync(() => {
      const window = latencies.slice(0, Math.min(sendsInWindow, latencies.length)).sort()
      sendsInWindow = 0
      let holding = 0
      for (const session of sessions.values()) holding += session.leases.size
      return {
        messages: meteredMessages,
        bytes: meteredBytes,
        sessions: sessions.size,
        holding,
        parkedReceives,
        p99Millis: window.length === 0 ? 0 : window[Math.min(window.length - 1, Math.ceil(window.length * 0.99) - 1)]!
      }
    }),
    sessions: Effect.sync(() =>
      [...sessions.values()].map((session) => ({
        clientId: session.clientId,
        ...(session.registration === undefined ? {} : { kind: session.registration.kind }),
        holding: session.leases.size
      })))
  }
  return service
})
