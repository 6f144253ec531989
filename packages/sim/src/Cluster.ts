/**
 * A whole Strait cluster in one simulated process: brokers (each with its own simulated disk),
 * proxies serving the native protocol, and one metadata store, all on one `SimNetwork`. The nodes
 * are the production Layers (`Member.layer`, `Proxy.layerCluster`, the native server), given
 * simulated services.
 *
 * **Details**
 *
 * - Each start of a node is an incarnation with its own views of the disk, the metadata store and
 *   the network. A crash ends the incarnation at once: its views fail every later call (a dead
 *   process does nothing more), its connections reset, its disk loses what was not synced (some of
 *   it torn); then its scope closes in the background, its finalizers failing harmlessly. A restart
 *   is a new incarnation from what the disk kept.
 * - A stop is graceful: the node's scope closes (proxies drain with GOAWAY, brokers revoke their
 *   lease and sync), then its disk keeps everything.
 * - Isolating a node cuts it off from every other node and from the metadata store, while its own
 *   timers run on: a partition of one node. With `nodeClocks`, each node reads its own clock, which
 *   can drift and step, and pausing a node also holds its timers: a long stop-the-world pause.
 *
 * @since 0.1.0
 */
import { Broker, Member } from "@strait/broker"
import { EmbeddedStore, LoadReports, MetadataStore, NodeRegistration, Orchestrator } from "@strait/control"
import { Transport } from "@strait/core"
import { Server as NativeServer } from "@strait/protocol-native"
import { Proxy, type Quotas } from "@strait/proxy"
import { Disk, SimDisk } from "@strait/storage"
import { SimNetwork } from "@strait/transport"
import { Clock, Context, Duration, Effect, Exit, Fiber, Layer, Schedule, Scope } from "effect"
import * as SimClock from "./SimClock.ts"

/**
 * The shape of a simulated cluster.
 *
 * @since 0.1.0
 */
export interface ClusterOptions {
  readonly brokers: number
  readonly proxies: number
  /** Brokers that exist (with their disks) but start only when the cluster scales out (`start`). */
  readonly spareBrokers?: number
  /** Proxies that exist but start only when the cluster scales out (its `orchestrator`, or `start`). */
  readonly spareProxies?: number
  /** Proxies register in the control plane and publish their load every second (for a controller). */
  readonly reportLoad?: boolean
  /** Brokers publish their load every second (for a controller that scales them). */
  readonly reportBrokerLoad?: boolean
  /** The proxies' tenant quotas. */
  readonly quotas?: Quotas.QuotaSettings
  /** Brokers' lease time to live (default 10 s). */
  readonly leaseTtl?: Duration.Input
  /** How long a simulated disk sync takes (default 1 ms). */
  readonly syncLatency?: Duration.Input
  /** What the catalog holds before any node starts (topics, groups), as an operator provisions it. */
  readonly provision?: Effect.Effect<void, unknown, MetadataStore.MetadataStore>
  /** Told of what the cluster does on its own: a supervisor restarting a broker whose store failed. */
  readonly onEvent?: (event: string, node: string) => Effect.Effect<void>
  /**
   * Each node keeps its own clock (`SimClock.NodeClock`, on time until told otherwise), which
   * `clock` reaches: the clock faults of a run drift and step them. Without it every node reads
   * the cluster's clock.
   */
  readonly nodeClocks?: boolean
}

/**
 * A node of the cluster.
 *
 * @since 0.1.0
 */
export interface SimNode {
  readonly name: string
  readonly kind: "broker" | "proxy"
  /** Its address on the network. */
  readonly address: string
}

/**
 * A running simulated cluster.
 *
 * @since 0.1.0
 */
export interface Cluster {
  /** Every broker, spares included (a spare is down until started). */
  readonly brokers: ReadonlyArray<SimNode>
  readonly proxies: ReadonlyArray<SimNode>
  /** The proxies' addresses, for clients. */
  readonly endpoints: ReadonlyArray<string>
  /** The shared metadata store, as an operator (not a node) sees it. */
  readonly metadata: Context.Context<MetadataStore.MetadataStore>
  readonly isUp: (node: string) => boolean
  /** Ends the node's incarnation as `kill -9` would. */
  readonly crash: (node: string) => Effect.Effect<void>
  /** Closes the node gracefully (drain, lease revoked, disk synced). */
  readonly stop: (node: string) => Effect.Effect<void>
  /** Starts a new incarnation of a node that is down. */
  readonly start: (node: string) => Effect.Effect<void, StartFailed>
  /** Cuts the node off from every other node and the metadata store, or joins it again. */
  readonly isolate: (node: string, isolated: boolean) => Effect.Effect<void>
  /** Cuts the node off from the metadata store alone (its leases lapse, its catalog goes stale), or joins it again. */
  readonly cutFromMetadata: (node: string, cut: boolean) => void
  /** Makes the next disk sync of a broker fail (its unsynced writes are lost, as on Linux). */
  readonly failNextSync: (node: string) => Effect.Effect<void>
  /** Fills a broker's disk (no file may grow: writes fail with `DiskFull`), or frees it. */
  readonly fillDisk: (node: string, full: boolean) => Effect.Effect<void>
  /** Names a client on the network, so that isolating a node cuts it off from the client too. */
  readonly addClient: (name: string) => void
  /** A node's own clock (with `nodeClocks`): it outlives the node's incarnations, as a host's does. */
  readonly clock: (node: string) => SimClock.NodeClock | undefined
  /**
   * Pauses a running node (with `nodeClocks`) as a long GC pause or SIGSTOP does: its timers are
   * held and nobody reaches it, then it runs on; a crash, stop or start meanwhile ends the pause.
   */
  readonly pause: (node: string, paused: boolean) => Effect.Effect<void>
  /**
   * Scales the cluster for an elasticity controller: a scale-out starts nodes of the role that are
   * down (the spares first), a scale-in stops the ones named (gracefully: proxies send GOAWAY,
   * brokers revoke their lease).
   */
  readonly orchestrator: Orchestrator.Orchestrator["Service"]
}

/**
 * A node's incarnation could not start.
 *
 * @since 0.1.0
 */
export class StartFailed extends Error {
  override readonly name = "StartFailed"
}

interface Incarnation {
  alive: boolean
  readonly scope: Scope.Closeable
  closing: Fiber.Fiber<void> | undefined
}

interface NodeState extends SimNode {
  incarnation: Incarnation | undefined
  /** Why the node is cut off from every other node (`isolate`, `pause`), each with the heal of its own partition. */
  readonly cuts: Map<"isolated" | "paused", Effect.Effect<void>>
  metadataCut: boolean
  /** Brokers: the disk that outlives incarnations. */
  readonly disk?: Context.Context<Disk.Disk | SimDisk.SimDisk>
  /** The node's own clock, with `nodeClocks`. */
  clock?: SimClock.NodeClock
  /** Paused (`pause`): its timers held, cut off; a crash or stop ends the pause. */
  paused?: boolean
}

const dead = (operation: string) => new Disk.DiskIOError({ path: "", operation, code: "EIO", reason: "the process is dead" })

// a disk that fails every call once its incarnation has ended
const gatedDisk = (disk: Disk.Disk["Service"], life: Incarnation): Disk.Disk["Service"] => {
  const gate = <A>(operation: string, effect: () => Effect.Effect<A, Disk.DiskError>) =>
    Effect.suspend(() => life.alive ? effect() : Effect.fail(dead(operation)))
  return Disk.Disk.of({
    open: (path, options) => Effect.suspend(() => life.alive ? disk.open(path, options) : Effect.fail(dead("open"))),
    list: (directory) => gate("list", () => disk.list(directory)),
    makeDirectory: (directory) => gate("makeDirectory", () => disk.makeDirectory(directory)),
    remove: (path) => gate("remove", () => disk.remove(path)),
    rename: (from, to) => gate("rename", () => disk.rename(from, to)),
    syncDirectory: (directory) => gate("syncDirectory", () => disk.syncDirectory(directory))
  })
}

// the metadata store as one node sees it: unreachable while the node is dead or isolated
const gatedStore = (store: MetadataStore.MetadataStore["Service"], reachable: () => boolean): MetadataStore.MetadataStore["Service"] => {
  const unreachable = new MetadataStore.MetadataUnavailable({ reason: "the metadata store is unreachable from this node" })
  const gate = <A, R>(effect: () => Effect.Effect<A, MetadataStore.MetadataUnavailable, R>) => Effect.suspend(() => reachable() ? effect() : Effect.fail(unreachable))
  return MetadataStore.MetadataStore.of({
    describe: store.describe,
    get: (key) => gate(() => store.get(key)),
    list: (prefix) => gate(() => store.list(prefix)),
    put: (key, value, options) => gate(() => store.put(key, value, options)),
    delete: (key) => gate(() => store.delete(key)),
    transact: (transaction) => gate(() => store.transact(transaction)),
    grantLease: (ttl) => gate(() => store.grantLease(ttl)),
    keepAlive: (lease) => gate(() => store.keepAlive(lease)),
    revoke: (lease) => gate(() => store.revoke(lease)),
    watch: (prefix) => gate(() => store.watch(prefix))
  })
}

// the network as one incarnation sees it: no new connections or listeners once it has ended
const gatedTransport = (transport: Transport.Transport["Service"], life: Incarnation): Transport.Transport["Service"] =>
  Transport.Transport.of({
    schemes: transport.schemes,
    listen: (address) => Effect.suspend(() => life.alive ? transport.listen(address) : Effect.fail(new Transport.AddressInUse({ address }))),
    connect: (address) =>
      Effect.suspend(() => life.alive ? transport.connect(address) : Effect.fail(new Transport.ConnectFailed({ address, reason: "the process is dead" })))
  })

/**
 * Starts a cluster in the current scope on the `SimNetwork` given; every node is up when it returns.
 *
 * @since 0.1.0
 */
export const make = (options: ClusterOptions): Effect.Effect<Cluster, StartFailed, Scope.Scope | SimNetwork.SimNetwork> =>
  Effect.gen(function*() {
    const clusterScope = yield* Effect.scope
    const network = yield* SimNetwork.SimNetwork
    const metadata = yield* Layer.build(EmbeddedStore.layerMemory)
    const store = Context.get(metadata, MetadataStore.MetadataStore)
    const nodes = new Map<string, NodeState>()
    const spares = options.spareBrokers ?? 0
    for (let i = 0; i < options.brokers + spares; i++) {
      const disk = yield* Layer.build(SimDisk.layer({ syncLatency: options.syncLatency ?? Duration.millis(1) }))
      nodes.set(`broker-${i}`, { name: `broker-${i}`, kind: "broker", address: `mem://broker-${i}`, incarnation: undefined, cuts: new Map(), metadataCut: false, disk })
    }
    for (let i = 0; i < options.proxies + (options.spareProxies ?? 0); i++) {
      nodes.set(`proxy-${i}`, { name: `proxy-${i}`, kind: "proxy", address: `mem://proxy-${i}`, incarnation: undefined, cuts: new Map(), metadataCut: false })
    }
    if (options.nodeClocks === true) {
      const clusterClock = yield* Clock.Clock
      for (const node of nodes.values()) node.clock = new SimClock.NodeClock(clusterClock)
    }
    const nodeOf = (name: string) => {
      const node = nodes.get(name)
      if (node === undefined) throw new Error(`no node ${name} in the simulated cluster`)
      return node
    }

    const layerOf = (node: NodeState, life: Incarnation) => {
      const transport = Layer.effect(
        Transport.Transport,
        SimNetwork.transport(node.name).pipe(Effect.map((inner) => gatedTransport(inner, life)), Effect.provideService(SimNetwork.SimNetwork, network))
      )
      const reachable = () => life.alive && node.cuts.size === 0 && !node.metadataCut
      const services = Layer.mergeAll(
        transport,
        Layer.succeed(MetadataStore.MetadataStore, gatedStore(store, reachable))
      )
      if (node.kind === "broker") {
        const disk = Context.get(node.disk!, Disk.Disk)
        return Layer.fresh(
          Member.layer({
            brokerId: node.name,
            directory: "/strait/broker",
            listen: node.address,
            ...(options.leaseTtl === undefined ? {} : { leaseTtl: options.leaseTtl }),
            ...(options.reportBrokerLoad === true ? { reportLoad: { cpuMicros: () => 0 } } : {})
          }).pipe(Layer.provide(Layer.succeed(Disk.Disk, gatedDisk(disk, life))), Layer.provide(services))
        )
      }
      // registered and reporting its load (CPU is not simulated: what it carries is)
      const reporting = Layer.effectDiscard(Effect.gen(function*() {
        const proxy = yield* Proxy.Proxy
        yield* NodeRegistration.register({ kind: "proxy", id: node.name, address: node.address })
        yield* LoadReports.publish({
          role: "proxy",
          id: node.name,
          sample: Proxy.loadSample(proxy, () => 0)
        })
      }).pipe(Effect.orDie))
      return Layer.fresh(
        (options.reportLoad === true ? reporting : Layer.empty).pipe(
          Layer.provideMerge(NativeServer.layer({ listen: node.address, drainTimeout: Duration.seconds(5) })),
          Layer.provideMerge(Proxy.Proxy.layerCluster(options.quotas === undefined ? {} : { quotas: options.quotas })),
          Layer.provide(services),
          Layer.flatMap(() => Layer.empty)
        )
      )
    }

    // a node that fails to start (a disk fault while it recovers) is started again a second later,
    // as its supervisor would, a few times
    const start = (name: string): Effect.Effect<void, StartFailed> =>
      startOnce(name).pipe(Effect.retry({ times: 5, schedule: Schedule.spaced(Duration.seconds(1)) }))

    const startOnce = (name: string): Effect.Effect<void, StartFailed> =>
      Effect.gen(function*() {
        const node = nodeOf(name)
        const previous = node.incarnation
        if (previous !== undefined && previous.alive) return
        yield* unpause(node)
        if (previous?.closing !== undefined) yield* Fiber.await(previous.closing)
        const scope = yield* Scope.fork(clusterScope)
        const life: Incarnation = { alive: true, scope, closing: undefined }
        node.incarnation = life
        // the node's fibers (and all they start) read its own clock
        const build = Layer.buildWithScope(layerOf(node, life), scope)
        const built = yield* Effect.exit(node.clock === undefined ? build : Effect.provideService(build, Clock.Clock, node.clock))
        if (Exit.isFailure(built)) {
          life.alive = false
          yield* Scope.close(scope, Exit.void)
          return yield* Effect.fail(new StartFailed(`${name} did not start: ${String(built.cause)}`))
        }
        const broker = Context.getOption(built.value as Context.Context<Broker.Broker>, Broker.Broker)
        if (broker._tag === "Some") {
          // the supervisor: a broker whose store failed exits (as `strait` does) and is started again
          yield* Effect.forkIn(
            Effect.gen(function*() {
              yield* broker.value.fatal
              if (!life.alive) return
              yield* options.onEvent?.("crash", name) ?? Effect.void
              yield* crash(name)
              yield* Effect.sleep(Duration.seconds(1))
              yield* options.onEvent?.("restart", name) ?? Effect.void
              yield* start(name)
            }).pipe(Effect.ignore),
            clusterScope
          )
        }
      })

    // a killed or stopped process is paused no more
    const unpause = (node: NodeState) =>
      Effect.gen(function*() {
        if (node.paused !== true) return
        node.paused = false
        node.clock?.resume()
        yield* cutOff(node, "paused", false)
      })
    const pause = (name: string, paused: boolean) =>
      Effect.gen(function*() {
        const node = nodeOf(name)
        if (!paused) return yield* unpause(node)
        // only a running process pauses
        if (node.paused === true || node.clock === undefined || node.incarnation?.alive !== true) return
        node.paused = true
        node.clock.pause()
        yield* cutOff(node, "paused", true)
      })

    const crash = (name: string) =>
      Effect.gen(function*() {
        const node = nodeOf(name)
        yield* unpause(node)
        const life = node.incarnation
        if (life === undefined || !life.alive) return
        life.alive = false
        yield* network.kill(name)
        if (node.disk !== undefined) yield* Context.get(node.disk, SimDisk.SimDisk).crash
        life.closing = yield* Effect.forkIn(Scope.close(life.scope, Exit.void), clusterScope)
      })

    const stop = (name: string) =>
      Effect.gen(function*() {
        const node = nodeOf(name)
        yield* unpause(node)
        const life = node.incarnation
        if (life === undefined || !life.alive) return
        yield* Scope.close(life.scope, Exit.void)
        life.alive = false
        yield* network.kill(name)
      })

    // an isolation and a pause cut the node off each on its own: ending one leaves the other, and
    // neither heals a partition it did not make
    const cutOff = (node: NodeState, reason: "isolated" | "paused", on: boolean) =>
      Effect.gen(function*() {
        const heal = node.cuts.get(reason)
        if (on === (heal !== undefined)) return
        if (heal !== undefined) {
          node.cuts.delete(reason)
          return yield* heal
        }
        const others = [...nodes.keys()].filter((other) => other !== node.name).concat(clientsOf())
        node.cuts.set(reason, yield* network.partition([node.name], others))
      })
    const isolate = (name: string, isolated: boolean) => cutOff(nodeOf(name), "isolated", isolated)

    // clients are every other name on the network: partitions name them through the workload
    const clientNames = new Set<string>()
    const clientsOf = () => [...clientNames]

    if (options.provision !== undefined) {
      yield* options.provision.pipe(
        Effect.provide(metadata),
        Effect.mapError((error) => new StartFailed(`provisioning the catalog failed: ${String(error)}`))
      )
    }
    // spare brokers and proxies start only when the cluster scales out
    for (const node of nodes.values()) {
      const index = Number(node.name.slice(node.kind.length + 1))
      if (index < (node.kind === "broker" ? options.brokers : options.proxies)) yield* start(node.name)
    }
    const namesOf = (kind: SimNode["kind"]) => [...nodes.values()].filter((node) => node.kind === kind).map((node) => node.name)
    const up = (name: string) => nodeOf(name).incarnation?.alive === true
    const orchestrator = Orchestrator.Orchestrator.of({
      describe: "the simulated cluster",
      nodes: (role) => Effect.sync(() => namesOf(role).filter(up)),
      scaleOut: (role, count) =>
        Effect.gen(function*() {
          const down = namesOf(role).filter((name) => !up(name)).slice(0, count)
          if (down.length < count) return yield* new Orchestrator.OrchestratorFailed({ reason: `only ${down.length} more ${role}s exist` })
          yield* Effect.forEach(down, (name) => Effect.mapError(start(name), (error) => new Orchestrator.OrchestratorFailed({ reason: error.message })), { discard: true })
          return down
        }),
      scaleIn: (_role, ids) => Effect.forEach(ids, stop, { discard: true })
    })

    const list = (kind: SimNode["kind"]) => [...nodes.values()].filter((node) => node.kind === kind).map(({ address, kind, name }) => ({ name, kind, address }))
    return {
      brokers: list("broker"),
      proxies: list("proxy"),
      endpoints: list("proxy").map((node) => node.address),
      metadata,
      isUp: (name: string) => nodeOf(name).incarnation?.alive === true,
      crash,
      stop,
      start,
      isolate,
      cutFromMetadata: (name: string, cut: boolean) => void (nodeOf(name).metadataCut = cut),
      clock: (name: string) => nodeOf(name).clock,
      pause,
      failNextSync: (name: string) => {
        const disk = nodeOf(name).disk
        return disk === undefined ? Effect.void : Context.get(disk, SimDisk.SimDisk).failNextSync()
      },
      fillDisk: (name: string, full: boolean) => {
        const disk = nodeOf(name).disk
        return disk === undefined ? Effect.void : Context.get(disk, SimDisk.SimDisk).setCapacity(full ? 0 : undefined)
      },
      addClient: (name: string) => void clientNames.add(name),
      orchestrator
    } satisfies Cluster
  })
