/**
 * Strait's control plane.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as MetadataStore from "./MetadataStore.ts"

/** @since 0.1.0 */
export * as EmbeddedStore from "./EmbeddedStore.ts"

/** @since 0.1.0 */
export * as EtcdStore from "./adapters/EtcdStore.ts"

/** @since 0.1.0 */
export * as Catalog from "./Catalog.ts"

/** @since 0.1.0 */
export * as PartitionLeases from "./PartitionLeases.ts"

/** @since 0.1.0 */
export * as Reconciler from "./Reconciler.ts"

/** @since 0.1.0 */
export * as NodeRegistration from "./NodeRegistration.ts"

/** @since 0.1.0 */
export * as EtcdProcess from "./adapters/EtcdProcess.ts"

/** @since 0.1.0 */
export * as Cron from "./Cron.ts"

/** @since 0.1.0 */
export * as Elasticity from "./Elasticity.ts"

/** @since 0.1.0 */
export * as Leadership from "./Leadership.ts"

/** @since 0.1.0 */
export * as Orchestrator from "./Orchestrator.ts"

/** @since 0.1.0 */
export * as ElasticityController from "./ElasticityController.ts"

/** @since 0.1.0 */
export * as LoadReports from "./LoadReports.ts"

/** @since 0.1.0 */
export * as Placement from "./Placement.ts"

/** @since 0.1.0 */
export * as KubernetesOrchestrator from "./adapters/KubernetesOrchestrator.ts"
