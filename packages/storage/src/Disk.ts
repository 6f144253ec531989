/**
 * The `Disk` service: the files under the storage engine.
 *
 * Everything the commit log and the queue indexes do to bytes at rest goes through this service, so
 * the same engine runs on real files (`layer`) and on a simulated disk whose fault model loses or
 * tears unsynced writes on a crash, fails syncs, fills up and fails reads (`SimDisk`). Every fault
 * surfaces as a typed error.
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Layer, type Scope } from "effect"

/**
 * The disk has no room for the write (`ENOSPC`).
 *
 * @since 0.1.0
 */
export class DiskFull extends Data.TaggedError("DiskFull")<{ readonly path: string }> {
  override get message() {
    return `disk full writing ${this.path}`
  }
}

/**
 * The file or directory does not exist (`ENOENT`).
 *
 * @since 0.1.0
 */
export class FileNotFound extends Data.TaggedError("FileNotFound")<{ readonly path: string }> {
  override get message() {
    return `no such file: ${this.path}`
  }
}

/**
 * Any other failure of a disk operation: `operation` names it (`open`, `write`, `read`, `sync`,
 * `truncate`, `remove`, `list`, …) and `code` is the system's error code where there is one.
 *
 * @since 0.1.0
 */
export class DiskIOError extends Data.TaggedError("DiskIOError")<{
  readonly path: string
  readonly operation: string
  readonly code: string
  readonly reason: string
}> {
  override get message() {
    return `${this.operation} ${this.path} failed: ${this.code} ${this.reason}`
  }
}

/**
 * What a disk operation can fail with.
 *
 * @since 0.1.0
 */
export type DiskError = DiskFull | FileNotFound | DiskIOError

/**
 * An open file. Writes are positional; nothing written is durable until `datasync` succeeds.
 *
 * @since 0.1.0
 */
export interface DiskFile {
  readonly path: string
  /** The file's current size in bytes, synced or not. */
  readonly size: Effect.Effect<number, DiskError>
  /**
   * Writes the chunks one after another starting at `position` (a vectored write). The chunks are
   * not kept: the caller may reuse them once the write has completed (failed or not).
   */
  readonly write: (position: number, chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, DiskError>
  /** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
  readonly read: (position: number, length: number) => Effect.Effect<Uint8Array, DiskError>
  /** Makes every write so far durable (`fdatasync`). */
  readonly datasync: Effect.Effect<void, DiskError>
  /** Cuts the file to `size` bytes (durable after the next `datasync`). */
  readonly truncate: (size: number) => Effect.Effect<void, DiskError>
}

/**
 * The disk.
 *
 * **Gotchas**
 *
 * A file created by `open({ create: true })` survives a crash only after `syncDirectory` of its
 * directory, as on a real file system; so does a `remove` or a `rename`.
 *
 * @since 0.1.0
 */
export class Disk extends Context.Service<Disk, {
  /** Opens (or with `create`, creates) a file for reading and writing; closed with the scope. */
  readonly open: (path: string, options: { readonly create: boolean }) => Effect.Effect<DiskFile, DiskError, Scope.Scope>
  /** Names (not paths) of the entries of a directory, sorted. */
  readonly list: (directory: string) => Effect.Effect<ReadonlyArray<string>, DiskError>
  /** Creates a directory and its parents; no-op if it exists. */
  readonly makeDirectory: (directory: string) => Effect.Effect<void, DiskError>
  /** Deletes a file. */
  readonly remove: (path: string) => Effect.Effect<void, DiskError>
  /** Renames a file, replacing `to` if it exists (atomic on a real file system). */
  readonly rename: (from: string, to: string) => Effect.Effect<void, DiskError>
  /** Makes creations, removals and renames in `directory` durable. */
  readonly syncDirectory: (directory: string) => Effect.Effect<void, DiskError>
}>()("@strait/storage/Disk") {}

/**
 * Creates `directory` (and its parents) durably: each level is synced into its parent, so the
 * directory cannot vanish in a crash together with everything later written into it.
 *
 * @since 0.1.0
 */
export const makeDurableDirectory = (directory: string): Effect.Effect<void, DiskError, Disk> =>
  Effect.gen(function*() {
    const disk = yield* Disk
    yield* disk.makeDirectory(directory)
    const absolute = directory.startsWith("/")
    const parts = directory.split("/").filter((part) => part.length > 0)
    let path = absolute ? "/" : "."
    yield* disk.syncDirectory(path)
    for (const part of parts) {
      path = path === "/" ? `/${part}` : `${path}/${part}`
      yield* disk.syncDirectory(path)
    }
  })

/**
 * Counts of what went through a disk.
 *
 * @since 0.1.0
 */
export interface Counters {
  datasyncs: number
  bytesWritten: number
}

/**
 * Wraps the `Disk` below it, counting `datasync` calls and bytes written into `counters`: for
 * benchmarks (records per fdatasync) and tests (group commit).
 *
 * @since 0.1.0
 */
export const layerCounting = (counters: Counters): Layer.Layer<Disk, never, Disk> =>
  Layer.effect(Disk, Effect.gen(function*() {
    const disk = yield* Disk
    return Disk.of({
      ...disk,
      open: (path, options) =>
        Effect.map(disk.open(path, options), (file) => ({
          ...file,
          write: (position, chunks) =>
            Effect.tap(file.write(position, chunks), () =>
              Effect.sync(() => {
                for (const chunk of chunks) counters.bytesWritten += chunk.length
              })),
          datasync: Effect.tap(file.datasync, () => Effect.sync(() => void counters.datasyncs++))
        }))
    })
  }))

/**
 * Writes a non-negative safe integer as a little-endian u64 without allocating a BigInt.
 *
 * @since 0.1.0
 */
export const setUint64 = (view: DataView, at: number, value: number) => {
  view.setUint32(at, value >>> 0, true)
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true)
}

/**
 * Reads a little-endian u64 written by {@link setUint64}.
 *
 * @since 0.1.0
 */
export const getUint64 = (view: DataView, at: number) =>
  view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000

/**
 * Replaces the file at `path` with `bytes` atomically and durably: a temporary file is written and
 * synced, renamed over `path`, and the directory synced. A crash leaves the old or the new file.
 *
 * @since 0.1.0
 */
export const writeFileAtomically = (path: string, bytes: Uint8Array): Effect.Effect<void, DiskError, Disk> =>
  Effect.scoped(Effect.gen(function*() {
    const disk = yield* Disk
    const temporary = `${path}.tmp`
    const file = yield* disk.open(temporary, { create: true })
    yield* file.truncate(0)
    yield* file.write(0, [bytes])
    yield* file.datasync
    yield* disk.rename(temporary, path)
    yield* disk.syncDirectory(path.slice(0, Math.max(1, path.lastIndexOf("/"))))
  }))

/**
 * The whole content of a small file, or `undefined` when it does not exist.
 *
 * @since 0.1.0
 */
export const readSmallFile = (path: string): Effect.Effect<Uint8Array | undefined, DiskError, Disk> =>
  Effect.scoped(Effect.gen(function*() {
    const disk = yield* Disk
    const file = yield* disk.open(path, { create: false })
    return yield* file.read(0, yield* file.size)
  })).pipe(Effect.catchTag("FileNotFound", () => Effect.succeed(undefined)))
