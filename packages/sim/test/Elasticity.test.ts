// The elasticity controller inside the simulator: a 10× load ramp with faults, proxies scaled out and
// back in through the simulated orchestrator, and every rule of the checker holding throughout.
import { assert, describe, it } from "@effect/vitest"
import { Scenario } from "../src/index.ts"

describe("elasticity in a simulated cluster", () => {
  it("the ramp rises over the second fifth of the run, holds at its peak over the third, and falls over the fourth", () => {
    const ramp = Scenario.ramp(10, 100_000)
    assert.deepStrictEqual([0, 19_999, 30_000, 40_000, 50_000, 70_000, 80_000, 99_999].map((elapsed) => Math.round(ramp(elapsed) * 100) / 100), [1, 1, 5.5, 10, 10, 5.5, 1, 1])
  })

  it("under a 10× load ramp with faults the controller scales the proxies out while it rises and in once it falls; no rule is broken", () => {
    const outcome = Scenario.run({ seed: 1, duration: "60 seconds", rate: 20, elasticity: { spareProxies: 3, peak: 10 } })
    assert.isUndefined(outcome.failure)
    assert.deepStrictEqual(outcome.violations, [])
    const at = (event: { readonly at: number }) => (event.at - outcome.history.origin) / 1000
    const decisions = outcome.history.events.flatMap((event) => {
      const counts = event.type === "fault" ? /^elasticity: proxies (\d+) → (\d+)$/.exec(event.fault) : null
      return counts === null ? [] : [{ at: at(event), from: Number(counts[1]), to: Number(counts[2]) }]
    })
    const healed = outcome.history.events.find((event) => event.type === "fault" && event.fault === "healed")!
    // the ramp rises from 12 s to 24 s of the traffic (which starts a second or two in) and holds its
    // peak until 36 s; after the faults heal, the backlog they left may call for proxies again while it drains
    const out = decisions.filter((decision) => decision.to > decision.from && decision.at < at(healed))
    assert.isNotEmpty(out)
    // the count reaches each new high while the load rises; a proxy a fault killed may be replaced
    // (back up to the count already reached) at any time
    let high = 3
    const raises = out.filter((decision) => decision.to > high && (high = decision.to) > 0)
    assert.isTrue(raises.every((decision) => decision.at >= 12 && decision.at <= 38), JSON.stringify(decisions))
    assert.strictEqual(Math.max(...out.map((decision) => decision.to)), 6)
    // and falls from 36 s to 48 s: proxies go before the faults heal, and after it back down to 3
    assert.isTrue(decisions.some((decision) => decision.to < decision.from && decision.at > 36 && decision.at < at(healed)), JSON.stringify(decisions))
    assert.strictEqual(decisions.at(-1)?.to, 3)
  }, 120_000)

  // the controller's decisions for the brokers, from the history
  const brokerDecisions = (outcome: Scenario.Outcome) =>
    outcome.history.events.flatMap((event) => {
      const counts = event.type === "fault" ? /^elasticity: brokers (\d+) → (\d+)( \(failed\))?$/.exec(event.fault) : null
      return counts === null ? [] : [{ at: (event.at - outcome.history.origin) / 1000, from: Number(counts[1]), to: Number(counts[2]), ok: counts[3] === undefined }]
    })

  it("without faults, brokers are added as the load rises and retired once drained as it falls: FIFO order holds across every move, and nothing is lost or stranded", () => {
    const outcome = Scenario.run({ seed: 1, duration: "60 seconds", rate: 20, faults: false, elasticity: { spareProxies: 0, peak: 10, spareBrokers: 2 } })
    assert.isUndefined(outcome.failure)
    // the checker holds FIFO order strictly here: no fault excuses any reordering
    assert.deepStrictEqual(outcome.violations, [])
    const decisions = brokerDecisions(outcome)
    assert.isTrue(decisions.every((decision) => decision.ok), JSON.stringify(decisions))
    // out to both spares while the load rises, then in to the three it began with: never in, then out again
    const counts = decisions.map((decision) => decision.to)
    const peak = counts.indexOf(Math.max(...counts))
    assert.strictEqual(counts[peak], 5, JSON.stringify(counts))
    assert.isTrue(counts.every((count, i) => i === 0 || (i <= peak ? count > counts[i - 1]! : count < counts[i - 1]!)), JSON.stringify(counts))
    assert.strictEqual(counts.at(-1), 3)
    // the new brokers took writes of the FIFO topic (a queue claimed past epoch 1 while traffic ran),
    // and the retired ones gave them back
    const moves = outcome.history.events.filter((event) => event.type === "claim" && event.queue.startsWith("sequenced/") && event.epoch > 1)
    assert.isTrue(moves.some((event) => event.type === "claim" && (event.broker === "broker-3" || event.broker === "broker-4")))
    assert.isTrue(moves.length >= 3)
  }, 120_000)

  it("under faults too, brokers scale out and in without a lost or stranded message", () => {
    const outcome = Scenario.run({ seed: 3, duration: "60 seconds", rate: 20, elasticity: { spareProxies: 0, peak: 10, spareBrokers: 2 } })
    assert.isUndefined(outcome.failure)
    assert.deepStrictEqual(outcome.violations, [])
    const decisions = brokerDecisions(outcome)
    assert.isTrue(decisions.some((decision) => decision.to > decision.from && decision.ok))
    assert.isTrue(decisions.some((decision) => decision.to < decision.from && decision.ok))
  }, 120_000)
})
