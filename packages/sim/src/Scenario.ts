/**
 * One simulated run of a whole cluster from a seed: the cluster starts, the workload runs while the
 * fault plan drawn from the seed strikes, then every fault heals, every node comes back, the
 * consumers drain, and the checker reads the history.
 *
 * **Faults** (one at a time, each undone before the next; drawn from the seed):
 *
 * - a broker or a proxy crashes (a broker loses its unsynced writes, some torn) and restarts later;
 * - a broker or a proxy stops gracefully (a proxy drains its clients with GOAWAY) and starts again;
 * - a broker is isolated (a pause longer than its lease, or a partition) and joins again;
 * - a broker and a proxy lose the metadata store for a while (the broker's lease lapses, the
 *   proxy's routes go stale) while the network between them works;
 * - the network drops and delays messages for a while;
 * - a broker's next disk sync fails;
 * - a broker's disk fills up for a while;
 * - a proxy loses the network to some brokers for a while;
 * - a consumer crashes (what it held comes back after its invisibility) and a new one starts;
 * - a spare broker joins the cluster, or leaves it gracefully.
 *
 * @since 0.1.0
 */
import { Catalog, Elasticity, ElasticityController, Orchestrator } from "@strait/control"
import { ConsumerGroup, PlantedBugs, Trace } from "@strait/core"
import { SimNetwork } from "@strait/transport"
import { Clock, Duration, Effect, Exit, Fiber, Layer, type LogLevel, Random, References, Scope } from "effect"
import * as Checker from "./Checker.ts"
import * as Cluster from "./Cluster.ts"
import * as History from "./History.ts"
import * as Sim from "./Sim.ts"
import * as Workload from "./Workload.ts"

/**
 * A scenario's settings.
 *
 * @since 0.1.0
 */
export interface ScenarioOptions {
  readonly seed: number
  /** Simulated time with traffic and faults (default 2 minutes). */
  readonly duration?: Duration.Input
  /** Simulated time at most to drain after the faults heal (default 5 minutes; it ends once every acknowledged message arrived). */
  readonly drain?: Duration.Input
  readonly brokers?: number
  readonly proxies?: number
  readonly producers?: number
  readonly consumers?: number
  /** Messages per simulated second (default 50). */
  readonly rate?: number
  /** Without faults: the run only checks the rules under normal operation. */
  readonly faults?: boolean
  /**
   * Each node keeps its own clock, and clock faults run beside the others: a node's clock drifts
   * (up to 1 % fast or slow) or its wall time steps (up to 1 s either way) for 5 to 30 s, then is
   * synced again, as NTP would; or the whole node pauses for 1 to 25 s (its timers held, nobody
   * reaching it), then runs on. The checker then allows timestamps from different nodes to
   * disagree by `clockErrorMillis`.
   */
  readonly clockFaults?: boolean
  /** Keep the trace events (for reports). */
  readonly keepEvents?: boolean
  /** Bugs to plant in the nodes (the checker's own tests): none by default. */
  readonly plantedBugs?: ReadonlyArray<PlantedBugs.PlantedBug>
  /** The nodes' log output from this level up (default none: a run is silent). */
  readonly logLevel?: LogLevel.LogLevel
  /**
   * An elasticity controller scales the proxies, from `proxies` up to `proxies + spareProxies`,
   * while the rate ramps to `peak` times `rate` and back (up over the second fifth of the duration,
   * held over the third, down over the fourth); its decisions go to the history as instants.
   */
  readonly elasticity?: {
    readonly spareProxies: number
    readonly peak: number
    /** Default: each proxy meant to carry twice the base rate (sent and received), kept at 60 %. */
    readonly policy?: Elasticity.RolePolicy
    /**
     * The controller scales the brokers too, from `brokers` up to `brokers + spareBrokers` (their
     * queues' writes move without copying data; a broker leaves once drained). The fault plan then
     * leaves the spare brokers to the controller.
     */
    readonly spareBrokers?: number
    /** Default: each broker meant to store twice the base rate, kept at 60 %. */
    readonly brokerPolicy?: Elasticity.RolePolicy
  }
}

/**
 * The rate multiple of the elasticity ramp at `elapsed` of `duration`.
 *
 * @since 0.1.0
 */
export const ramp = (peak: number, duration: number) => (elapsed: number) => {
  const at = elapsed / duration
  if (at < 0.2 || at >= 0.8) return 1
  if (at < 0.4) return 1 + (peak - 1) * (at - 0.2) / 0.2
  if (at < 0.6) return peak
  return peak - (peak - 1) * (at - 0.6) / 0.2
}

/**
 * What one run found.
 *
 * @since 0.1.0
 */
export interface Outcome {
  readonly seed: number
  readonly traceHash: string
  readonly steps: number
  readonly virtualMillis: number
  /** The run itself failed (a deadlock, a defect): the cause, printed. */
  readonly failure: string | undefined
  readonly violations: ReadonlyArray<Checker.Violation>
  readonly summary: Checker.Summary
  readonly history: History.History
}

const leaseTtlMillis = 10_000

/**
 * What the checker expects of the workload.
 *
 * @since 0.1.0
 */
export const expectations: Checker.Expectations = {
  consumers: new Map(Workload.topics.map((topic) => [
    topic.name,
    [
      ...Workload.groups.filter((group) => (group.topics as ReadonlyArray<string>).includes(topic.name)).map((group) => group.name),
      ...Workload.pullers.filter((puller) => puller.topic === topic.name).map((puller) => puller.group)
    ]
  ])),
  maxAttempts: 4,
  fifoTopics: new Set(Workload.topics.filter((topic) => topic.kind === "FIFO").map((topic) => topic.name)),
  failoverSettles: 2 * leaseTtlMillis
}

/**
 * The most a node's wall clock is from the cluster's under `clockFaults`: a step of up to 1 s, or
 * 1 % of drift over at most 30 s, with room to spare.
 *
 * @since 0.1.0
 */
export const clockErrorMillis = 1_500

// one node's clock at a time: drifting or stepped for a while, then synced (rate 1, wall back); or
// one node paused
const clockFaults = (cluster: Cluster.Cluster, history: History.History, until: number) =>
  Effect.gen(function*() {
    const nodes = [...cluster.brokers, ...cluster.proxies].map((node) => node.name)
    const note = (fault: string, node: string) =>
      Effect.map(Clock.currentTimeMillis, (at) => void history.events.push({ type: "fault", at, fault, nodes: [node] }))
    while ((yield* Clock.currentTimeMillis) < until) {
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(2_000, 10_000)))
      const node = yield* Workload.pickOne(nodes)
      const clock = cluster.clock(node)
      if (clock === undefined) return
      const sign = (yield* Random.nextBoolean) ? 1 : -1
      const lasting = Duration.millis(yield* Random.nextIntBetween(5_000, 30_000))
      const kind = yield* Random.nextIntBetween(0, 3)
      if (kind === 2) {
        // the whole process stops (a long GC pause, SIGSTOP): its timers are held and nobody reaches
        // it, then it runs on as if nothing happened, its leases long gone
        const stalled = Duration.millis(yield* Random.nextIntBetween(1_000, 25_000))
        yield* note("pause", node)
        yield* cluster.pause(node, true)
        yield* Effect.sleep(stalled)
        yield* cluster.pause(node, false)
        yield* note("resume", node)
        continue
      }
      if (kind === 0) {
        const rate = 1 + sign * (yield* Random.nextIntBetween(2, 10)) / 1_000
        yield* note(`clock drift (rate ${rate})`, node)
        const before = clock.currentTimeMillisUnsafe() - (yield* Clock.currentTimeMillis)
        clock.setRate(rate)
        yield* Effect.sleep(lasting)
        clock.setRate(1)
        clock.stepWall(before - (clock.currentTimeMillisUnsafe() - (yield* Clock.currentTimeMillis)))
      } else {
        const step = sign * (yield* Random.nextIntBetween(50, 1_000))
        yield* note(`clock step (${step} ms)`, node)
        clock.stepWall(step)
        yield* Effect.sleep(lasting)
        clock.stepWall(-step)
      }
      yield* note("clock synced", node)
    }
  })

// topics once every broker is up, so that their queues spread over the brokers
const provisionTopics = Effect.gen(function*() {
  for (const topic of Workload.topics) yield* Catalog.createTopic({ ...topic })
})

// groups before any broker starts: a broker must know a FIFO group is one before its first receive
const provisionGroups = Effect.gen(function*() {
  for (const group of Workload.groups) {
    const name = yield* ConsumerGroup.validateName(group.name)
    yield* Catalog.putGroup({ ...new ConsumerGroup.ConsumerGroup({ name, fifo: group.fifo, maxDeliveryAttempts: group.maxDeliveryAttempts }) })
  }
})

// the fault plan: one fault at a time until the faults stop
// (with `scaledBrokers`, the brokers past that many are the elasticity controller's: faults strike
// the first ones only, and no spare joins or leaves by the plan)
const faults = (cluster: Cluster.Cluster, history: History.History, consumers: ConsumerPool, until: number, scaledBrokers?: number) =>
  Effect.gen(function*() {
    const network = yield* SimNetwork.SimNetwork
    const note = (fault: string, nodes: ReadonlyArray<string>) =>
      Effect.map(Clock.currentTimeMillis, (at) => void history.events.push({ type: "fault", at, fault, nodes }))
    const pause = (from: number, to: number) => Effect.flatMap(Random.nextIntBetween(from, to), (millis) => Effect.sleep(Duration.millis(millis)))
    const brokers = cluster.brokers.map((node) => node.name).slice(0, scaledBrokers)
    const proxies = cluster.proxies.map((node) => node.name)
    while ((yield* Clock.currentTimeMillis) < until) {
      yield* pause(1_000, 8_000)
      if ((yield* Clock.currentTimeMillis) >= until) break
      const roll = yield* Random.nextIntBetween(0, 12)
      // a fault in force for a while: noted as it starts and as it ends
      const during = <E>(fault: string, nodes: ReadonlyArray<string>, begin: Effect.Effect<void, E>, [from, to]: readonly [number, number], ended: string, end: Effect.Effect<void, E>) =>
        note(fault, nodes).pipe(Effect.andThen(begin), Effect.andThen(pause(from, to)), Effect.andThen(note(ended, nodes)), Effect.andThen(end))
      switch (roll) {
        case 0:
        case 1: {
          const node = yield* Workload.pickOne(roll === 0 ? brokers : proxies)
          yield* during("crash", [node], cluster.crash(node), [500, 15_000], "restart", cluster.start(node))
          break
        }
        case 2:
        case 3: {
          const node = yield* Workload.pickOne(roll === 2 ? brokers : proxies)
          yield* during("stop", [node], cluster.stop(node), [500, 10_000], "restart", cluster.start(node))
          break
        }
        case 4: {
          const node = yield* Workload.pickOne(brokers)
          yield* during("isolate", [node], cluster.isolate(node, true), [1_000, 25_000], "rejoin", cluster.isolate(node, false))
          break
        }
        case 5: {
          const dropRate = (yield* Random.nextIntBetween(1, 5)) / 100
          yield* during(
            `lossy network (${dropRate} drops, up to 20 ms delay)`,
            [],
            network.setFaults({ dropRate, latency: Duration.millis(1), jitter: Duration.millis(20) }),
            [1_000, 10_000],
            "network healed",
            network.setFaults({ dropRate: 0, latency: Duration.millis(1), jitter: Duration.millis(1) })
          )
          break
        }
        case 6: {
          const node = yield* Workload.pickOne(brokers)
          yield* note("failed sync", [node])
          yield* cluster.failNextSync(node)
          break
        }
        case 7: {
          // a broker and a proxy lose the metadata store (the broker's lease lapses, the proxy's
          // routes go stale) while the network between them works
          const nodes = [yield* Workload.pickOne(brokers), yield* Workload.pickOne(proxies)]
          const cut = (cut: boolean) => Effect.sync(() => nodes.forEach((node) => cluster.cutFromMetadata(node, cut)))
          yield* during("metadata outage", nodes, cut(true), [5_000, 25_000], "metadata back", cut(false))
          break
        }
        case 8: {
          const node = yield* Workload.pickOne(brokers)
          yield* during("disk full", [node], cluster.fillDisk(node, true), [500, 8_000], "disk freed", cluster.fillDisk(node, false))
          break
        }
        case 9: {
          // a proxy loses some brokers (the rest of the network works)
          const proxy = yield* Workload.pickOne(proxies)
          const cut = brokers.filter((_, i) => i !== (brokers.length > 1 ? roll % brokers.length : -1))
          let heal: Effect.Effect<void> = Effect.void
          const begin = Effect.map(network.partition([proxy], cut), (healThis) => void (heal = healThis))
          yield* during("partition", [proxy, ...cut], begin, [1_000, 15_000], "partition healed", Effect.suspend(() => heal))
          break
        }
        case 10: {
          if (scaledBrokers !== undefined) break
          // the spare broker joins the cluster, or leaves it (gracefully: its queues move away)
          const spare = brokers[brokers.length - 1]!
          if (cluster.isUp(spare)) {
            yield* note("scale in", [spare])
            yield* cluster.stop(spare)
          } else {
            yield* note("scale out", [spare])
            yield* cluster.start(spare)
          }
          break
        }
        default: {
          yield* note("consumer crash", [])
          yield* consumers.crashOne
        }
      }
    }
  })

interface ConsumerPool {
  readonly crashOne: Effect.Effect<void, never, SimNetwork.SimNetwork>
}

/**
 * The scenario as an Effect, to run under `Sim.run`.
 *
 * @since 0.1.0
 */
export const program = (options: ScenarioOptions, history: History.History) =>
  Effect.gen(function*() {
    const duration = Duration.toMillis(Duration.fromInputUnsafe(options.duration ?? Duration.minutes(2)))
    const drain = Duration.toMillis(Duration.fromInputUnsafe(options.drain ?? Duration.minutes(5)))
    const base = yield* Trace.Trace
    // the brokers' claims and writes go to the history as well as to the trace
    const tee: Trace.TraceSink = {
      enabled: true,
      record: (kind, detail) => {
        base.record(kind, detail)
        if (kind === "lease.claim" || kind === "broker.store") {
          const [broker, queue, epoch, messageId] = detail.split(" ") as [string, string, string, string | undefined]
          // Clock is not at hand in plain code: the scenario's clock reading is taken as the event's
          history.events.push({
            type: kind === "lease.claim" ? "claim" : "store",
            at: now(),
            broker,
            queue,
            epoch: Number(epoch),
            ...(messageId === undefined ? {} : { messageId })
          })
        }
      }
    }
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    history.origin = now()
    return yield* Effect.gen(function*() {
      const proxies = options.proxies ?? 3
      const brokers = options.brokers ?? 3
      const elastic = options.elasticity
      const elasticBrokers = elastic?.spareBrokers !== undefined && elastic.spareBrokers > 0
      const cluster = yield* Cluster.make({
        brokers,
        spareBrokers: elasticBrokers ? elastic.spareBrokers! : 1,
        proxies,
        ...(elastic === undefined ? {} : { spareProxies: elastic.spareProxies, reportLoad: true, reportBrokerLoad: elasticBrokers }),
        leaseTtl: Duration.millis(leaseTtlMillis),
        provision: provisionGroups,
        ...(options.clockFaults === true ? { nodeClocks: true } : {}),
        onEvent: (fault, node) => Effect.map(Clock.currentTimeMillis, (at) => void history.events.push({ type: "fault", at, fault, nodes: [node] }))
      })
      const workload: Workload.WorkloadOptions = {
        producers: options.producers ?? 4,
        consumers: options.consumers ?? 3,
        rate: options.rate ?? 50,
        invisibleMillis: 5_000,
        ...(elastic === undefined ? {} : { ramp: ramp(elastic.peak, duration) })
      }
      const control: Workload.Control = { producing: true, draining: false }
      yield* provisionTopics.pipe(Effect.provide(cluster.metadata))
      if (elastic !== undefined) {
        yield* ElasticityController.run({
          id: "controller",
          policy: {
            proxy: elastic.policy ?? {
              min: proxies,
              max: proxies + elastic.spareProxies,
              target: 0.6,
              capacity: { messagesPerSecond: 2 * workload.rate },
              model: { _tag: "PayAsYouGo" },
              scaleOutCooldown: Duration.seconds(3),
              scaleInCooldown: Duration.seconds(10)
            },
            ...(elasticBrokers
              ? {
                broker: elastic.brokerPolicy ?? {
                  min: brokers,
                  max: brokers + elastic.spareBrokers!,
                  target: 0.6,
                  capacity: { messagesPerSecond: 2 * workload.rate },
                  model: { _tag: "PayAsYouGo" },
                  scaleOutCooldown: Duration.seconds(3),
                  scaleInCooldown: Duration.seconds(10),
                  maxStepIn: 1
                }
              }
              : {})
          },
          onEvent: (event) =>
            Effect.sync(() =>
              void history.events.push({
                type: "fault",
                at: event.at,
                fault: `elasticity: ${Elasticity.plural(event.role)} ${event.from} → ${event.to}${event.ok ? "" : " (failed)"}`,
                nodes: []
              })
            )
        }).pipe(
          Effect.provide(cluster.metadata),
          Effect.provideService(Orchestrator.Orchestrator, cluster.orchestrator),
          Effect.orDie
        )
      }
      // every queue served before traffic starts
      yield* Effect.sleep(Duration.seconds(1))
      const start = yield* Clock.currentTimeMillis
      const scope = yield* Effect.scope
      const producers = yield* Effect.forEach(Array.from({ length: workload.producers }, (_, i) => `producer-${i}`), (name) => {
        cluster.addClient(name)
        return Effect.forkIn(Workload.producer(name, cluster.endpoints, history, control, workload), scope)
      })
      // consumers run in their own scopes, so that one can crash and another take its place
      let incarnations = 0
      const consumers = new Map<string, Scope.Closeable>()
      const startConsumer = Effect.gen(function*() {
        const name = `consumer-${incarnations++}`
        cluster.addClient(name)
        const own = yield* Scope.fork(scope)
        consumers.set(name, own)
        yield* Effect.forkIn(Effect.scoped(Workload.consumer(name, cluster.endpoints, history, control, workload)), own)
      })
      for (let i = 0; i < workload.consumers; i++) yield* startConsumer
      for (const { name, ...target } of Workload.pullers) {
        cluster.addClient(name)
        yield* Effect.forkIn(Effect.scoped(Workload.puller(name, cluster.endpoints, history, target)), scope)
      }
      cluster.addClient("dead-letters")
      yield* Effect.forkIn(Effect.scoped(Workload.consumer("dead-letters", cluster.endpoints, history, control, workload, true)), scope)
      const pool: ConsumerPool = {
        crashOne: Effect.gen(function*() {
          const names = [...consumers.keys()]
          const name = yield* Workload.pickOne(names)
          const own = consumers.get(name)!
          consumers.delete(name)
          yield* Scope.close(own, Exit.void)
          yield* startConsumer
        })
      }
      const clockFaulting = options.clockFaults === true ? yield* Effect.forkIn(clockFaults(cluster, history, start + duration), scope) : undefined
      if (options.faults !== false) yield* faults(cluster, history, pool, start + duration, elasticBrokers ? brokers : undefined)
      else yield* Effect.sleep(Duration.millis(duration))
      // clock faults end with the others: every clock synced and running
      if (clockFaulting !== undefined) {
        yield* Fiber.interrupt(clockFaulting)
        for (const node of [...cluster.brokers, ...cluster.proxies]) {
          yield* cluster.pause(node.name, false)
          cluster.clock(node.name)?.sync()
        }
      }
      // heal: everything back, then drain
      const network = yield* SimNetwork.SimNetwork
      yield* network.heal
      yield* network.setFaults({ dropRate: 0, latency: Duration.millis(1), jitter: Duration.millis(1) })
      for (const node of [...cluster.brokers, ...cluster.proxies]) {
        cluster.cutFromMetadata(node.name, false)
        yield* cluster.isolate(node.name, false)
        yield* cluster.fillDisk(node.name, false)
        // brokers the controller scales are its own to start (a broker it retired stays down)
        if (!cluster.isUp(node.name) && !(elasticBrokers && node.kind === "broker")) yield* cluster.start(node.name)
      }
      history.events.push({ type: "fault", at: yield* Clock.currentTimeMillis, fault: "healed", nodes: [] })
      control.producing = false
      yield* Effect.forEach(producers, Fiber.await, { discard: true })
      control.draining = true
      // drains until every acknowledged message has reached its groups (or the drain time is up), and
      // at least 20 s (or the whole drain time if shorter), so that what is still in flight settles
      const drainStart = yield* Clock.currentTimeMillis
      yield* Effect.sleep(Duration.millis(Math.min(20_000, drain)))
      while ((yield* Clock.currentTimeMillis) < drainStart + drain && Checker.undelivered(history, expectations).length > 0) {
        yield* Effect.sleep(Duration.seconds(5))
      }
    }).pipe(Effect.scoped, Effect.provideService(Trace.Trace, tee))
  }).pipe(
    Effect.provide(Layer.fresh(SimNetwork.SimNetwork.layer({ latency: Duration.millis(1), jitter: Duration.millis(1) }))),
    Effect.provideService(References.MinimumLogLevel, options.logLevel ?? "None"),
    Effect.provideService(PlantedBugs.PlantedBugs, new Set(options.plantedBugs ?? []))
  )

/**
 * Runs one seed and checks its history.
 *
 * @since 0.1.0
 */
export const run = (options: ScenarioOptions): Outcome => {
  const history = History.make()
  const result = Sim.run(program(options, history), {
    seed: options.seed,
    maxSteps: 500_000_000,
    ...(options.keepEvents === undefined ? {} : { keepEvents: options.keepEvents })
  })
  const checked = Checker.check(history, options.clockFaults === true ? { ...expectations, clockErrorMillis } : expectations)
  return {
    seed: options.seed,
    traceHash: result.traceHash,
    steps: result.steps,
    virtualMillis: result.virtualMillis,
    failure: Exit.isFailure(result.exit) ? String(result.exit.cause) : undefined,
    violations: checked.violations,
    summary: checked.summary,
    history
  }
}

