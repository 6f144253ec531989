/**
 * `@strait/transport-native`: Transport Layers over native code. `ShmTransport` links processes of
 * one host through shared-memory rings (the C++ addon of `native/shm`); `VerbsTransport` links hosts
 * through RDMA where a device exists; where either is not available it says why, and TCP serves
 * instead.
 *
 * @since 0.1.0
 */
export * as ShmTransport from "./ShmTransport.ts"
export * as VerbsTransport from "./VerbsTransport.ts"
export * as NativeTransport from "./NativeTransport.ts"

/** @since 0.1.0 */
export { hostId } from "./adapters/HostId.ts"

/** @since 0.1.0 */
export * as Probe from "./Probe.ts"
