/**
 * Runs of many seeds, and how they read: one line per seed, and for a seed that breaks a rule its
 * violations with the command that replays it (`strait sim --seed N`).
 *
 * @since 0.1.0
 */
import * as Checker from "./Checker.ts"
import * as History from "./History.ts"
import type * as Scenario from "./Scenario.ts"

/**
 * A range of seeds: `7`, or `1..50`.
 *
 * @since 0.1.0
 */
export const parseSeeds = (text: string): ReadonlyArray<number> | undefined => {
  const range = /^(\d+)(?:\.\.(\d+))?$/.exec(text.trim())
  if (range === null) return undefined
  const from = Number(range[1])
  const to = range[2] === undefined ? from : Number(range[2])
  if (to < from || to - from > 1_000_000) return undefined
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

/**
 * The command that replays one seed of a sweep with the same settings.
 *
 * @since 0.1.0
 */
export const replayCommand = (
  seed: number,
  settings: { readonly minutes: number; readonly rate: number; readonly faults: boolean; readonly clockFaults?: boolean }
) =>
  `strait sim --seed ${seed} --minutes ${settings.minutes} --rate ${settings.rate}${settings.faults ? "" : " --no-faults"}${
    settings.clockFaults === true ? " --clock-faults" : ""
  }`

/**
 * One seed's result in one line.
 *
 * @since 0.1.0
 */
export const summaryLine = (outcome: Scenario.Outcome, realMillis: number) => {
  const verdict = outcome.failure !== undefined ? "FAILED" : outcome.violations.length > 0 ? `${outcome.violations.length} violations` : "ok"
  const { deliveries, faults, redeliveries, sends } = outcome.summary
  return `seed ${outcome.seed}: ${verdict}, trace ${outcome.traceHash}, ${sends} sends, ${deliveries} deliveries (${redeliveries} again), ${faults} fault events, ` +
    `${(outcome.virtualMillis / 1000).toFixed(0)} s simulated in ${(realMillis / 1000).toFixed(1)} s`
}

/**
 * What a failing seed shows: the run's failure, its first violations with their excerpts, and the
 * command that replays it.
 *
 * @since 0.1.0
 */
export const failureReport = (outcome: Scenario.Outcome, replay: string, most = 5): string => [
  ...(outcome.failure === undefined ? [] : [`the run failed: ${outcome.failure}`]),
  ...outcome.violations.slice(0, most).map((violation) => Checker.format(violation, outcome.history.origin)),
  ...(outcome.violations.length > most ? [`... and ${outcome.violations.length - most} more`] : []),
  `replay: ${replay}`
].join("\n")

/**
 * A seed's whole history, one event a line, in time order.
 *
 * @since 0.1.0
 */
export const historyReport = (outcome: Scenario.Outcome): string =>
  [...outcome.history.events].sort((a, b) => a.at - b.at).map((event) => History.format(event, outcome.history.origin)).join("\n")
