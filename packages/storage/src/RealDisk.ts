/**
 * The real `Disk`: files on the machine's file system through `node:fs` file descriptors, with
 * positional vectored writes, `fdatasync`, and directory syncs by `fsync` of the directory.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { Disk, DiskIOError, type DiskError, type DiskFile } from "./Disk.ts"
import * as NodeDisk from "./adapters/NodeDisk.ts"

// A descriptor number is reused by the next open once closed, so a closed file must never reach it.
const closedError = (path: string, operation: string) =>
  Effect.fail(new DiskIOError({ path, operation, code: "EBADF", reason: "the file is closed" }))

const fileOf = (path: string, fd: number, isOpen: () => boolean): DiskFile => {
  const guard = <A>(operation: string, effect: Effect.Effect<A, DiskError>): Effect.Effect<A, DiskError> =>
    Effect.suspend(() => isOpen() ? effect : closedError(path, operation))
  return {
    path,
    size: guard("stat", NodeDisk.size(fd, path)),
    write: (position, chunks) => guard("write", NodeDisk.write(fd, path, position, chunks)),
    read: (position, length) => guard("read", NodeDisk.read(fd, path, position, length)),
    datasync: guard("sync", NodeDisk.datasync(fd, path)),
    truncate: (size) => guard("truncate", NodeDisk.truncate(fd, path, size))
  }
}

/**
 * The real `Disk` service; `layer` provides it.
 *
 * @since 0.1.0
 */
export const make = Disk.of({
  open: (path, options) =>
    Effect.acquireRelease(
      Effect.map(NodeDisk.open(path, options.create), (fd) => ({ fd, open: true })),
      (handle) =>
        Effect.suspend(() => {
          handle.open = false
          return NodeDisk.close(handle.fd)
        })
    ).pipe(Effect.map((handle) => fileOf(path, handle.fd, () => handle.open))),
  list: NodeDisk.list,
  makeDirectory: NodeDisk.makeDirectory,
  remove: NodeDisk.remove,
  rename: NodeDisk.rename,
  syncDirectory: NodeDisk.syncDirectory
})

/**
 * The `Disk` on the machine's file system.
 *
 * **Gotchas**
 *
 * Paths are used as given: relative paths resolve against the process's working directory.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Disk> = Layer.succeed(Disk, make)
