/**
 * Cron expressions of five fields (minute, hour, day of month, month, day of week), read in UTC, for
 * the elasticity controller's timed schedules.
 *
 * **Details**
 *
 * A field is `*`, a number, a range `a-b`, a step `*\/n` or `a-b/n`, or a comma-separated list of
 * these. Months are 1–12, days of week 0–7 (0 and 7 are Sunday). As in Vixie cron, when both the day
 * of month and the day of week are restricted, a day matching either one matches.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A cron expression that does not parse: which field, and why.
 *
 * @since 0.1.0
 */
export class InvalidCron extends Data.TaggedError("InvalidCron")<{ readonly expression: string; readonly reason: string }> {
  override get message() {
    return `invalid cron expression "${this.expression}": ${this.reason}`
  }
}

/**
 * A parsed cron expression: the allowed values of each field.
 *
 * @since 0.1.0
 */
export interface Cron {
  readonly expression: string
  readonly minutes: ReadonlySet<number>
  readonly hours: ReadonlySet<number>
  readonly days: ReadonlySet<number>
  readonly months: ReadonlySet<number>
  readonly weekdays: ReadonlySet<number>
  readonly daysRestricted: boolean
  readonly weekdaysRestricted: boolean
}

const fields = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day of week", min: 0, max: 7 }
] as const

const integer = /^\d+$/

const parseField = (text: string, field: (typeof fields)[number]): Set<number> | string => {
  const values = new Set<number>()
  for (const part of text.split(",")) {
    const [range, stepText, extra] = part.split("/")
    if (extra !== undefined || range === undefined || range === "") return `the ${field.name} field "${text}" is malformed`
    const step = stepText === undefined ? 1 : integer.test(stepText) ? Number(stepText) : Number.NaN
    if (!(step >= 1)) return `the ${field.name} field "${text}" has a bad step`
    let low: number = field.min
    let high: number = field.max
    if (range !== "*") {
      const [from, to, more] = range.split("-")
      if (more !== undefined || from === undefined || !integer.test(from) || (to !== undefined && !integer.test(to))) {
        return `the ${field.name} field "${text}" is malformed`
      }
      low = Number(from)
      high = to === undefined ? (stepText === undefined ? low : field.max) : Number(to)
    }
    if (low < field.min || high > field.max || low > high) {
      return `the ${field.name} field "${text}" is outside ${field.min}-${field.max}`
    }
    for (let value = low; value <= high; value += step) values.add(value)
  }
  return values
}

/**
 * Parses a cron expression.
 *
 * @since 0.1.0
 */
export const parse = (expression: string): Cron | InvalidCron => {
  const parts = expression.trim().split(/\s+/)
  if (parts.length !== 5) return new InvalidCron({ expression, reason: `it has ${parts.length} fields, not 5` })
  const sets: Array<Set<number>> = []
  for (let i = 0; i < 5; i++) {
    const parsed = parseField(parts[i]!, fields[i]!)
    if (typeof parsed === "string") return new InvalidCron({ expression, reason: parsed })
    sets.push(parsed)
  }
  const weekdays = sets[4]!
  if (weekdays.has(7)) weekdays.add(0)
  return {
    expression,
    minutes: sets[0]!,
    hours: sets[1]!,
    days: sets[2]!,
    months: sets[3]!,
    weekdays,
    daysRestricted: parts[2] !== "*",
    weekdaysRestricted: parts[4] !== "*"
  }
}

const dayMatches = (cron: Cron, date: Date) => {
  const day = cron.days.has(date.getUTCDate())
  const weekday = cron.weekdays.has(date.getUTCDay())
  if (cron.daysRestricted && cron.weekdaysRestricted) return day || weekday
  return day && weekday
}

const minute = 60_000

/**
 * Whether the expression fires in the minute holding `millis` (epoch milliseconds, UTC).
 *
 * @since 0.1.0
 */
export const matches = (cron: Cron, millis: number): boolean => {
  const date = new Date(millis)
  return cron.months.has(date.getUTCMonth() + 1) && dayMatches(cron, date) && cron.hours.has(date.getUTCHours()) &&
    cron.minutes.has(date.getUTCMinutes())
}

/**
 * The start of the latest minute at or before `millis` in which the expression fires, looking back
 * at most `horizonDays` (default 400); undefined when it did not fire in that time.
 *
 * @since 0.1.0
 */
export const previous = (cron: Cron, millis: number, horizonDays = 400): number | undefined => {
  const limit = millis - horizonDays * 86_400_000
  let at = Math.floor(millis / minute) * minute
  while (at >= limit) {
    const date = new Date(at)
    if (!cron.months.has(date.getUTCMonth() + 1)) {
      // to the last minute of the month before
      at = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) - minute
    } else if (!dayMatches(cron, date)) {
      at = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()) - minute
    } else if (!cron.hours.has(date.getUTCHours())) {
      at = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate(), date.getUTCHours()) - minute
    } else if (!cron.minutes.has(date.getUTCMinutes())) {
      at -= minute
    } else {
      return at
    }
  }
  return undefined
}
