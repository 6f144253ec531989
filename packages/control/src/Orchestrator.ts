/**
 * What carries out the elasticity controller's decisions: it knows the nodes it runs of each role,
 * starts new ones, and stops chosen ones (a stop is an interruption: the node drains within its
 * deadline, sending GOAWAY, and exits). Its Layers run local processes (`strait cluster up
 * --autoscale`), nodes of the simulator, or Kubernetes workloads.
 *
 * @since 0.1.0
 */
import { Context, Data, type Effect } from "effect"
import type { Role } from "./Elasticity.ts"

/**
 * The orchestrator could not start or stop a node.
 *
 * @since 0.1.0
 */
export class OrchestratorFailed extends Data.TaggedError("OrchestratorFailed")<{ readonly reason: string }> {
  override get message() {
    return `the orchestrator failed: ${this.reason}`
  }
}

/**
 * Starts and stops the nodes of each role.
 *
 * @since 0.1.0
 */
export class Orchestrator extends Context.Service<Orchestrator, {
  /** What it runs nodes on, for messages. */
  readonly describe: string
  /** The ids of the role's nodes it runs now (started and not stopped), as the nodes report themselves. */
  readonly nodes: (role: Role) => Effect.Effect<ReadonlyArray<string>, OrchestratorFailed>
  /** Starts `count` nodes of the role; their ids, once each serves. */
  readonly scaleOut: (role: Role, count: number) => Effect.Effect<ReadonlyArray<string>, OrchestratorFailed>
  /** Stops these nodes of the role, each draining within its deadline; done when they have exited. */
  readonly scaleIn: (role: Role, ids: ReadonlyArray<string>) => Effect.Effect<void, OrchestratorFailed>
}>()("@strait/control/Orchestrator") {}
