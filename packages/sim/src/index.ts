/**
 * `@strait/sim`: the deterministic simulation kernel. A seeded scheduler, a virtual clock and the
 * `Sim.run` driver run a whole Strait system in one thread, replayable from a seed.
 *
 * @since 0.1.0
 */
export * as AmbientGuard from "./adapters/AmbientGuard.ts"
export * as Sim from "./Sim.ts"
export * as SimClock from "./SimClock.ts"
export * as SimScheduler from "./SimScheduler.ts"
export * as SimTrace from "./SimTrace.ts"
