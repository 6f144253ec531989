/**
 * An in-process network for tests and the simulator, with seeded fault injection.
 *
 * Nodes attach to one `SimNetwork` through `MemoryTransport.layer({ node })`; connections between
 * them are pairs of in-memory wires. Every delay comes from `Clock` and every choice from `Random`,
 * so under the simulator the same seed gives the same delivery order. Faults: dropped batches,
 * latency with jitter, partitions between sets of nodes (traffic stalls until healed, so heartbeats
 * declare the peer dead), severed connections and killed nodes (their peers see `peer-dead`).
 *
 * @since 0.1.0
 */
import { Trace, Transport } from "@strait/core"
import { Cause, Clock, Context, Deferred, Duration, Effect, Latch, Layer, Queue, Random, type Scope, Stream } from "effect"
import * as Connection from "./Connection.ts"

/**
 * Latency and loss applied to every batch on every wire.
 *
 * @since 0.1.0
 */
export interface Faults {
  /** Probability in [0, 1] that a batch silently disappears. */
  readonly dropRate: number
  /** Every batch waits `latency` plus a uniform jitter in [0, `jitter`]; order per wire is kept. */
  readonly latency: Duration.Input
  readonly jitter: Duration.Input
  /**
   * Bytes a wire (one direction of a connection) carries per millisecond, one batch after another:
   * a batch waits its size over this on top of its latency, so traffic queues behind a busy wire.
   * 0 (the default) is unlimited.
   */
  readonly bandwidth?: number
}

/**
 * What the network has done so far.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly connections: number
  readonly delivered: number
  readonly dropped: number
}

/** One direction of a connection: batches in transit, delivered to the far end's receiver. */
interface Wire {
  readonly from: string
  readonly to: string
  readonly label: string
  readonly transit: Queue.Queue<InTransit, Connection.PipeClosed | Cause.Done>
  /** When the last batch written is due at the far end. */
  lastArrival: number
  /** Until when the wire sends what was written (with a bandwidth). */
  busyUntil: number
  /** Open while the receiver takes chunks: closed until it is attached, and while it is paused. */
  readonly flowing: Latch.Latch
  receiver: Connection.PipeReceiver | undefined
  /** How the wire ended, once it has; told to the receiver when it attaches if it was not there. */
  ended: Connection.PipeClosed | undefined
}

/** A batch on its way: when it arrives, and whether it is lost on the way. */
interface InTransit {
  readonly at: number
  readonly batch: ReadonlyArray<Uint8Array> | "end"
  readonly lost: boolean
}

interface Link {
  readonly id: number
  readonly client: string
  readonly server: string
  readonly sever: (reason: string) => Effect.Effect<void>
}

interface Endpoint {
  readonly node: string
  readonly accept: (pipe: Connection.Pipe, remote: string) => Effect.Effect<void>
}

/**
 * The network's internals, shared by the nodes' `Transport`s and the fault controls.
 *
 * @since 0.1.0
 */
export interface Network {
  readonly listen: (name: string, endpoint: Endpoint) => Effect.Effect<void, Transport.AddressInUse, Scope.Scope>
  readonly connect: (client: string, name: string) => Effect.Effect<Connection.Pipe, Transport.ConnectFailed, Scope.Scope>
}

/**
 * Fault controls and the shared network of one simulated cluster.
 *
 * @since 0.1.0
 */
export class SimNetwork extends Context.Service<SimNetwork, {
  readonly network: Network
  /** Replaces loss and latency for all wires. */
  readonly setFaults: (faults: Partial<Faults>) => Effect.Effect<void>
  /**
   * Stalls all traffic between the two sets of nodes and refuses new connections across them.
   * Succeeds with the effect that heals this partition alone (others stay).
   */
  readonly partition: (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => Effect.Effect<Effect.Effect<void>>
  /** Removes every partition; stalled traffic flows again. */
  readonly heal: Effect.Effect<void>
  /** Resets every connection between nodes `a` and `b`: both sides see `peer-dead`. */
  readonly sever: (a: string, b: string) => Effect.Effect<number>
  /** A node crash: resets all its connections and removes its listeners. */
  readonly kill: (node: string) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}>()("@strait/transport/SimNetwork") {
  /** A fresh network; one per simulated cluster. */
  static readonly layer = (faults: Partial<Faults> = {}): Layer.Layer<SimNetwork> =>
    Layer.effect(SimNetwork, make(faults))
}

const wireCapacity = 64

const fnv1a = (chunks: ReadonlyArray<Uint8Array>) => {
  let hash = 0x811c9dc5
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) hash = Math.imul(hash ^ chunk[i]!, 0x01000193)
  }
  return (hash >>> 0).toString(16)
}

const make = (initial: Partial<Faults>) =>
  Effect.gen(function*() {
    const networkScope = yield* Effect.scope
    const trace = yield* Trace.Trace
    // the network's own time and chance (the cluster's, not any node's drifting clock)
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    let faults: Faults = { dropRate: 0, latency: 0, jitter: 0, ...initial }
    const endpoints = new Map<string, Endpoint>()
    const links = new Set<Link>()
    let partitions: Array<readonly [ReadonlySet<string>, ReadonlySet<string>]> = []
    let healed = Deferred.makeUnsafe<void>()
    let nextLinkId = 0
    let delivered = 0
    let dropped = 0

    const partitioned = (a: string, b: string) =>
      partitions.some(([x, y]) => (x.has(a) && y.has(b)) || (x.has(b) && y.has(a)))

    // keeps the partitions `keep` holds to; stalled wires look again (the ones still cut wait on)
    const healWhere = (keep: (cut: readonly [ReadonlySet<string>, ReadonlySet<string>]) => boolean) => {
      partitions = partitions.filter(keep)
      const waiting = healed
      healed = Deferred.makeUnsafe<void>()
      return Deferred.succeed(waiting, undefined)
    }

    const waitWhilePartitioned = (wire: Wire): Effect.Effect<void> =>
      Effect.suspend(() =>
        partitioned(wire.from, wire.to)
          ? Effect.andThen(Deferred.await(healed), waitWhilePartitioned(wire))
          : Effect.void
      )

    // When a batch written now arrives, and whether it is lost: decided as it is written, so a wire
    // keeps its order (a batch never arrives before the one written before it).
    const dispatch = (wire: Wire, batch: ReadonlyArray<Uint8Array> | "end"): InTransit => {
      const now = clock.currentTimeMillisUnsafe()
      const latency = Duration.toMillis(faults.latency)
      const jitter = Math.floor(Duration.toMillis(faults.jitter))
      const bandwidth = faults.bandwidth ?? 0
      // the batch leaves once the wire has sent what was written before it
      let sent = now
      if (bandwidth > 0 && batch !== "end") {
        let bytes = 0
        for (const chunk of batch) bytes += chunk.length
        sent = Math.max(now, wire.busyUntil) + bytes / bandwidth
        wire.busyUntil = sent
      }
      const delay = latency + (jitter > 0 ? Math.floor(random.nextDoubleUnsafe() * (jitter + 1)) : 0)
      const at = Math.max(wire.lastArrival, sent + delay)
      wire.lastArrival = at
      const lost = batch !== "end" && faults.dropRate > 0 && random.nextDoubleUnsafe() < faults.dropRate
      return { at, batch, lost }
    }

    // Carries one wire's batches in order: each waits until it is due, then for any partition
    // between the ends to heal; chunks go to the receiver while it takes them.
    const carry = (wire: Wire) =>
      Effect.gen(function*() {
        while (true) {
          const arrived = yield* Queue.takeAll(wire.transit)
          for (const { at, batch, lost } of arrived) {
            const now = clock.currentTimeMillisUnsafe()
            if (at > now) yield* clock.sleep(Duration.millis(at - now))
            if (partitioned(wire.from, wire.to)) yield* waitWhilePartitioned(wire)
            if (batch === "end") {
              if (trace.enabled) trace.record("net.end", wire.label)
              yield* Latch.await(wire.flowing)
              endWire(wire, new Connection.PipeClosed({ orderly: true, reason: "end of stream" }))
              return
            }
            if (lost) {
              dropped++
              if (trace.enabled) trace.record("net.drop", `${wire.label} ${fnv1a(batch)}`)
              continue
            }
            delivered++
            if (trace.enabled) trace.record("net.deliver", `${wire.label} ${fnv1a(batch)}`)
            for (const chunk of batch) {
              if (!Latch.isOpen(wire.flowing)) yield* Latch.await(wire.flowing)
              if (wire.ended !== undefined) return
              if (!wire.receiver!.data(chunk)) Latch.closeUnsafe(wire.flowing)
            }
          }
        }
      }).pipe(Effect.catchIf(Cause.isDone, () => Effect.void), Effect.ignore)

    const endWire = (wire: Wire, reason: Connection.PipeClosed) => {
      if (wire.ended !== undefined) return
      wire.ended = reason
      wire.receiver?.closed(reason)
    }

    const makeWire = (from: string, to: string, label: string) =>
      Effect.gen(function*() {
        const wire: Wire = {
          from,
          to,
          label,
          transit: yield* Queue.bounded<InTransit, Connection.PipeClosed | Cause.Done>(wireCapacity),
          lastArrival: 0,
          busyUntil: 0,
          flowing: yield* Latch.make(false),
          receiver: undefined,
          ended: undefined
        }
        yield* Effect.forkIn(carry(wire), networkScope)
        return wire
      })

    const reset = (wire: Wire, reason: string) => {
      const error = new Connection.PipeClosed({ orderly: false, reason })
      return Effect.andThen(Queue.fail(wire.transit, error), Effect.sync(() => endWire(wire, error)))
    }

    const pipeOf = (outbound: Wire, inbound: Wire, sever: (reason: string) => Effect.Effect<void>): Connection.Pipe => ({
      write: (chunks) =>
        Effect.flatMap(Effect.suspend(() => Queue.offer(outbound.transit, dispatch(outbound, chunks))), (accepted) =>
          accepted ? Effect.void : Effect.fail(new Connection.PipeClosed({ orderly: false, reason: "the pipe is closed" }))),
      deliver: (receiver) => {
        inbound.receiver = receiver
        if (inbound.ended !== undefined) receiver.closed(inbound.ended)
        else Latch.openUnsafe(inbound.flowing)
      },
      resume: () => {
        Latch.openUnsafe(inbound.flowing)
      },
      end: Effect.suspend(() => Queue.offer(outbound.transit, dispatch(outbound, "end"))).pipe(Effect.andThen(Queue.end(outbound.transit)), Effect.asVoid),
      destroy: sever("reset by this side")
    })

    const network: Network = {
      listen: (name, endpoint) =>
        Effect.gen(function*() {
          if (endpoints.has(name)) return yield* new Transport.AddressInUse({ address: `mem://${name}` })
          endpoints.set(name, endpoint)
          yield* Effect.addFinalizer(() => Effect.sync(() => {
            if (endpoints.get(name) === endpoint) endpoints.delete(name)
          }))
        }),
      connect: (client, name) =>
        Effect.gen(function*() {
          const address = `mem://${name}`
          const endpoint = endpoints.get(name)
          if (endpoint === undefined) return yield* new Transport.ConnectFailed({ address, reason: "nothing listens there" })
          if (partitioned(client, endpoint.node)) {
            return yield* new Transport.ConnectFailed({ address, reason: "unreachable: the network is partitioned" })
          }
          const id = nextLinkId++
          const up = yield* makeWire(client, endpoint.node, `${id}>`)
          const down = yield* makeWire(endpoint.node, client, `${id}<`)
          const link: Link = {
            id,
            client,
            server: endpoint.node,
            sever: (reason) =>
              Effect.suspend(() => {
                links.delete(link)
                return Effect.andThen(reset(up, reason), reset(down, reason))
              })
          }
          links.add(link)
          if (trace.enabled) trace.record("net.connect", `${id} ${client} ${address}`)
          yield* endpoint.accept(pipeOf(down, up, link.sever), `mem://${client}#${id}`)
          yield* Effect.addFinalizer(() => Effect.sync(() => links.delete(link)))
          return pipeOf(up, down, link.sever)
        })
    }

    const severWhere = (reason: string, matches: (link: Link) => boolean) =>
      Effect.suspend(() => {
        const victims = [...links].filter(matches)
        return Effect.as(Effect.forEach(victims, (link) => link.sever(reason), { discard: true }), victims.length)
      })

    return SimNetwork.of({
      network,
      setFaults: (next) => Effect.sync(() => {
        faults = { ...faults, ...next }
      }),
      partition: (a, b) => Effect.sync(() => {
        const cut = [new Set(a), new Set(b)] as const
        partitions = [...partitions, cut]
        if (trace.enabled) trace.record("net.partition", `${a.join(",")}|${b.join(",")}`)
        return Effect.suspend(() => {
          if (!partitions.includes(cut)) return Effect.void
          if (trace.enabled) trace.record("net.heal", `${a.join(",")}|${b.join(",")}`)
          return healWhere((other) => other !== cut)
        })
      }),
      heal: Effect.suspend(() => {
        if (trace.enabled) trace.record("net.heal", "")
        return healWhere(() => false)
      }),
      sever: (a, b) =>
        severWhere("severed", (link) => (link.client === a && link.server === b) || (link.client === b && link.server === a)),
      kill: (node) =>
        Effect.gen(function*() {
          if (trace.enabled) trace.record("net.kill", node)
          for (const [name, endpoint] of endpoints) if (endpoint.node === node) endpoints.delete(name)
          yield* severWhere(`node ${node} died`, (link) => link.client === node || link.server === node)
        }),
      stats: Effect.sync(() => ({ connections: nextLinkId, delivered, dropped }))
    })
  })

/**
 * The `Transport` of one node on the network: `mem://name` listens as `name`; connections made by
 * this node count as coming from `node` for partitions and kills.
 *
 * @since 0.1.0
 */
export const transport = (node: string) =>
  Effect.gen(function*() {
    const { network } = yield* SimNetwork
    return Transport.Transport.of({
      schemes: ["mem"],
      listen: (address) =>
        Effect.gen(function*() {
          const parsed = Transport.parseAddress(address, ["mem"])
          if (parsed instanceof Transport.InvalidAddress) return yield* parsed
          const scope = yield* Effect.scope
          const accepted = yield* Queue.bounded<Transport.Connection, Cause.Done>(1024)
          yield* Effect.addFinalizer(() => Queue.end(accepted))
          yield* network.listen(parsed.rest, {
            node,
            accept: (pipe, remote) => Connection.accept(scope, accepted, pipe, remote)
          })
          return { address, connections: Stream.fromQueue(accepted) }
        }),
      connect: (address) =>
        Effect.gen(function*() {
          const parsed = Transport.parseAddress(address, ["mem"])
          if (parsed instanceof Transport.InvalidAddress) return yield* parsed
          const pipe = yield* network.connect(node, parsed.rest)
          return yield* Connection.make(pipe, address)
        })
    })
  })
