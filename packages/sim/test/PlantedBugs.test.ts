// The checker is tested by planting known bugs (test-only switches in the production code) and
// showing that a sweep of seeds catches each, under the rule it breaks, within 100 seeds.
import { describe, expect, it } from "@effect/vitest"
import type { PlantedBugs } from "@strait/core"
import { Scenario } from "../src/index.ts"

// the first seed whose run breaks a rule with the bug planted, and the rules it broke
const firstCaught = (bug: PlantedBugs.PlantedBug) => {
  for (let seed = 1; seed <= 100; seed++) {
    const outcome = Scenario.run({ seed, duration: "30 seconds", plantedBugs: [bug] })
    if (outcome.violations.length > 0) return { seed, rules: new Set(outcome.violations.map((violation) => violation.rule)) }
  }
  return undefined
}

describe("planted bugs are caught within 100 seeds", () => {
  it.each([
    ["send-acked-before-sync", "lost"],
    ["fifo-head-skipped", "fifo"],
    ["attempt-not-incremented", "attempts"],
    ["fencing-removed", "fencing"],
    ["timer-early", "delay"]
  ] as const)("%s breaks the rule %s", (bug, rule) => {
    const caught = firstCaught(bug)
    expect(caught, `${bug} was not caught in 100 seeds`).toBeDefined()
    expect([...caught!.rules]).toContain(rule)
  }, 600_000)
})
