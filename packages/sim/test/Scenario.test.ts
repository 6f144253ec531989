// Whole simulated clusters: the production nodes on the simulated network and disks, a workload of
// @strait/client producers and consumers, faults from the seed, and the checker over the history.
import { describe, expect, it } from "@effect/vitest"
import { Checker, Scenario } from "../src/index.ts"

const report = (outcome: Scenario.Outcome) =>
  [`seed ${outcome.seed}: ${outcome.failure ?? ""}`, ...outcome.violations.slice(0, 3).map(Checker.format)].join("\n")

describe("a simulated cluster", () => {
  it("without faults every rule holds and every acknowledged message is delivered", () => {
    const outcome = Scenario.run({ seed: 7, faults: false, duration: "20 seconds" })
    expect(outcome.failure, report(outcome)).toBeUndefined()
    expect(outcome.violations, report(outcome)).toEqual([])
    expect(outcome.summary.sends).toBeGreaterThan(500)
    expect(outcome.summary.deliveries).toBeGreaterThanOrEqual(outcome.summary.sends * 0.9)
    // consumers give back and forget some messages: they come again
    expect(outcome.summary.redeliveries).toBeGreaterThan(0)
  }, 120_000)

  it("the same seed gives the same run: the same trace hash and the same history", () => {
    const first = Scenario.run({ seed: 11, duration: "20 seconds" })
    const again = Scenario.run({ seed: 11, duration: "20 seconds" })
    expect(again.traceHash).toBe(first.traceHash)
    expect(again.steps).toBe(first.steps)
    expect(again.history.events.length).toBe(first.history.events.length)
    expect(Scenario.run({ seed: 12, duration: "20 seconds" }).traceHash).not.toBe(first.traceHash)
  }, 120_000)

  it("under faults (crashes, stops, isolation, metadata outages, partitions, a lossy network, failed syncs, full disks, consumer crashes) every rule holds", () => {
    for (const seed of [1, 2, 3, 4]) {
      const outcome = Scenario.run({ seed, duration: "40 seconds" })
      expect(outcome.failure, report(outcome)).toBeUndefined()
      expect(outcome.violations, report(outcome)).toEqual([])
      expect(outcome.summary.faults).toBeGreaterThan(0)
    }
  }, 120_000)

  it("under clock faults too (nodes' clocks drifting up to 1 % and stepping up to 1 s, then synced) every rule holds within the clocks' disagreement", () => {
    let disagreements = 0
    for (const seed of [1, 2, 3]) {
      const outcome = Scenario.run({ seed, duration: "40 seconds", clockFaults: true })
      expect(outcome.failure, report(outcome)).toBeUndefined()
      expect(outcome.violations, report(outcome)).toEqual([])
      expect(outcome.history.events.some((event) => event.type === "fault" && event.fault.startsWith("clock"))).toBe(true)
      // the clocks really disagree: checked as if every node read one clock, brokers' times are off
      disagreements += Checker.check(outcome.history, Scenario.expectations).violations.length
    }
    expect(disagreements).toBeGreaterThan(0)
  }, 120_000)
})
