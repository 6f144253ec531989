/**
 * The elasticity controller: a cluster singleton that reads the load every node reports and scales
 * each role through the `Orchestrator`, by the role's `Elasticity` policy.
 *
 * **Details**
 *
 * - One live instance acts: every instance campaigns for `controller/leader` (`Leadership`), and
 *   only the leader decides. In `strait dev` and the simulator it is the only candidate.
 * - Every `interval` the leader takes, per role, the orchestrator's nodes and their reports under
 *   `load/<role>/` younger than `staleAfter`, and asks the policy for a change. A scale-out starts the
 *   missing nodes in one step; a scale-in stops the least loaded nodes (those that have not reported
 *   first), each one draining within its deadline. A role whose change is under way is not decided
 *   again until that change is done, so a long drain never doubles a decision.
 * - Each decision is an event: logged, counted in the `strait_elasticity_decisions` metric (by role
 *   and direction), and kept with what came of it, the last ones under `controller/events`, which
 *   `strait status` shows.
 * - Brokers (with a broker policy): every tick the leader spreads each topic's queues over the
 *   brokers that take writes, by their `weights` (`Placement.plan`, at most `maxMoves` a tick): a new
 *   broker gets its share of every topic's write traffic without any data copied. A broker scale-in
 *   stops the highest-numbered brokers (a StatefulSet's highest ordinals), and only once they have
 *   left without a message stranded: their queues move away first, they are marked leaving, and the
 *   leader waits until each owns no queue and reports nothing unconsumed, in flight or held for later
 *   (its consumers keep receiving from it meanwhile). One not drained within `retireTimeout` stays,
 *   the decision failing with what it still holds.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Metric, type Scope } from "effect"
import * as Catalog from "./Catalog.ts"
import * as Elasticity from "./Elasticity.ts"
import * as Leadership from "./Leadership.ts"
import { MetadataStore } from "./MetadataStore.ts"
import { Orchestrator, OrchestratorFailed } from "./Orchestrator.ts"
import * as Placement from "./Placement.ts"

/**
 * A decision and what came of it.
 *
 * @since 0.1.0
 */
export interface Event extends Elasticity.Decision {
  /** When it was decided, in epoch milliseconds. */
  readonly at: number
  /** The nodes started or stopped, or why the orchestrator failed. */
  readonly outcome: string
  readonly ok: boolean
}

/**
 * The controller's settings.
 *
 * @since 0.1.0
 */
export interface Options {
  /** This instance's id in the election. */
  readonly id: string
  /** The roles to scale: a role without a policy is left as it is. */
  readonly policy: Partial<Elasticity.Policy>
  /** How often the leader decides (default 1 s). */
  readonly interval?: Duration.Input
  /** How old a load report may be and still count (default 5 s). */
  readonly staleAfter?: Duration.Input
  /** The leadership lease's ttl (default 5 s). */
  readonly leaseTtl?: Duration.Input
  /** How many events are kept (default 20). */
  readonly keepEvents?: number
  /** Told of each event as it happens (the simulator notes them in its history). */
  readonly onEvent?: (event: Event) => Effect.Effect<void>
  /** Brokers: each one's share of every topic's queues relative to the others' (default 1). */
  readonly weights?: Readonly<Record<string, number>>
  /** Brokers: at most this many queues move a tick (default 8). */
  readonly maxMoves?: number
  /** Brokers: how long a leaving broker may take to be drained before it stays after all (default 10 min). */
  readonly retireTimeout?: Duration.Input
}

/**
 * A running controller.
 *
 * @since 0.1.0
 */
export interface Controller {
  /** Whether this instance leads (and decides) now. */
  readonly leading: Effect.Effect<boolean>
  /** The events of this instance, oldest first. */
  readonly events: Effect.Effect<ReadonlyArray<Event>>
}

const decisions = Metric.counter("strait_elasticity_decisions", {
  description: "scaling decisions of the elasticity controller, by role and direction",
  incremental: true
})

// ids by their trailing number (broker-2 before broker-10), then as text
const byOrdinal = (a: string, b: string) => {
  const number = (id: string) => Number(/(\d+)$/.exec(id)?.[1] ?? -1)
  return number(a) - number(b) || (a < b ? -1 : a > b ? 1 : 0)
}

/**
 * The events the controller keeps in the store, oldest first.
 *
 * @since 0.1.0
 */
export const storedEvents = Effect.gen(function*() {
  const entry = yield* (yield* MetadataStore).get(Catalog.keys.controllerEvents)
  if (entry === undefined) return [] as ReadonlyArray<Event>
  try {
    const parsed: unknown = JSON.parse(entry.value)
    return Array.isArray(parsed) ? parsed as ReadonlyArray<Event> : []
  } catch {
    return [] as ReadonlyArray<Event>
  }
})

/**
 * Runs the controller while the scope lives; fails at once when a role's policy does not hold
 * together.
 *
 * @since 0.1.0
 */
export const run = (options: Options): Effect.Effect<Controller, Elasticity.InvalidPolicy, MetadataStore | Orchestrator | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* MetadataStore
    const orchestrator = yield* Orchestrator
    const policies: Array<Elasticity.CheckedPolicy> = []
    for (const role of Elasticity.Role.literals) {
      const policy = options.policy[role]
      if (policy === undefined) continue
      const checked = Elasticity.check(role, policy)
      if (checked instanceof Elasticity.InvalidPolicy) return yield* checked
      policies.push(checked)
    }
    const staleAfter = Duration.toMillis(options.staleAfter ?? Duration.seconds(5))
    const keep = options.keepEvents ?? 20
    const candidacy = yield* Leadership.campaign({
      key: Catalog.keys.controller,
      id: options.id,
      ...(options.leaseTtl === undefined ? {} : { ttl: options.leaseTtl })
    })
    const events: Array<Event> = []
    const last = new Map<Elasticity.Role, { out?: number; in?: number }>()
    const busy = new Set<Elasticity.Role>()

    const record = (event: Event) =>
      Effect.gen(function*() {
        events.push(event)
        if (events.length > keep) events.splice(0, events.length - keep)
        const direction = event.to > event.from ? "out" : "in"
        yield* Metric.update(Metric.withAttributes(decisions, { role: event.role, direction, ok: String(event.ok) }), 1)
        const line = `scale ${direction} ${Elasticity.plural(event.role)} ${event.from} → ${event.to}: ${event.reason}; ${event.outcome}`
        yield* event.ok ? Effect.logInfo(line) : Effect.logWarning(line)
        yield* options.onEvent?.(event) ?? Effect.void
        yield* store.put(Catalog.keys.controllerEvents, JSON.stringify(events)).pipe(
          Effect.catch((error) => Effect.logDebug("could not store the elasticity events", error))
        )
      })

    // the nodes to stop: proxies the least loaded first (those that have not reported before all),
    // brokers the highest-numbered first
    const victims = (ids: ReadonlyArray<string>, loads: ReadonlyArray<Elasticity.Load>, policy: Elasticity.CheckedPolicy, count: number) => {
      if (policy.role === "broker") return [...ids].sort(byOrdinal).reverse().slice(0, count)
      const levels = new Map(loads.map((load) => [load.id, Elasticity.level(load, policy.capacity).level]))
      return [...ids]
        .sort((a, b) => (levels.get(a) ?? -1) - (levels.get(b) ?? -1) || (a < b ? 1 : a > b ? -1 : 0))
        .slice(0, count)
    }

    const maxMoves = options.maxMoves ?? 8
    const retireTimeout = Duration.toMillis(options.retireTimeout ?? Duration.minutes(10))
    const interval = options.interval ?? Duration.seconds(1)

    // Spreads the queues over the brokers taking writes; `leaving` brokers' queues all move. A queue
    // in a move (its owner not yet its home) or with a handoff under way stays until that is done.
    const rebalance = (leaving: ReadonlySet<string>, limit: number) =>
      Effect.gen(function*() {
        const retiring = yield* Catalog.retiring
        const live = (yield* Catalog.brokers).map((broker) => broker.id)
        const epochs = yield* Catalog.epochs
        const owners = yield* Catalog.owners
        const frozen = new Set<string>()
        for (const [key, owner] of owners) if (epochs.get(key)?.home !== owner.broker) frozen.add(key)
        for (const handoff of yield* Catalog.handoffs) frozen.add(Catalog.queueKey(handoff.topic, handoff.queueId))
        const queues = (yield* Catalog.topics).flatMap((topic) =>
          Array.from({ length: topic.queues }, (_, queueId) => ({
            topic: topic.name,
            queueId,
            home: epochs.get(Catalog.queueKey(topic.name, queueId))?.home
          })))
        const out = new Set([...leaving, ...[...retiring].filter((id) => live.includes(id))])
        const moves = Placement.plan({
          queues,
          active: live.filter((id) => !out.has(id)),
          leaving: out,
          frozen,
          maxMoves: limit,
          ...(options.weights === undefined ? {} : { weights: options.weights })
        })
        let moved = 0
        for (const move of moves) {
          if (yield* Catalog.moveQueue(move.topic, move.queueId, move.to)) moved++
        }
        if (moved > 0) yield* Effect.logInfo(`moved the writes of ${moved} queues: ${moves.map((move) => `${move.topic}/${move.queueId} ${move.from} → ${move.to}`).join(", ")}`)
        return moved
      }).pipe(Effect.provideService(MetadataStore, store))

    // what a leaving broker still holds, or `undefined` once it holds nothing
    const holding = (id: string, since: number) =>
      Effect.gen(function*() {
        const owned = [...(yield* Catalog.owners).values()].filter((owner) => owner.broker === id).length
        if (owned > 0) return `${owned} queues still owned`
        const handoffs = (yield* Catalog.handoffs).filter((handoff) => handoff.broker === id).length
        if (handoffs > 0) return `${handoffs} FIFO queues still handing off`
        const load = Catalog.decode(Elasticity.Load, yield* store.get(Catalog.keys.load("broker", id)))
        if (load === undefined || load.at < since) return "no load report since it began leaving"
        const left = load.backlog + load.popInFlight + (load.held ?? 0)
        return left === 0 ? undefined : `${load.backlog} messages unconsumed (${load.popInFlight} in flight), ${load.held ?? 0} held for later`
      }).pipe(Effect.provideService(MetadataStore, store))

    // Brokers leave without a message stranded: their queues move, they are marked leaving, and they
    // stop once drained; one not drained in time stays.
    const retire = (stopping: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const since = yield* Clock.currentTimeMillis
        const leaving = new Set(stopping)
        yield* rebalance(leaving, Number.POSITIVE_INFINITY)
        const mark = (on: boolean) =>
          Effect.forEach(stopping, (id) => Catalog.setRetiring(id, on), { discard: true }).pipe(Effect.provideService(MetadataStore, store))
        yield* mark(true)
        while (true) {
          yield* Effect.sleep(interval)
          yield* rebalance(leaving, Number.POSITIVE_INFINITY)
          const left = yield* Effect.forEach(stopping, (id) => Effect.map(holding(id, since), (what) => what === undefined ? undefined : `${id}: ${what}`))
          const still = left.filter((what): what is string => what !== undefined)
          if (still.length === 0) break
          if ((yield* Clock.currentTimeMillis) - since > retireTimeout) {
            yield* mark(false)
            return yield* new OrchestratorFailed({ reason: `not drained in time, so they stay (${still.join("; ")})` })
          }
        }
        yield* orchestrator.scaleIn("broker", stopping)
        yield* mark(false)
        return `stopped ${stopping.join(", ")} once drained (their queues moved, everything consumed)`
      }).pipe(Effect.mapError((error) => error._tag === "OrchestratorFailed" ? error : new OrchestratorFailed({ reason: error.message })))

    const carryOut = (policy: Elasticity.CheckedPolicy, decision: Elasticity.Decision, ids: ReadonlyArray<string>, loads: ReadonlyArray<Elasticity.Load>, at: number) => {
      const times = last.get(policy.role) ?? {}
      const action = decision.to > decision.from
        ? Effect.flatMap(orchestrator.scaleOut(policy.role, decision.to - decision.from), (started) =>
          policy.role === "broker"
            ? Effect.map(Effect.orElseSucceed(rebalance(new Set(), Number.POSITIVE_INFINITY), () => 0), (moved) => `started ${started.join(", ")}; ${moved} queues moved to take writes there`)
            : Effect.succeed(`started ${started.join(", ")}`))
        : Effect.suspend(() => {
          const stopping = victims(ids, loads, policy, decision.from - decision.to)
          return policy.role === "broker" ? retire(stopping) : Effect.as(orchestrator.scaleIn(policy.role, stopping), `stopped ${stopping.join(", ")}`)
        })
      last.set(policy.role, decision.to > decision.from ? { ...times, out: at } : { ...times, in: at })
      busy.add(policy.role)
      return action.pipe(
        Effect.matchEffect({
          onSuccess: (outcome) => record({ ...decision, at, outcome, ok: true }),
          onFailure: (error) => record({ ...decision, at, outcome: `failed: ${error.reason}`, ok: false })
        }),
        Effect.ensuring(Effect.sync(() => busy.delete(policy.role)))
      )
    }

    const decideRole = (policy: Elasticity.CheckedPolicy) =>
      Effect.gen(function*() {
        if (busy.has(policy.role)) return
        const now = yield* Clock.currentTimeMillis
        const ids = yield* orchestrator.nodes(policy.role)
        const running = new Set(ids)
        const { entries } = yield* store.list(Catalog.keys.loads(policy.role))
        const loads: Array<Elasticity.Load> = []
        for (const entry of entries) {
          const load = Catalog.decode(Elasticity.Load, entry)
          if (load !== undefined && running.has(load.id) && now - load.at <= staleAfter) loads.push(load)
        }
        const times = last.get(policy.role)
        const decision = Elasticity.decide(policy, {
          nodes: ids.length,
          loads,
          now,
          ...(times?.out === undefined ? {} : { lastScaleOut: times.out }),
          ...(times?.in === undefined ? {} : { lastScaleIn: times.in })
        })
        if (decision !== undefined) yield* Effect.forkScoped(carryOut(policy, decision, ids, loads, now))
      }).pipe(Effect.catch((error) => Effect.logWarning(`the elasticity controller could not look at the ${Elasticity.plural(policy.role)}`, error)))

    const brokersScaled = policies.some((policy) => policy.role === "broker")
    const tick = Effect.gen(function*() {
      if (!(yield* candidacy.leading)) return
      for (const policy of policies) yield* decideRole(policy)
      if (brokersScaled && !busy.has("broker")) {
        yield* rebalance(new Set(), maxMoves).pipe(Effect.catch((error) => Effect.logWarning("the elasticity controller could not place the queues", error)))
      }
    })
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), tick)))

    return {
      leading: candidacy.leading,
      events: Effect.sync(() => [...events])
    }
  })
