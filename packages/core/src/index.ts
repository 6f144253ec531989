/**
 * `@strait/core`: the domain model, typed errors, limits and the actor kit that every other Strait
 * package builds on.
 *
 * @since 0.1.0
 */
export * as Actor from "./Actor.ts"
export * as ActorRegistry from "./ActorRegistry.ts"
