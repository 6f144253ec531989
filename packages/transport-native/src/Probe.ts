/**
 * What native transports this process can use, and why not: shared memory (the addon loaded) and
 * RDMA verbs (the addon was built with the libibverbs headers, libibverbs loads, and a device
 * answers).
 *
 * @since 0.1.0
 */
import * as Addon from "./adapters/Addon.ts"

/**
 * A transport's availability.
 *
 * @since 0.1.0
 */
export type Availability =
  | { readonly available: true }
  | { readonly available: false; readonly reason: string; readonly devices?: ReadonlyArray<string> }

/**
 * Probes shared memory and RDMA verbs.
 *
 * @since 0.1.0
 */
export const probe = (): { readonly shm: Availability; readonly verbs: Availability } => {
  const loaded = Addon.addon()
  if (typeof loaded === "string") {
    return { shm: { available: false, reason: loaded }, verbs: { available: false, reason: `the native addon is not available: ${loaded}` } }
  }
  const verbs = loaded.probeVerbs()
  return {
    shm: { available: true },
    verbs: verbs.available
      ? { available: true }
      : { available: false, reason: verbs.reason ?? "unavailable", ...(verbs.devices === undefined ? {} : { devices: verbs.devices }) }
  }
}
