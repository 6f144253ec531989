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
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Metric, type Scope } from "effect"
import * as Catalog from "./Catalog.ts"
import * as Elasticity from "./Elasticity.ts"
import * as Leadership from "./Leadership.ts"
import { MetadataStore } from "./MetadataStore.ts"
import { Orchestrator } from "./Orchestrator.ts"

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

    // the nodes to stop: the least loaded first, those that have not reported before all
    const victims = (ids: ReadonlyArray<string>, loads: ReadonlyArray<Elasticity.Load>, policy: Elasticity.CheckedPolicy, count: number) => {
      const levels = new Map(loads.map((load) => [load.id, Elasticity.level(load, policy.capacity).level]))
      return [...ids]
        .sort((a, b) => (levels.get(a) ?? -1) - (levels.get(b) ?? -1) || (a < b ? 1 : a > b ? -1 : 0))
        .slice(0, count)
    }

    const carryOut = (policy: Elasticity.CheckedPolicy, decision: Elasticity.Decision, ids: ReadonlyArray<string>, loads: ReadonlyArray<Elasticity.Load>, at: number) => {
      const times = last.get(policy.role) ?? {}
      const action = decision.to > decision.from
        ? Effect.map(orchestrator.scaleOut(policy.role, decision.to - decision.from), (started) => `started ${started.join(", ")}`)
        : Effect.suspend(() => {
          const stopping = victims(ids, loads, policy, decision.from - decision.to)
          return Effect.as(orchestrator.scaleIn(policy.role, stopping), `stopped ${stopping.join(", ")}`)
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

    const tick = Effect.gen(function*() {
      if (!(yield* candidacy.leading)) return
      for (const policy of policies) yield* decideRole(policy)
    })
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(options.interval ?? Duration.seconds(1)), tick)))

    return {
      leading: candidacy.leading,
      events: Effect.sync(() => [...events])
    }
  })
