// The bounded sweep CI runs: seeds of one simulated minute with faults, each one test, each holding
// every rule. `strait sim --seeds 1..1000 --minutes 10` is the nightly size.
import { expect, it } from "@effect/vitest"
import { Checker, Scenario, Sweep } from "../../src/index.ts"

export const sweep = (from: number, to: number) =>
  it.each(Array.from({ length: to - from + 1 }, (_, i) => from + i))("seed %i keeps every rule", (seed) => {
    const outcome = Scenario.run({ seed, duration: "1 minute" })
    const replay = Sweep.replayCommand(seed, { minutes: 1, rate: 50, faults: true })
    expect(outcome.failure, Sweep.failureReport(outcome, replay)).toBeUndefined()
    expect(outcome.violations.map((violation) => Checker.format(violation, outcome.history.origin)), Sweep.failureReport(outcome, replay)).toEqual([])
  }, 120_000)
