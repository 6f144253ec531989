/**
 * `node:fs` file descriptors as Effects: the real `Disk`'s only contact with Node's file system.
 *
 * The callback API rather than `fs/promises`: one callback per system call and no promise or
 * `FileHandle` allocation on the write and sync paths. Every failure is mapped to the `Disk`
 * service's typed errors here, so nothing above this file sees an errno.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import { DiskFull, DiskIOError, FileNotFound, type DiskError } from "../Disk.ts"

/**
 * Maps a Node error to the `Disk` error it means: `ENOSPC` and `EDQUOT` are `DiskFull`, `ENOENT` is
 * `FileNotFound`, anything else a `DiskIOError` carrying the code.
 *
 * @since 0.1.0
 */
export const diskError = (error: NodeJS.ErrnoException, path: string, operation: string): DiskError => {
  switch (error.code) {
    case "ENOSPC":
    case "EDQUOT":
      return new DiskFull({ path })
    case "ENOENT":
      return new FileNotFound({ path })
    default:
      return new DiskIOError({ path, operation, code: error.code ?? "UNKNOWN", reason: error.message })
  }
}

// One system call as an Effect: `call` receives the Node callback to pass on.
const syscall = <A>(
  path: string,
  operation: string,
  call: (done: (error: NodeJS.ErrnoException | null, result: A) => void) => void
): Effect.Effect<A, DiskError> =>
  Effect.callback<A, DiskError>((resume) => {
    call((error, result) => resume(error === null ? Effect.succeed(result) : Effect.fail(diskError(error, path, operation))))
  })

const openFlags = fs.constants.O_RDWR
// O_CREAT without O_TRUNC: creating must never cut an existing file (a restart reopens its log).
const createFlags = fs.constants.O_RDWR | fs.constants.O_CREAT
const directoryFlags = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY

/**
 * Opens a file for reading and writing; with `create`, creates it if missing (mode 0644) and never
 * truncates it.
 *
 * @since 0.1.0
 */
export const open = (path: string, create: boolean): Effect.Effect<number, DiskError> =>
  syscall(path, "open", (done) => fs.open(path, create ? createFlags : openFlags, 0o644, done))

/**
 * Closes a file descriptor; a failure to close is ignored, since every byte that matters was either
 * synced before or is not promised to anyone.
 *
 * @since 0.1.0
 */
export const close = (fd: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    fs.close(fd, () => resume(Effect.void))
  })

/**
 * The file's size in bytes.
 *
 * @since 0.1.0
 */
export const size = (fd: number, path: string): Effect.Effect<number, DiskError> =>
  syscall<fs.Stats>(path, "stat", (done) => fs.fstat(fd, done)).pipe(Effect.map((stats) => stats.size))

/**
 * Writes `chunks` back to back at `position` with positional vectored writes (`pwritev`), looping
 * until every byte is written.
 *
 * @since 0.1.0
 */
export const write = (
  fd: number,
  path: string,
  position: number,
  chunks: ReadonlyArray<Uint8Array>
): Effect.Effect<void, DiskError> => {
  let total = 0
  for (const chunk of chunks) total += chunk.length
  return total <= syncIoBytes ? Effect.suspend(() => writeNow(fd, path, position, chunks)) : writeInPool(fd, path, position, chunks)
}

// Up to this many bytes, a write or read runs on the event loop (`pwritev`/`pread` into the page
// cache take microseconds; a round trip through libuv's thread pool costs tens of them); larger ones
// go to the pool, where they overlap with the work of the next batch (at 256 KiB the store's 256-appender
// async throughput fell from ~167 k to ~139 k msgs/s).
const syncIoBytes = 64 * 1024

const writeNow = (fd: number, path: string, position: number, chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, DiskError> => {
  let pending = chunks.filter((chunk) => chunk.length > 0)
  let at = position
  try {
    while (pending.length > 0) {
      const written = fs.writevSync(fd, pending, at)
      if (written === 0) return Effect.fail(new DiskIOError({ path, operation: "write", code: "EIO", reason: "wrote no bytes" }))
      at += written
      pending = skipBytes(pending, written)
    }
    return Effect.void
  } catch (error) {
    return Effect.fail(diskError(error as NodeJS.ErrnoException, path, "write"))
  }
}

const writeInPool = (
  fd: number,
  path: string,
  position: number,
  chunks: ReadonlyArray<Uint8Array>
): Effect.Effect<void, DiskError> =>
  Effect.callback<void, DiskError>((resume) => {
    let pending = chunks.filter((chunk) => chunk.length > 0)
    let at = position
    const next = () => {
      if (pending.length === 0) return resume(Effect.void)
      fs.writev(fd, pending, at, (error, written) => {
        if (error !== null) return resume(Effect.fail(diskError(error, path, "write")))
        if (written === 0) {
          return resume(Effect.fail(new DiskIOError({ path, operation: "write", code: "EIO", reason: "wrote no bytes" })))
        }
        at += written
        pending = skipBytes(pending, written)
        next()
      })
    }
    next()
  })

// The chunks left after the first `count` bytes: a short write resumes where it stopped.
const skipBytes = (chunks: ReadonlyArray<Uint8Array>, count: number): Array<Uint8Array> => {
  let skip = count
  let index = 0
  while (index < chunks.length && skip >= chunks[index]!.length) skip -= chunks[index++]!.length
  const rest = chunks.slice(index)
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip)
  return rest
}

/**
 * Reads up to `length` bytes at `position` into a fresh buffer, looping over short reads; fewer
 * bytes come back only at the end of the file.
 *
 * @since 0.1.0
 */
export const read = (fd: number, path: string, position: number, length: number): Effect.Effect<Uint8Array, DiskError> =>
  length <= syncIoBytes ? Effect.suspend(() => readNow(fd, path, position, length)) : readInPool(fd, path, position, length)

const readNow = (fd: number, path: string, position: number, length: number): Effect.Effect<Uint8Array, DiskError> => {
  const buffer = Buffer.allocUnsafe(length)
  let filled = 0
  try {
    while (filled < length) {
      const count = fs.readSync(fd, buffer, filled, length - filled, position + filled)
      if (count === 0) break
      filled += count
    }
    return Effect.succeed(new Uint8Array(buffer.buffer, buffer.byteOffset, filled))
  } catch (error) {
    return Effect.fail(diskError(error as NodeJS.ErrnoException, path, "read"))
  }
}

const readInPool = (fd: number, path: string, position: number, length: number): Effect.Effect<Uint8Array, DiskError> =>
  Effect.callback<Uint8Array, DiskError>((resume) => {
    const buffer = Buffer.allocUnsafe(length)
    let filled = 0
    // A plain Uint8Array view, so both Disk Layers hand out the same type.
    const finish = () => resume(Effect.succeed(new Uint8Array(buffer.buffer, buffer.byteOffset, filled)))
    const next = () => {
      if (filled === length) return finish()
      fs.read(fd, buffer, filled, length - filled, position + filled, (error, count) => {
        if (error !== null) return resume(Effect.fail(diskError(error, path, "read")))
        if (count === 0) return finish()
        filled += count
        next()
      })
    }
    next()
  })

/**
 * Makes the file's data durable (`fdatasync`).
 *
 * @since 0.1.0
 */
export const datasync = (fd: number, path: string): Effect.Effect<void, DiskError> =>
  syscall<void>(path, "sync", (done) => fs.fdatasync(fd, (error) => done(error, undefined)))

/**
 * Sets the file's size (`ftruncate`), cutting or zero-extending it.
 *
 * @since 0.1.0
 */
export const truncate = (fd: number, path: string, length: number): Effect.Effect<void, DiskError> =>
  syscall<void>(path, "truncate", (done) => fs.ftruncate(fd, length, (error) => done(error, undefined)))

/**
 * The names of a directory's entries, sorted by UTF-16 code units (JavaScript's default order).
 *
 * @since 0.1.0
 */
export const list = (directory: string): Effect.Effect<ReadonlyArray<string>, DiskError> =>
  syscall<Array<string>>(directory, "list", (done) => fs.readdir(directory, done)).pipe(Effect.map((names) => names.sort()))

/**
 * Creates a directory and any missing parents.
 *
 * @since 0.1.0
 */
export const makeDirectory = (directory: string): Effect.Effect<void, DiskError> =>
  syscall<void>(directory, "mkdir", (done) => fs.mkdir(directory, { recursive: true }, (error) => done(error, undefined)))

/**
 * Deletes a file (`unlink`).
 *
 * @since 0.1.0
 */
export const remove = (path: string): Effect.Effect<void, DiskError> =>
  syscall<void>(path, "remove", (done) => fs.unlink(path, (error) => done(error, undefined)))

/**
 * Renames a file, atomically replacing `to`.
 *
 * @since 0.1.0
 */
export const rename = (from: string, to: string): Effect.Effect<void, DiskError> =>
  syscall<void>(from, "rename", (done) => fs.rename(from, to, (error) => done(error, undefined)))

/**
 * Makes the directory's entries durable: opens the directory read-only and `fsync`s it.
 *
 * @since 0.1.0
 */
export const syncDirectory = (directory: string): Effect.Effect<void, DiskError> =>
  Effect.acquireUseRelease(
    syscall<number>(directory, "open", (done) => fs.open(directory, directoryFlags, done)),
    (fd) => syscall<void>(directory, "sync", (done) => fs.fsync(fd, (error) => done(error, undefined))),
    close
  )
