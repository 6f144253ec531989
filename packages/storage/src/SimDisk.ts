/**
 * The simulated `Disk`: files in memory with a crash model, for tests and the simulator.
 *
 * Each file keeps its durable bytes (as of its last successful `datasync`) and the writes and
 * truncates made since, in order. Each directory keeps its durable entries (as of its last
 * `syncDirectory`); the directory operations made since (create, remove, rename, make directory)
 * form one sequence across the disk, like a file system's metadata journal. A `crash` keeps what a
 * real file system is bound to keep, plus a random part of the rest:
 *
 * - every open handle goes stale: later calls fail with `DiskIOError` code `ESTALE`, and closing
 *   it is harmless;
 * - a random prefix of the unsynced directory operations survives (a rename is one operation), the
 *   rest are undone; a directory whose own entry did not survive vanishes with everything in it;
 * - for each file a random prefix of its unsynced changes survives (none, some or all, uniformly),
 *   and the last surviving change, if a write, is torn with probability `tearProbability`: only a
 *   random proper prefix of its bytes reaches the disk.
 *
 * This is the ordered model that crash-consistency tools such as ALICE and LazyFS explore: a file
 * system that writes each file's dirty data in order and journals metadata in order. Every choice comes from `Random` at the moment of the
 * crash, so the same seed gives the same disk after the crash. Afterwards the disk is usable again,
 * as after a reboot.
 *
 * Other faults: `failNextSync` (the sync fails with `EIO` and, as on Linux after a failed fsync,
 * that file's unsynced changes are lost), `setCapacity` (`DiskFull` with no partial effect) and
 * `failReads` (`EIO` with a probability). Syncs, directory syncs and crashes are recorded in the
 * `Trace`.
 *
 * @since 0.1.0
 */
import { Trace } from "@strait/core"
import { Context, Duration, Effect, Layer, Random } from "effect"
import * as Path from "node:path"
import { Disk, DiskFull, DiskIOError, FileNotFound, type DiskError, type DiskFile } from "./Disk.ts"

/**
 * How the simulated disk behaves.
 *
 * @since 0.1.0
 */
export interface Options {
  /** How long each `datasync` sleeps on `Clock` before it completes; default 0 (no sleep). */
  readonly syncLatency?: Duration.Input
  /** Probability that a crash tears the last surviving unsynced write of a file; default 0.5. */
  readonly tearProbability?: number
  /** Total bytes the disk holds; default unlimited. */
  readonly capacity?: number
}

/**
 * What the disk has done so far.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly writes: number
  readonly bytesWritten: number
  readonly reads: number
  readonly bytesRead: number
  readonly syncs: number
  readonly failedSyncs: number
  readonly directorySyncs: number
  readonly crashes: number
}

/**
 * Fault controls of the simulated disk.
 *
 * **Details**
 *
 * Every random choice (what a crash keeps, which reads fail) is drawn from the `Random` of the
 * fiber that makes the call, so the simulator's seed decides it.
 *
 * **Gotchas**
 *
 * Path prefixes are matched against normalized paths (`/data//log/` is `/data/log`).
 *
 * @since 0.1.0
 */
export class SimDisk extends Context.Service<SimDisk, {
  /**
   * The process dies and the machine restarts: open handles go stale and every file and directory
   * keeps its durable state plus a random prefix of its unsynced changes (see the module's doc).
   */
  readonly crash: Effect.Effect<void>
  /**
   * The next `datasync` of a file whose path starts with `pathPrefix` (any file if omitted) fails
   * with `EIO`, and that file's unsynced changes are lost.
   *
   * **Gotchas**
   *
   * Reads after the failure see the durable bytes, and a later sync succeeds; Linux may instead go
   * on showing the lost bytes from its page cache. Either way they are gone after a crash, so an
   * engine must treat a failed sync as the loss of everything it had not synced.
   */
  readonly failNextSync: (pathPrefix?: string) => Effect.Effect<void>
  /** Limits the total bytes of all files; `undefined` removes the limit. */
  readonly setCapacity: (bytes: number | undefined) => Effect.Effect<void>
  /** Reads of files whose path starts with `pathPrefix` fail with `EIO` with this probability; 0 stops it. */
  readonly failReads: (pathPrefix: string, probability: number) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}>()("@strait/storage/SimDisk") {}

/**
 * A fresh simulated disk, empty but for the roots `/` and `.`; one per simulated machine.
 *
 * **Gotchas**
 *
 * A directory made by `makeDirectory` is an entry of its parent like any other: it survives a crash
 * only once its parent was synced, as on a real file system.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Disk | SimDisk> =>
  Layer.effectContext(Effect.map(make(options), ({ disk, control }) => Context.make(Disk, disk).pipe(Context.add(SimDisk, control))))

/** A file's bytes: a growable buffer whose first `size` bytes are the content. */
class Content {
  bytes: Uint8Array
  size: number
  constructor(bytes: Uint8Array, size: number) {
    this.bytes = bytes
    this.size = size
  }
  static empty() {
    return new Content(new Uint8Array(0), 0)
  }
  clone() {
    return new Content(this.bytes.slice(0, this.size), this.size)
  }
  private reserve(capacity: number) {
    if (capacity <= this.bytes.length) return
    const grown = new Uint8Array(Math.max(capacity, this.bytes.length * 2, 256))
    grown.set(this.bytes.subarray(0, this.size))
    this.bytes = grown
  }
  write(position: number, data: Uint8Array) {
    const end = position + data.length
    this.reserve(end)
    // bytes past `size` may be left from before a truncate: a gap must read as zeros
    if (position > this.size) this.bytes.fill(0, this.size, position)
    this.bytes.set(data, position)
    if (end > this.size) this.size = end
  }
  truncate(size: number) {
    if (size > this.size) {
      this.reserve(size)
      this.bytes.fill(0, this.size, size)
    }
    this.size = size
  }
  read(position: number, length: number) {
    const end = Math.min(this.size, position + length)
    return position >= end ? new Uint8Array(0) : this.bytes.slice(position, end)
  }
  apply(change: Change) {
    if (change._tag === "write") this.write(change.position, change.bytes)
    else this.truncate(change.size)
  }
}

/** An unsynced change to a file; `seq` orders changes across the disk. */
type Change =
  | { readonly _tag: "write"; readonly seq: number; readonly position: number; readonly bytes: Uint8Array }
  | { readonly _tag: "truncate"; readonly seq: number; readonly size: number }

/** A file, independent of its names: a removed file lives on while a handle holds it. */
interface Inode {
  durable: Content
  current: Content
  pending: Array<Change>
}

type Entry = { readonly kind: "file"; readonly inode: Inode } | { readonly kind: "directory" }

interface Directory {
  entries: Map<string, Entry>
  durable: Map<string, Entry>
}

/** One entry of a directory set (or removed, when `entry` is undefined). */
interface EntryChange {
  readonly directory: string
  readonly name: string
  readonly entry: Entry | undefined
}

interface Handle {
  /** The normalized path, which fault prefixes match. */
  readonly path: string
  readonly givenPath: string
  readonly inode: Inode
  readonly epoch: number
  closed: boolean
}

const roots = ["/", "."]

const normalize = (path: string) => {
  const normal = Path.posix.normalize(path)
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal
}

const ioError = (path: string, operation: string, code: string, reason: string): Effect.Effect<never, DiskError> =>
  Effect.fail(new DiskIOError({ path, operation, code, reason }))

const notFound = (path: string): Effect.Effect<never, DiskError> => Effect.fail(new FileNotFound({ path }))

const concat = (chunks: ReadonlyArray<Uint8Array>, length: number) => {
  if (chunks.length === 1) return chunks[0]!.slice()
  const bytes = new Uint8Array(length)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return bytes
}

const newDirectory = (): Directory => ({ entries: new Map(), durable: new Map() })

const make = (options: Options) =>
  Effect.gen(function*() {
    const trace = yield* Trace.Trace
    const syncLatency = Duration.fromInputUnsafe(options.syncLatency ?? 0)
    const tearProbability = options.tearProbability ?? 0.5
    let capacity = options.capacity
    let directories = new Map<string, Directory>(roots.map((root) => [root, newDirectory()]))
    const openHandles = new Set<Handle>()
    let epoch = 0
    let seq = 0
    // Unsynced directory operations in the order they were made, like a metadata journal; a rename
    // is one operation of two changes.
    let journal: Array<ReadonlyArray<EntryChange>> = []
    const syncFailures: Array<string | undefined> = []
    const readFailures = new Map<string, number>()
    const stats = { writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0, syncs: 0, failedSyncs: 0, directorySyncs: 0, crashes: 0 }

    const parentOf = (path: string) => directories.get(Path.posix.dirname(path))

    const changeEntries = (changes: ReadonlyArray<EntryChange>) => {
      for (const { directory, name, entry } of changes) {
        const entries = directories.get(directory)!.entries
        if (entry === undefined) entries.delete(name)
        else entries.set(name, entry)
      }
      journal.push(changes)
    }

    // Bytes held by every file that has a name or an open handle; walked only when a capacity is set.
    const used = () => {
      const inodes = new Set<Inode>()
      for (const directory of directories.values()) {
        for (const entry of directory.entries.values()) if (entry.kind === "file") inodes.add(entry.inode)
      }
      for (const handle of openHandles) inodes.add(handle.inode)
      let total = 0
      for (const inode of inodes) total += inode.current.size
      return total
    }

    const fits = (growth: number) => capacity === undefined || growth <= 0 || used() + growth <= capacity

    const unusable = (handle: Handle, operation: string): Effect.Effect<never, DiskError> | undefined => {
      if (handle.closed) return ioError(handle.path, operation, "EBADF", "the file is closed")
      if (handle.epoch !== epoch) return ioError(handle.path, operation, "ESTALE", "the handle did not survive the crash")
      return undefined
    }

    const sync = (handle: Handle): Effect.Effect<void, DiskError> =>
      Effect.gen(function*() {
        const refused = unusable(handle, "sync")
        if (refused !== undefined) return yield* refused
        const { inode, path } = handle
        const armed = syncFailures.findIndex((prefix) => prefix === undefined || path.startsWith(prefix))
        if (armed >= 0) syncFailures.splice(armed, 1)
        const upTo = seq
        if (!Duration.isZero(syncLatency)) {
          yield* Effect.sleep(syncLatency)
          const lost = unusable(handle, "sync")
          if (lost !== undefined) return yield* lost
        }
        if (armed >= 0) {
          stats.failedSyncs++
          // After a failed fsync Linux marks the dirty pages clean unwritten: those changes never reach the disk.
          inode.pending = []
          inode.current = inode.durable.clone()
          if (trace.enabled) trace.record("disk.sync.fail", path)
          return yield* ioError(path, "sync", "EIO", "injected sync failure")
        }
        stats.syncs++
        let synced = 0
        while (synced < inode.pending.length && inode.pending[synced]!.seq <= upTo) inode.durable.apply(inode.pending[synced++]!)
        if (synced > 0) inode.pending = inode.pending.slice(synced)
        if (trace.enabled) trace.record("disk.sync", `${path} ${inode.durable.size}`)
      })

    const fileOf = (handle: Handle): DiskFile => {
      const { inode, path } = handle
      return {
        path: handle.givenPath,
        size: Effect.suspend(() => unusable(handle, "stat") ?? Effect.succeed(inode.current.size)),
        write: (position, chunks) =>
          Effect.suspend(() => {
            const refused = unusable(handle, "write")
            if (refused !== undefined) return refused
            if (!(Number.isSafeInteger(position) && position >= 0)) return ioError(path, "write", "EINVAL", `bad position ${position}`)
            let length = 0
            for (const chunk of chunks) length += chunk.length
            if (length === 0) return Effect.void
            if (!fits(position + length - inode.current.size)) return Effect.fail(new DiskFull({ path }))
            const change: Change = { _tag: "write", seq: ++seq, position, bytes: concat(chunks, length) }
            inode.pending.push(change)
            inode.current.write(position, change.bytes)
            stats.writes++
            stats.bytesWritten += length
            return Effect.void
          }),
        read: (position, length) =>
          Effect.suspend(() => {
            const refused = unusable(handle, "read")
            if (refused !== undefined) return refused
            let probability = 0
            for (const [prefix, p] of readFailures) if (path.startsWith(prefix) && p > probability) probability = p
            const read = () => {
              const bytes = inode.current.read(position, length)
              stats.reads++
              stats.bytesRead += bytes.length
              return Effect.succeed(bytes)
            }
            if (probability === 0) return read()
            return Effect.flatMap(Random.next, (draw) =>
              draw < probability ? ioError(path, "read", "EIO", "injected read failure") : read())
          }),
        datasync: sync(handle),
        truncate: (size) =>
          Effect.suspend(() => {
            const refused = unusable(handle, "truncate")
            if (refused !== undefined) return refused
            if (!(Number.isSafeInteger(size) && size >= 0)) return ioError(path, "truncate", "EINVAL", `bad size ${size}`)
            if (!fits(size - inode.current.size)) return Effect.fail(new DiskFull({ path }))
            const change: Change = { _tag: "truncate", seq: ++seq, size }
            inode.pending.push(change)
            inode.current.truncate(size)
            return Effect.void
          })
      }
    }

    const disk = Disk.of({
      open: (rawPath, { create }) =>
        Effect.acquireRelease(
          Effect.suspend((): Effect.Effect<Handle, DiskError> => {
            const path = normalize(rawPath)
            const directory = parentOf(path)
            if (directory === undefined) return notFound(path)
            const name = Path.posix.basename(path)
            let entry = directory.entries.get(name)
            if (entry?.kind === "directory" || roots.includes(path)) return ioError(path, "open", "EISDIR", "is a directory")
            if (entry === undefined) {
              if (!create) return notFound(path)
              entry = { kind: "file", inode: { durable: Content.empty(), current: Content.empty(), pending: [] } }
              changeEntries([{ directory: Path.posix.dirname(path), name, entry }])
            }
            const handle: Handle = { path, givenPath: rawPath, inode: entry.inode, epoch, closed: false }
            openHandles.add(handle)
            return Effect.succeed(handle)
          }),
          (handle) =>
            Effect.sync(() => {
              handle.closed = true
              openHandles.delete(handle)
            })
        ).pipe(Effect.map(fileOf)),
      list: (rawPath) =>
        Effect.suspend(() => {
          const path = normalize(rawPath)
          const directory = directories.get(path)
          if (directory !== undefined) return Effect.succeed([...directory.entries.keys()].sort())
          return parentOf(path)?.entries.get(Path.posix.basename(path))?.kind === "file"
            ? ioError(path, "list", "ENOTDIR", "not a directory")
            : notFound(path)
        }),
      makeDirectory: (rawPath) =>
        Effect.suspend(() => {
          const path = normalize(rawPath)
          const missing: Array<string> = []
          for (let at = path; !directories.has(at); at = Path.posix.dirname(at)) missing.push(at)
          // check the whole chain first, so a failure creates nothing
          const top = missing.at(-1)
          if (top !== undefined && parentOf(top)?.entries.get(Path.posix.basename(top))?.kind === "file") {
            return ioError(path, "mkdir", "EEXIST", `${top} is a file`)
          }
          for (const directory of missing.reverse()) {
            directories.set(directory, newDirectory())
            changeEntries([{ directory: Path.posix.dirname(directory), name: Path.posix.basename(directory), entry: { kind: "directory" } }])
          }
          return Effect.void
        }),
      remove: (rawPath) =>
        Effect.suspend(() => {
          const path = normalize(rawPath)
          const directory = parentOf(path)
          const name = Path.posix.basename(path)
          const entry = directory?.entries.get(name)
          if (entry === undefined) return notFound(path)
          if (entry.kind === "directory") return ioError(path, "remove", "EISDIR", "is a directory")
          changeEntries([{ directory: Path.posix.dirname(path), name, entry: undefined }])
          return Effect.void
        }),
      rename: (rawFrom, rawTo) =>
        Effect.suspend(() => {
          const from = normalize(rawFrom)
          const to = normalize(rawTo)
          const source = parentOf(from)
          const target = parentOf(to)
          const entry = source?.entries.get(Path.posix.basename(from))
          if (entry === undefined) return notFound(from)
          if (target === undefined) return notFound(to)
          if (entry.kind === "directory") return ioError(from, "rename", "EISDIR", "renaming directories is not simulated")
          if (target.entries.get(Path.posix.basename(to))?.kind === "directory") return ioError(to, "rename", "EISDIR", "is a directory")
          if (from === to) return Effect.void
          changeEntries([
            { directory: Path.posix.dirname(from), name: Path.posix.basename(from), entry: undefined },
            { directory: Path.posix.dirname(to), name: Path.posix.basename(to), entry }
          ])
          return Effect.void
        }),
      syncDirectory: (rawPath) =>
        Effect.suspend(() => {
          const path = normalize(rawPath)
          const directory = directories.get(path)
          if (directory === undefined) {
            return parentOf(path)?.entries.get(Path.posix.basename(path))?.kind === "file"
              ? ioError(path, "sync", "ENOTDIR", "not a directory")
              : notFound(path)
          }
          directory.durable = new Map(directory.entries)
          journal = journal.map((changes) => changes.filter((entryChange) => entryChange.directory !== path)).filter((changes) => changes.length > 0)
          stats.directorySyncs++
          if (trace.enabled) trace.record("disk.syncdir", path)
          return Effect.void
        })
    })

    // Keeps the durable state of a file plus a random prefix of its unsynced changes, the last one
    // possibly torn; returns what happened, for the trace.
    const settle = (inode: Inode) =>
      Effect.gen(function*() {
        const changes = inode.pending
        let outcome = "0/0"
        if (changes.length > 0) {
          const kept = yield* Random.nextIntBetween(0, changes.length)
          outcome = `${kept}/${changes.length}`
          for (let i = 0; i < kept - 1; i++) inode.durable.apply(changes[i]!)
          const last = changes[kept - 1]
          if (last !== undefined) {
            if (last._tag === "write" && (yield* Random.next) < tearProbability) {
              const survived = yield* Random.nextIntBetween(0, last.bytes.length - 1)
              inode.durable.write(last.position, last.bytes.subarray(0, survived))
              outcome += `~${survived}`
            } else {
              inode.durable.apply(last)
            }
          }
        }
        inode.pending = []
        inode.current = inode.durable.clone()
        return outcome
      })

    const crash = Effect.gen(function*() {
      epoch++
      stats.crashes++
      openHandles.clear()
      syncFailures.length = 0
      // Directories: their durable entries plus a prefix of the journal, reachable from the roots only.
      const journaled = journal.length === 0 ? 0 : yield* Random.nextIntBetween(0, journal.length)
      for (const changes of journal.slice(0, journaled)) {
        for (const { directory, name, entry } of changes) {
          const durable = directories.get(directory)!.durable
          if (entry === undefined) durable.delete(name)
          else durable.set(name, entry)
        }
      }
      const outcomes = [`journal=${journaled}/${journal.length}`]
      journal = []
      const survivors = new Map<string, Directory>()
      const restore = (path: string) => {
        const directory = directories.get(path)
        if (directory === undefined) return
        directory.entries = new Map(directory.durable)
        survivors.set(path, directory)
        for (const name of [...directory.entries.keys()].sort()) {
          if (directory.entries.get(name)!.kind === "directory") restore(Path.posix.join(path, name))
        }
      }
      for (const root of roots) restore(root)
      directories = survivors
      // Files: in a fixed order (directories depth first, names sorted) so the seed decides alone.
      const settled = new Set<Inode>()
      for (const [path, directory] of directories) {
        for (const name of [...directory.entries.keys()].sort()) {
          const entry = directory.entries.get(name)!
          if (entry.kind !== "file") continue
          if (settled.has(entry.inode)) {
            // Both names of a half-durable rename survived: they are two files now.
            const copy: Entry = { kind: "file", inode: { durable: entry.inode.durable.clone(), current: entry.inode.durable.clone(), pending: [] } }
            directory.entries.set(name, copy)
            directory.durable.set(name, copy)
            continue
          }
          settled.add(entry.inode)
          outcomes.push(`${Path.posix.join(path, name)}=${yield* settle(entry.inode)}`)
        }
      }
      if (trace.enabled) trace.record("disk.crash", outcomes.join(" "))
    })

    const control = SimDisk.of({
      crash,
      failNextSync: (pathPrefix) => Effect.sync(() => {
        syncFailures.push(pathPrefix)
      }),
      setCapacity: (bytes) => Effect.sync(() => {
        capacity = bytes
      }),
      failReads: (pathPrefix, probability) => Effect.sync(() => {
        if (probability > 0) readFailures.set(pathPrefix, probability)
        else readFailures.delete(pathPrefix)
      }),
      stats: Effect.sync(() => ({ ...stats }))
    })

    return { disk, control }
  })
