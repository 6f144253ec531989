/**
 * The elasticity policy: from the load every node reports and the policy of its role, how many nodes
 * the role should run now, and why. Pure functions; the `ElasticityController` runs them.
 *
 * **Details**
 *
 * - A node's water level is the highest of its loads measured against what one node is meant to
 *   carry: CPU (a fraction of a core), messages and bytes per second, connections, Pop messages in
 *   flight, backlog. The role's demand is the sum of its nodes' water levels (a node that has not
 *   reported yet counts as idle). Over `target × (1 + tolerance)` on average, the role scales out to
 *   `ceil(demand / target)` nodes; it scales in only to a count that would sit at or under
 *   `target × (1 - tolerance)`, so that it does not flap around the target.
 * - A node whose p99 latency is over the role's SLO asks for one node more, whatever the water level.
 * - The model sets the floor and the ceiling between `min` and `max`: pay-as-you-go uses them as they
 *   are; reserved + burst keeps `reserved` nodes always and adds at most `burst`; timed schedules
 *   raise the floor to a schedule's `nodes` while it is on (from its `start` cron to its `end` cron).
 * - Below the floor or above the ceiling the role moves there at once. Otherwise scaling out waits
 *   `scaleOutCooldown` after the last scale-out and goes to the needed count in one step; scaling in
 *   waits `scaleInCooldown` after any change and removes at most `maxStepIn` nodes at a time.
 *
 * @since 0.1.0
 */
import { Data, Duration, Schema } from "effect"
import * as Cron from "./Cron.ts"

/**
 * The roles the controller scales.
 *
 * @since 0.1.0
 */
export const Role = Schema.Literals(["proxy", "broker"])

/**
 * A role the controller scales.
 *
 * @since 0.1.0
 */
export type Role = typeof Role.Type

const Count = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A role's name for many of its nodes, for messages.
 *
 * @since 0.1.0
 */
export const plural = (role: Role): string => role === "proxy" ? "proxies" : "brokers"

/**
 * What a node reports about itself, every second or so; rates are per second over the last report.
 *
 * @since 0.1.0
 */
export const Load = Schema.Struct({
  id: Schema.String,
  role: Role,
  /** When the node measured this, in epoch milliseconds of its clock. */
  at: Schema.Number,
  /** CPU time used per second of wall time (1 = one core busy). */
  cpu: Count,
  messagesPerSecond: Count,
  bytesPerSecond: Count,
  connections: Count,
  /** Messages received by consumers and not yet acknowledged. */
  popInFlight: Count,
  /** Messages stored and not yet consumed. */
  backlog: Count,
  /** How long the oldest unconsumed message has waited, in milliseconds. */
  lagMillis: Count,
  p99Millis: Count,
  /** Brokers: messages held for later (delayed, or half of a transaction). */
  held: Schema.optionalKey(Count)
})

/**
 * What a node reports about itself.
 *
 * @since 0.1.0
 */
export type Load = typeof Load.Type

/**
 * What one node of a role is meant to carry at water level 1: a load left out is not limited.
 *
 * @since 0.1.0
 */
export interface Capacity {
  readonly cpu?: number
  readonly messagesPerSecond?: number
  readonly bytesPerSecond?: number
  readonly connections?: number
  readonly popInFlight?: number
  readonly backlog?: number
}

/**
 * A timed schedule: from each firing of `start` to the next firing of `end`, the role keeps at least
 * `nodes` nodes.
 *
 * @since 0.1.0
 */
export interface Schedule {
  readonly start: string
  readonly end: string
  readonly nodes: number
}

/**
 * How a role pays for its nodes.
 *
 * @since 0.1.0
 */
export type Model =
  | { readonly _tag: "PayAsYouGo" }
  | { readonly _tag: "ReservedBurst"; readonly reserved: number; readonly burst: number }
  | { readonly _tag: "Timed"; readonly schedules: ReadonlyArray<Schedule> }

/**
 * How one role scales.
 *
 * @since 0.1.0
 */
export interface RolePolicy {
  readonly min: number
  readonly max: number
  /** The water level each node should sit at, in (0, 1]. */
  readonly target: number
  readonly capacity: Capacity
  readonly model: Model
  /** The p99 latency a node should stay under; over it the role asks for one node more. */
  readonly p99SloMillis?: number
  /** How far from the target the mean level may be before the count changes (default 0.1). */
  readonly tolerance?: number
  readonly scaleOutCooldown: Duration.Input
  readonly scaleInCooldown: Duration.Input
  /** The most nodes one scale-in removes (default 1). */
  readonly maxStepIn?: number
}

/**
 * The policy of every role.
 *
 * @since 0.1.0
 */
export type Policy = { readonly [role in Role]: RolePolicy }

/**
 * A policy that does not hold together: which role, and why.
 *
 * @since 0.1.0
 */
export class InvalidPolicy extends Data.TaggedError("InvalidPolicy")<{ readonly role: string; readonly reason: string }> {
  override get message() {
    return `the ${this.role} elasticity policy is invalid: ${this.reason}`
  }
}

/**
 * A role's policy checked, its cron expressions parsed.
 *
 * @since 0.1.0
 */
export interface CheckedPolicy extends RolePolicy {
  readonly role: Role
  readonly schedules: ReadonlyArray<{ readonly start: Cron.Cron; readonly end: Cron.Cron; readonly nodes: number }>
}

const validDuration = (input: unknown) => {
  try {
    return Duration.toMillis(input as Duration.Input) >= 0
  } catch {
    return false
  }
}

/**
 * Checks a role's policy: counts in order, a target in (0, 1], capacities above 0, cron expressions
 * that parse.
 *
 * @since 0.1.0
 */
export const check = (role: Role, policy: RolePolicy): CheckedPolicy | InvalidPolicy => {
  const invalid = (reason: string) => new InvalidPolicy({ role, reason })
  if (!Number.isInteger(policy.min) || !Number.isInteger(policy.max) || policy.min < 0 || policy.max < Math.max(1, policy.min)) {
    return invalid(`min ${policy.min} and max ${policy.max} must be whole numbers with 0 <= min <= max and max >= 1`)
  }
  if (!(policy.target > 0 && policy.target <= 1)) return invalid(`the target water level ${policy.target} is not in (0, 1]`)
  for (const [name, value] of Object.entries(policy.capacity)) {
    if (value !== undefined && !(value > 0)) return invalid(`the capacity ${name} must be above 0`)
  }
  for (const [name, value] of [["scaleOutCooldown", policy.scaleOutCooldown], ["scaleInCooldown", policy.scaleInCooldown]] as const) {
    if (!validDuration(value)) return invalid(`${name} ${JSON.stringify(value)} is not a duration (milliseconds, or such as "30 seconds")`)
  }
  const tolerance = policy.tolerance ?? 0.1
  if (!(tolerance >= 0 && tolerance < 1)) return invalid(`the tolerance ${tolerance} is not in [0, 1)`)
  if ((policy.maxStepIn ?? 1) < 1) return invalid("maxStepIn must be at least 1")
  const schedules: Array<CheckedPolicy["schedules"][number]> = []
  if (policy.model._tag === "ReservedBurst") {
    const { burst, reserved } = policy.model
    if (!Number.isInteger(reserved) || !Number.isInteger(burst) || reserved < 0 || burst < 0 || reserved + burst < 1) {
      return invalid(`reserved ${reserved} and burst ${burst} must be whole numbers, at least one node in all`)
    }
  }
  if (policy.model._tag === "Timed") {
    for (const schedule of policy.model.schedules) {
      const start = Cron.parse(schedule.start)
      if (start instanceof Cron.InvalidCron) return invalid(start.message)
      const end = Cron.parse(schedule.end)
      if (end instanceof Cron.InvalidCron) return invalid(end.message)
      if (!Number.isInteger(schedule.nodes) || schedule.nodes < 0) return invalid(`a schedule's nodes ${schedule.nodes} is not a whole number`)
      schedules.push({ start, end, nodes: schedule.nodes })
    }
  }
  return { ...policy, role, schedules }
}

/**
 * The count a role may not go below and may not go above now, and what sets them.
 *
 * @since 0.1.0
 */
export const bounds = (policy: CheckedPolicy, now: number): { readonly floor: number; readonly ceiling: number; readonly why: string } => {
  switch (policy.model._tag) {
    case "PayAsYouGo":
      return { floor: policy.min, ceiling: policy.max, why: "pay-as-you-go" }
    case "ReservedBurst": {
      const { burst, reserved } = policy.model
      const ceiling = Math.min(policy.max, reserved + burst)
      return { floor: Math.min(ceiling, Math.max(policy.min, reserved)), ceiling, why: `${reserved} reserved + ${burst} burst` }
    }
    case "Timed": {
      let floor = policy.min
      const on: Array<string> = []
      for (const schedule of policy.schedules) {
        const started = Cron.previous(schedule.start, now)
        const ended = Cron.previous(schedule.end, now)
        if (started !== undefined && (ended === undefined || started > ended)) {
          floor = Math.max(floor, Math.min(policy.max, schedule.nodes))
          on.push(`${schedule.start.expression} → ${schedule.end.expression}: ${schedule.nodes}`)
        }
      }
      return { floor, ceiling: policy.max, why: on.length === 0 ? "timed, no schedule on" : `timed, on: ${on.join("; ")}` }
    }
  }
}

/**
 * A node's water level and the load that sets it.
 *
 * @since 0.1.0
 */
export const level = (load: Load, capacity: Capacity): { readonly level: number; readonly by: string } => {
  let best = { level: 0, by: "nothing" }
  const consider = (by: string, value: number, limit: number | undefined) => {
    if (limit !== undefined && value / limit > best.level) best = { level: value / limit, by }
  }
  consider("cpu", load.cpu, capacity.cpu)
  consider("messages/s", load.messagesPerSecond, capacity.messagesPerSecond)
  consider("bytes/s", load.bytesPerSecond, capacity.bytesPerSecond)
  consider("connections", load.connections, capacity.connections)
  consider("pop in flight", load.popInFlight, capacity.popInFlight)
  consider("backlog", load.backlog, capacity.backlog)
  return best
}

/**
 * A change of a role's node count, and why.
 *
 * @since 0.1.0
 */
export interface Decision {
  readonly role: Role
  readonly from: number
  readonly to: number
  readonly reason: string
}

/**
 * What the controller knows of a role when it decides.
 *
 * @since 0.1.0
 */
export interface Observation {
  /** The nodes running now. */
  readonly nodes: number
  /** The fresh reports of those nodes (a node that has not reported yet is left out). */
  readonly loads: ReadonlyArray<Load>
  readonly now: number
  readonly lastScaleOut?: number
  readonly lastScaleIn?: number
}

const round = (value: number) => Math.round(value * 100) / 100

/**
 * The change a role needs now, if any.
 *
 * @since 0.1.0
 */
export const decide = (policy: CheckedPolicy, observed: Observation): Decision | undefined => {
  const { ceiling, floor, why } = bounds(policy, observed.now)
  const from = observed.nodes
  const change = (to: number, reason: string): Decision | undefined => to === from ? undefined : { role: policy.role, from, to, reason }
  if (from < floor) return change(floor, `below the floor of ${floor} (${why})`)
  if (from > ceiling) return change(ceiling, `above the ceiling of ${ceiling} (${why})`)

  let demand = 0
  let busiest: { readonly id: string; readonly level: number; readonly by: string } | undefined
  let slow: Load | undefined
  for (const load of observed.loads) {
    const measured = level(load, policy.capacity)
    demand += measured.level
    if (busiest === undefined || measured.level > busiest.level) busiest = { id: load.id, ...measured }
    if (policy.p99SloMillis !== undefined && load.p99Millis > policy.p99SloMillis && (slow === undefined || load.p99Millis > slow.p99Millis)) {
      slow = load
    }
  }
  const tolerance = policy.tolerance ?? 0.1
  let wanted = from
  let reason = ""
  const detail = busiest === undefined ? "" : ` (busiest ${busiest.id} at ${round(busiest.level)} by ${busiest.by})`
  // a node that has not reported yet counts as idle capacity; with no report at all nothing is known
  if (observed.loads.length > 0 && from > 0) {
    const mean = demand / from
    const described = `mean water level ${round(mean)} against a target of ${policy.target} across ${from} ${plural(policy.role)}${detail}`
    if (mean > policy.target * (1 + tolerance)) {
      wanted = Math.ceil(demand / policy.target - 1e-9)
      reason = described
    } else {
      // fewer nodes only if they would sit at or under the low edge of the tolerance: no flapping
      const enough = Math.ceil(demand / (policy.target * (1 - tolerance)) - 1e-9)
      if (enough < from) {
        wanted = enough
        reason = `${described}; ${enough} would carry it at ${round(enough === 0 ? 0 : demand / enough)}`
      }
    }
  }
  if (slow !== undefined && wanted <= from) {
    wanted = from + 1
    reason = `p99 of ${slow.id} is ${round(slow.p99Millis)} ms, over the SLO of ${policy.p99SloMillis} ms`
  }
  wanted = Math.min(ceiling, Math.max(floor, wanted))
  if (wanted > from) {
    const since = observed.lastScaleOut === undefined ? Infinity : observed.now - observed.lastScaleOut
    return since < Duration.toMillis(policy.scaleOutCooldown) ? undefined : change(wanted, reason)
  }
  if (wanted < from) {
    const last = Math.max(observed.lastScaleOut ?? -Infinity, observed.lastScaleIn ?? -Infinity)
    if (observed.now - last < Duration.toMillis(policy.scaleInCooldown)) return undefined
    return change(Math.max(wanted, from - (policy.maxStepIn ?? 1)), reason)
  }
  return undefined
}

const Cooldown = Schema.Union([Schema.Number, Schema.String])

/**
 * A role's policy as JSON (a policy file): cooldowns in milliseconds or as text such as "30 seconds".
 *
 * @since 0.1.0
 */
export const RolePolicyJson = Schema.Struct({
  min: Schema.Number,
  max: Schema.Number,
  target: Schema.Number,
  capacity: Schema.Struct({
    cpu: Schema.optionalKey(Schema.Number),
    messagesPerSecond: Schema.optionalKey(Schema.Number),
    bytesPerSecond: Schema.optionalKey(Schema.Number),
    connections: Schema.optionalKey(Schema.Number),
    popInFlight: Schema.optionalKey(Schema.Number),
    backlog: Schema.optionalKey(Schema.Number)
  }),
  model: Schema.Union([
    Schema.Struct({ _tag: Schema.Literal("PayAsYouGo") }),
    Schema.Struct({ _tag: Schema.Literal("ReservedBurst"), reserved: Schema.Number, burst: Schema.Number }),
    Schema.Struct({ _tag: Schema.Literal("Timed"), schedules: Schema.Array(Schema.Struct({ start: Schema.String, end: Schema.String, nodes: Schema.Number })) })
  ]),
  p99SloMillis: Schema.optionalKey(Schema.Number),
  tolerance: Schema.optionalKey(Schema.Number),
  scaleOutCooldown: Cooldown,
  scaleInCooldown: Cooldown,
  maxStepIn: Schema.optionalKey(Schema.Number)
})

/**
 * Every role's policy as JSON; a role left out is not scaled.
 *
 * @since 0.1.0
 */
export const PolicyJson = Schema.Struct({ proxy: Schema.optionalKey(RolePolicyJson), broker: Schema.optionalKey(RolePolicyJson) })

/**
 * Reads a policy from JSON, each role checked as `check` does.
 *
 * @since 0.1.0
 */
export const fromJson = (json: unknown): Partial<Policy> | InvalidPolicy => {
  let decoded: typeof PolicyJson.Type
  try {
    decoded = Schema.decodeUnknownSync(PolicyJson)(json)
  } catch (error) {
    return new InvalidPolicy({ role: "any", reason: error instanceof Error ? error.message : String(error) })
  }
  const policy: { -readonly [role in Role]?: RolePolicy } = {}
  for (const role of Role.literals) {
    const given = decoded[role]
    if (given === undefined) continue
    // the cooldowns' text is checked as a duration by `check`
    const candidate = given as RolePolicy
    const checked = check(role, candidate)
    if (checked instanceof InvalidPolicy) return checked
    policy[role] = candidate
  }
  return policy
}
