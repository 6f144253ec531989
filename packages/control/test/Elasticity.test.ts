// The elasticity policy: how many nodes a role needs from the load its nodes report, and why.
import { assert, describe, it } from "@effect/vitest"
import { Elasticity } from "../src/index.ts"

const policy = (extra: Partial<Elasticity.RolePolicy> = {}): Elasticity.CheckedPolicy => {
  const checked = Elasticity.check("proxy", {
    min: 1,
    max: 10,
    target: 0.6,
    capacity: { cpu: 1, messagesPerSecond: 10_000, connections: 1000 },
    model: { _tag: "PayAsYouGo" },
    scaleOutCooldown: "3 seconds",
    scaleInCooldown: "30 seconds",
    ...extra
  })
  if (checked instanceof Elasticity.InvalidPolicy) return assert.fail(checked.message)
  return checked
}

const load = (id: string, extra: Partial<Elasticity.Load> = {}): Elasticity.Load => ({
  id,
  role: "proxy",
  at: 0,
  cpu: 0,
  messagesPerSecond: 0,
  bytesPerSecond: 0,
  connections: 0,
  popInFlight: 0,
  backlog: 0,
  lagMillis: 0,
  p99Millis: 1,
  ...extra
})

const noon = Date.parse("2026-12-07T12:00:00Z")

describe("Elasticity", () => {
  it("a node's water level is its highest load against what one node carries; loads without a capacity do not count", () => {
    const level = Elasticity.level(load("p", { cpu: 0.3, messagesPerSecond: 8000, bytesPerSecond: 1e12, connections: 100 }), policy().capacity)
    assert.deepStrictEqual(level, { level: 0.8, by: "messages/s" })
  })

  it("scales out in one step to the count that puts the mean water level at the target, and says why", () => {
    const decision = Elasticity.decide(policy(), { nodes: 2, loads: [load("p1", { cpu: 0.9 }), load("p2", { cpu: 0.9 })], now: noon })
    assert.strictEqual(decision?.from, 2)
    assert.strictEqual(decision?.to, 3)
    assert.include(decision!.reason, "mean water level 0.9 against a target of 0.6")
    assert.include(decision!.reason, "busiest p1 at 0.9 by cpu")
    // ten times the load: straight to the count it needs
    const surge = Elasticity.decide(policy(), { nodes: 2, loads: [load("p1", { messagesPerSecond: 30_000 }), load("p2", { messagesPerSecond: 30_000 })], now: noon })
    assert.strictEqual(surge?.to, 10)
  })

  it("within the tolerance of the target nothing changes", () => {
    assert.isUndefined(Elasticity.decide(policy(), { nodes: 2, loads: [load("p1", { cpu: 0.64 }), load("p2", { cpu: 0.62 })], now: noon }))
    assert.isUndefined(Elasticity.decide(policy(), { nodes: 2, loads: [load("p1", { cpu: 0.56 }), load("p2", { cpu: 0.56 })], now: noon }))
  })

  it("does not flap: after a scale-out whose new node gets no load yet, the same demand keeps the count", () => {
    const half = policy({ target: 0.5 })
    assert.strictEqual(Elasticity.decide(half, { nodes: 1, loads: [load("p1", { cpu: 0.59 })], now: noon })?.to, 2)
    // p2 has not reported (or carries nothing): 0.59 over 2 is under the target, but 1 would be over its low edge
    assert.isUndefined(Elasticity.decide(half, { nodes: 2, loads: [load("p1", { cpu: 0.59 })], now: noon }))
    assert.isUndefined(Elasticity.decide(half, { nodes: 2, loads: [load("p1", { cpu: 0.59 }), load("p2")], now: noon }))
    // well under: one node is enough
    assert.strictEqual(Elasticity.decide(half, { nodes: 2, loads: [load("p1", { cpu: 0.3 }), load("p2")], now: noon })?.to, 1)
  })

  it("scales in one node at a time, and only a cooldown after the last change", () => {
    const idle = [load("p1", { cpu: 0.05 }), load("p2", { cpu: 0.05 }), load("p3", { cpu: 0.05 }), load("p4", { cpu: 0.05 })]
    assert.deepStrictEqual(Elasticity.decide(policy(), { nodes: 4, loads: idle, now: noon })?.to, 3)
    assert.deepStrictEqual(Elasticity.decide(policy({ maxStepIn: 2 }), { nodes: 4, loads: idle, now: noon })?.to, 2)
    assert.isUndefined(Elasticity.decide(policy(), { nodes: 4, loads: idle, now: noon, lastScaleIn: noon - 29_000 }))
    assert.isUndefined(Elasticity.decide(policy(), { nodes: 4, loads: idle, now: noon, lastScaleOut: noon - 29_000 }))
    assert.strictEqual(Elasticity.decide(policy(), { nodes: 4, loads: idle, now: noon, lastScaleIn: noon - 30_000 })?.to, 3)
  })

  it("scales out again only a cooldown after the last scale-out", () => {
    const busy = [load("p1", { cpu: 1 })]
    assert.isUndefined(Elasticity.decide(policy(), { nodes: 1, loads: busy, now: noon, lastScaleOut: noon - 2999 }))
    assert.strictEqual(Elasticity.decide(policy(), { nodes: 1, loads: busy, now: noon, lastScaleOut: noon - 3000 })?.to, 2)
    // a recent scale-in does not hold a scale-out back
    assert.strictEqual(Elasticity.decide(policy(), { nodes: 1, loads: busy, now: noon, lastScaleIn: noon - 1 })?.to, 2)
  })

  it("a node over the p99 SLO asks for one node more even at the target water level", () => {
    const decision = Elasticity.decide(policy({ p99SloMillis: 50 }), {
      nodes: 2,
      loads: [load("p1", { cpu: 0.6, p99Millis: 80 }), load("p2", { cpu: 0.6, p99Millis: 20 })],
      now: noon
    })
    assert.strictEqual(decision?.to, 3)
    assert.include(decision!.reason, "p99 of p1 is 80 ms, over the SLO of 50 ms")
  })

  it("pay-as-you-go stays within min and max, and goes to min at once from below it", () => {
    assert.strictEqual(Elasticity.decide(policy({ max: 4 }), { nodes: 2, loads: [load("p1", { cpu: 5 }), load("p2", { cpu: 5 })], now: noon })?.to, 4)
    const below = Elasticity.decide(policy({ min: 3 }), { nodes: 1, loads: [], now: noon, lastScaleOut: noon })
    assert.strictEqual(below?.to, 3)
    assert.include(below!.reason, "below the floor of 3 (pay-as-you-go)")
    assert.isUndefined(Elasticity.decide(policy({ min: 0 }), { nodes: 0, loads: [], now: noon }))
  })

  it("reserved + burst keeps the reserved nodes and bursts at most by its burst", () => {
    const reserved = policy({ model: { _tag: "ReservedBurst", reserved: 3, burst: 2 } })
    assert.strictEqual(Elasticity.decide(reserved, { nodes: 1, loads: [], now: noon })?.to, 3)
    const idle = [load("p1"), load("p2"), load("p3")]
    assert.isUndefined(Elasticity.decide(reserved, { nodes: 3, loads: idle, now: noon }))
    const hot = [load("p1", { cpu: 3 }), load("p2", { cpu: 3 }), load("p3", { cpu: 3 })]
    assert.strictEqual(Elasticity.decide(reserved, { nodes: 3, loads: hot, now: noon })?.to, 5)
    const over = Elasticity.decide(reserved, { nodes: 7, loads: hot, now: noon })
    assert.strictEqual(over?.to, 5)
    assert.include(over!.reason, "above the ceiling of 5 (3 reserved + 2 burst)")
  })

  it("a timed schedule raises the floor from its start to its end", () => {
    const timed = policy({ model: { _tag: "Timed", schedules: [{ start: "0 9 * * 1-5", end: "0 18 * * 1-5", nodes: 6 }] } })
    const idle = [load("p1"), load("p2")]
    // Monday 12:00: on
    const working = Elasticity.decide(timed, { nodes: 2, loads: idle, now: noon })
    assert.strictEqual(working?.to, 6)
    assert.include(working!.reason, "0 9 * * 1-5 → 0 18 * * 1-5: 6")
    // Monday 19:00 and Sunday noon: off, and the idle load scales in
    assert.strictEqual(Elasticity.decide(timed, { nodes: 6, loads: idle, now: noon + 7 * 3_600_000 })?.to, 5)
    assert.isUndefined(Elasticity.decide(timed, { nodes: 2, loads: [load("p1", { cpu: 0.6 }), load("p2", { cpu: 0.6 })], now: noon - 86_400_000 }))
  })

  it("refuses a policy that does not hold together", () => {
    const refused = (extra: Partial<Elasticity.RolePolicy>) => {
      const result = Elasticity.check("broker", { ...policy(), ...extra })
      return result instanceof Elasticity.InvalidPolicy ? result.message : "accepted"
    }
    assert.include(refused({ min: 3, max: 2 }), "min 3 and max 2")
    assert.include(refused({ target: 0 }), "target water level 0")
    assert.include(refused({ capacity: { cpu: 0 } }), "capacity cpu")
    assert.include(refused({ model: { _tag: "ReservedBurst", reserved: 0, burst: 0 } }), "at least one node")
    assert.include(refused({ model: { _tag: "Timed", schedules: [{ start: "0 25 * * *", end: "0 1 * * *", nodes: 2 }] } }), "hour")
    assert.include(refused({ min: 3, max: 2 }), "the broker elasticity policy is invalid")
  })

  it("reads a policy file: roles left out are not scaled, cooldowns in milliseconds or words, and a bad one says what is wrong", () => {
    const read = Elasticity.fromJson({
      proxy: { min: 1, max: 4, target: 0.6, capacity: { cpu: 0.8 }, model: { _tag: "PayAsYouGo" }, scaleOutCooldown: 2000, scaleInCooldown: "30 seconds" }
    })
    if (read instanceof Elasticity.InvalidPolicy) return assert.fail(read.message)
    assert.deepStrictEqual(Object.keys(read), ["proxy"])
    assert.strictEqual(read.proxy?.scaleInCooldown, "30 seconds")
    const badCooldown = Elasticity.fromJson({ proxy: { ...read.proxy, scaleInCooldown: "soon" } })
    assert.instanceOf(badCooldown, Elasticity.InvalidPolicy)
    assert.include((badCooldown as Elasticity.InvalidPolicy).message, "scaleInCooldown \"soon\" is not a duration")
    const badModel = Elasticity.fromJson({ proxy: { ...read.proxy, model: { _tag: "Spot" } } })
    assert.instanceOf(badModel, Elasticity.InvalidPolicy)
  })
})

