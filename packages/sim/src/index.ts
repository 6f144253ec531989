/**
 * `@strait/sim`: deterministic simulation. The kernel (a seeded scheduler, a virtual clock and the
 * `Sim.run` driver) runs a whole Strait system in one thread, replayable from a seed; `Scenario` runs
 * a whole cluster under seeded faults and a workload, and `Checker` holds its history to the rules.
 *
 * @since 0.1.0
 */
export * as AmbientGuard from "./adapters/AmbientGuard.ts"
export * as Sim from "./Sim.ts"
export * as SimClock from "./SimClock.ts"
export * as SimScheduler from "./SimScheduler.ts"
export * as SimTrace from "./SimTrace.ts"
export * as Checker from "./Checker.ts"
export * as Cluster from "./Cluster.ts"
export * as History from "./History.ts"
export * as Scenario from "./Scenario.ts"
export * as Workload from "./Workload.ts"
export * as Sweep from "./Sweep.ts"
