/**
 * `@strait/storage`: Strait's storage engine over the `Disk` service, with a real disk and a
 * simulated one that loses or tears unsynced writes on a crash.
 *
 * @since 0.1.0
 */
export * as Disk from "./Disk.ts"
export * as RealDisk from "./RealDisk.ts"
export * as SimDisk from "./SimDisk.ts"
export * as Crc32c from "./Crc32c.ts"
export * as CommitLog from "./CommitLog.ts"
export * as QueueIndex from "./QueueIndex.ts"
export * as Store from "./Store.ts"
