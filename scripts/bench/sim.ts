// Simulation bench: a whole simulated cluster (3 brokers, 3 proxies, 9 clients: 4 producers, 3
// consumers, a dead-letter reader, a pull consumer) at 1,000 messages per simulated second with faults from the seed,
// on one core, traffic only (no drain); how many simulated seconds pass per real second, and whether
// every seed run twice gives the same trace hash. Prints the ratio `sim_speed_vs_real_time`
// (simulated ÷ real time).
import { Scenario } from "@strait/sim"
import { emit, table } from "./lib/report.ts"

const SEEDS = Number(process.env.STRAIT_BENCH_SEEDS ?? 3)
const RATE = Number(process.env.STRAIT_BENCH_RATE ?? 1000)
const SECONDS = Number(process.env.STRAIT_BENCH_SIM_SECONDS ?? 30)

const settings = (seed: number): Scenario.ScenarioOptions => ({
  seed,
  duration: `${SECONDS} seconds`,
  drain: "0 seconds",
  rate: RATE,
  brokers: 3,
  proxies: 3,
  producers: 4,
  consumers: 3
})

const rows: Array<Record<string, number | string>> = []
let simulated = 0
let real = 0
let sameHash = 0
let sends = 0
for (let seed = 1; seed <= SEEDS; seed++) {
  const began = performance.now()
  const outcome = Scenario.run(settings(seed))
  const took = performance.now() - began
  const again = Scenario.run(settings(seed))
  if (again.traceHash === outcome.traceHash) sameHash++
  simulated += outcome.virtualMillis
  real += took
  sends += outcome.summary.sends
  rows.push({
    seed,
    "simulated s": outcome.virtualMillis / 1000,
    "real s": took / 1000,
    "× real time": outcome.virtualMillis / took,
    sends: outcome.summary.sends,
    // faults can hold the producers back (at most 64 sends out each): what the run really carried
    "sends per simulated s": outcome.summary.sends / (outcome.virtualMillis / 1000),
    deliveries: outcome.summary.deliveries,
    faults: outcome.summary.faults,
    "same hash twice": again.traceHash === outcome.traceHash ? "yes" : "NO"
  })
}
table(`Simulated cluster, ${RATE} msgs per simulated s, ${SECONDS} s of traffic and faults, per seed`, rows)
emit("sim", { sim_speed_vs_real_time: simulated / real }, {
  seeds: SEEDS,
  rate: RATE,
  simulated_seconds: simulated / 1000,
  real_seconds: real / 1000,
  sends_per_simulated_second: sends / (simulated / 1000),
  sends_per_real_second: sends / (real / 1000),
  same_hash_twice: `${sameHash}/${SEEDS}`
})
