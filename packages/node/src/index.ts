/**
 * `@strait/node`: Strait roles assembled into runnable Layers from configuration.
 *
 * @since 0.1.0
 */
export * as Node from "./Node.ts"
export * as Strait from "./Strait.ts"
