// Cron expressions of the elasticity controller's timed schedules.
import { assert, describe, it } from "@effect/vitest"
import { Cron } from "../src/index.ts"

const parsed = (expression: string) => {
  const cron = Cron.parse(expression)
  if (cron instanceof Cron.InvalidCron) return assert.fail(cron.message)
  return cron
}

const at = (iso: string) => Date.parse(iso)

describe("Cron", () => {
  it("reads lists, ranges and steps, and matches minutes in UTC", () => {
    const cron = parsed("*/15 9-17 * * 1-5")
    // Monday 2026-12-07
    assert.isTrue(Cron.matches(cron, at("2026-12-07T09:00:30Z")))
    assert.isTrue(Cron.matches(cron, at("2026-12-07T17:45:00Z")))
    assert.isFalse(Cron.matches(cron, at("2026-12-07T09:05:00Z")))
    assert.isFalse(Cron.matches(cron, at("2026-12-07T18:00:00Z")))
    // Sunday
    assert.isFalse(Cron.matches(cron, at("2026-12-06T09:00:00Z")))
    assert.isTrue(Cron.matches(parsed("0 0 1,15 * *"), at("2026-12-15T00:00:00Z")))
    assert.isTrue(Cron.matches(parsed("0 0 * * 7"), at("2026-12-06T00:00:00Z")))
  })

  it("with both days restricted, a day matching either one matches (as cron does)", () => {
    const cron = parsed("0 12 1 * 1")
    assert.isTrue(Cron.matches(cron, at("2026-12-01T12:00:00Z")))
    assert.isTrue(Cron.matches(cron, at("2026-12-07T12:00:00Z")))
    assert.isFalse(Cron.matches(cron, at("2026-12-08T12:00:00Z")))
  })

  it("finds the latest firing at or before a time, across hours, days, months and years", () => {
    assert.strictEqual(Cron.previous(parsed("30 9 * * *"), at("2026-12-07T09:30:59Z")), at("2026-12-07T09:30:00Z"))
    assert.strictEqual(Cron.previous(parsed("30 9 * * *"), at("2026-12-07T09:29:00Z")), at("2026-12-06T09:30:00Z"))
    assert.strictEqual(Cron.previous(parsed("0 0 1 6 *"), at("2026-12-07T00:00:00Z")), at("2026-06-01T00:00:00Z"))
    assert.strictEqual(Cron.previous(parsed("59 23 31 12 *"), at("2026-12-07T00:00:00Z")), at("2025-12-31T23:59:00Z"))
    // February 30th never comes
    assert.isUndefined(Cron.previous(parsed("0 0 30 2 *"), at("2026-12-07T00:00:00Z")))
  })

  it("refuses expressions that do not parse, naming the field", () => {
    for (const [expression, words] of [
      ["* * * *", "4 fields"],
      ["60 * * * *", "minute"],
      ["* 24 * * *", "hour"],
      ["* * 0 * *", "day of month"],
      ["* * * 13 *", "month"],
      ["* * * * 8", "day of week"],
      ["*/0 * * * *", "step"],
      ["5-1 * * * *", "minute"],
      ["a * * * *", "minute"]
    ] as const) {
      const result = Cron.parse(expression)
      assert.instanceOf(result, Cron.InvalidCron, expression)
      if (result instanceof Cron.InvalidCron) assert.include(result.message, words)
    }
  })
})
