/**
 * A queue index: where each message of one (topic, queue) lies in the commit log.
 *
 * Fixed 32-byte entries, `u64 offset | u64 log position | u32 size | u32 tag hash | u64 store time`,
 * little-endian, in segment files of `entriesPerSegment` entries named by their first offset. Today
 * entry `n` of a segment holds offset `base + n`; the offset is stored in the entry so that a later
 * entry kind may span several offsets (a Kafka batch) and be found by binary search. An index can
 * always be rebuilt from the log, so new entries are kept in memory and written in batches (every
 * 4,096 entries and on `sync`), and synced lazily, behind the store's checkpoint.
 *
 * @since 0.1.0
 */
import { Bytes } from "@strait/core"
import { Data, Effect, Scope, Semaphore } from "effect"
import { Disk, type DiskError, type DiskFile, getUint64, makeDurableDirectory, setUint64 } from "./Disk.ts"
import { floorSegment } from "./internal/segments.ts"

/** Bytes per entry. */
export const EntryBytes = 32
// entries kept in memory before they are written out
const pendingLimit = 4096
const suffix = ".idx"

/**
 * One index entry.
 *
 * @since 0.1.0
 */
export interface Entry {
  readonly offset: number
  readonly position: number
  readonly size: number
  readonly tagHash: number
  readonly storeTime: number
}

/**
 * A read below the queue's low-water mark: retention deleted those messages.
 *
 * @since 0.1.0
 */
export class OffsetBelowStart extends Data.TaggedError("OffsetBelowStart")<{
  readonly offset: number
  readonly start: number
}> {
  override get message() {
    return `offset ${this.offset} was deleted by retention; the queue starts at ${this.start}`
  }
}

/**
 * An index entry that does not hold the offset its place says: the index file is damaged.
 *
 * @since 0.1.0
 */
export class CorruptIndex extends Data.TaggedError("CorruptIndex")<{
  readonly file: string
  readonly offset: number
}> {}

/**
 * An open queue index.
 *
 * @since 0.1.0
 */
export interface QueueIndex {
  /** Appends entries whose offsets continue from `end`. */
  readonly append: (entries: ReadonlyArray<Entry>) => Effect.Effect<void, DiskError>
  /** Entries from `offset` on: at most `maxCount` of them, and none past the end. */
  readonly read: (offset: number, maxCount: number) => Effect.Effect<ReadonlyArray<Entry>, DiskError | OffsetBelowStart | CorruptIndex>
  /** The first offset whose store time is at or after `time` (`end` if none). */
  readonly offsetForTime: (time: number) => Effect.Effect<number, DiskError | CorruptIndex>
  /** The first offset whose log position is at or after `position` (`end` if none). */
  readonly offsetForPosition: (position: number) => Effect.Effect<number, DiskError | CorruptIndex>
  /** The first offset still stored (the low-water mark). */
  readonly start: Effect.Effect<number>
  /** The offset the next append gets. */
  readonly end: Effect.Effect<number>
  /** Drops every entry at or after `offset` (recovery). */
  readonly truncate: (offset: number) => Effect.Effect<void, DiskError>
  /** Deletes whole segments whose entries all lie below `offset`; the start moves up. */
  readonly deleteBefore: (offset: number) => Effect.Effect<void, DiskError>
  /** Writes out the entries held in memory and makes every entry durable. */
  readonly sync: Effect.Effect<void, DiskError>
}

interface Segment {
  readonly base: number
  readonly name: string
  readonly file: DiskFile
  count: number
}

const nameOf = (base: number) => `${String(base).padStart(20, "0")}${suffix}`

const encodeEntries = (entries: ReadonlyArray<Entry>) => {
  const bytes = Bytes.allocUnsafe(entries.length * EntryBytes)
  const view = Bytes.viewOf(bytes)
  entries.forEach((entry, i) => {
    const at = i * EntryBytes
    setUint64(view, at, entry.offset)
    setUint64(view, at + 8, entry.position)
    view.setUint32(at + 16, entry.size, true)
    view.setUint32(at + 20, entry.tagHash >>> 0, true)
    setUint64(view, at + 24, entry.storeTime)
  })
  return bytes
}

const decodeEntry = (bytes: Uint8Array, at: number): Entry => {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, EntryBytes)
  return {
    offset: getUint64(view, 0),
    position: getUint64(view, 8),
    size: view.getUint32(16, true),
    tagHash: view.getUint32(20, true),
    storeTime: getUint64(view, 24)
  }
}

/**
 * Opens (or creates) the index in `directory`; a torn last entry is cut off. `firstOffset` is where
 * an empty index starts (a queue whose older messages retention already removed).
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(
  directory: string,
  options: { readonly entriesPerSegment: number; readonly firstOffset: number }
) {
  const disk = yield* Disk
  const scope = yield* Effect.scope
  yield* makeDurableDirectory(directory)
  const segments: Array<Segment> = []
  for (const name of yield* disk.list(directory)) {
    if (!name.endsWith(suffix)) continue
    const file = yield* disk.open(`${directory}/${name}`, { create: false })
    const size = yield* file.size
    const whole = size - (size % EntryBytes)
    if (whole !== size) yield* file.truncate(whole)
    segments.push({ base: Number(name.slice(0, -suffix.length)), name, file, count: whole / EntryBytes })
  }
  segments.sort((a, b) => a.base - b.base)
  // An index is contiguous. After a crash a segment may have lost its unsynced tail while a later
  // segment survived: the index ends at the hole, and what follows is rebuilt from the log (the
  // store checkpoints only after syncing its indexes, so a hole always lies past the checkpoint).
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]!
    if (segment.count === options.entriesPerSegment && segments[i + 1]!.base === segment.base + segment.count) continue
    for (const later of segments.splice(i + 1)) yield* disk.remove(`${directory}/${later.name}`)
    yield* disk.syncDirectory(directory)
    break
  }

  const create = Effect.fnUntraced(function*(base: number) {
    const name = nameOf(base)
    const file = yield* disk.open(`${directory}/${name}`, { create: true }).pipe(Effect.provideService(Scope.Scope, scope))
    yield* disk.syncDirectory(directory)
    const segment: Segment = { base, name, file, count: 0 }
    segments.push(segment)
    return segment
  })
  if (segments.length === 0) yield* create(options.firstOffset)

  const last = () => segments[segments.length - 1]!
  const endOf = () => pendingBase + pending.length
  const dirty = new Set<Segment>()

  const segmentOf = (offset: number) => segments[floorSegment(segments, offset)]!

  // New entries wait in memory and are written in batches (an index can always be rebuilt from the
  // log, and the store's checkpoint covers only what was written and synced). Pending entries stay
  // readable until their write is done; one write (or truncation) at a time.
  let pending: Array<Entry> = []
  let pendingBase = last().base + last().count
  const diskEnd = () => last().base + last().count
  const writing = yield* Semaphore.make(1)

  const writeOut = (entries: ReadonlyArray<Entry>): Effect.Effect<void, DiskError> =>
    Effect.gen(function*() {
      let from = 0
      while (from < entries.length) {
        let segment = last()
        if (segment.count >= options.entriesPerSegment) segment = yield* create(diskEnd())
        const room = options.entriesPerSegment - segment.count
        const slice = entries.slice(from, from + room)
        yield* segment.file.write(segment.count * EntryBytes, [encodeEntries(slice)])
        segment.count += slice.length
        dirty.add(segment)
        from += slice.length
      }
    })

  const flush: Effect.Effect<void, DiskError> = writing.withPermits(1)(Effect.suspend(() => {
    const count = pending.length
    if (count === 0) return Effect.void
    return Effect.map(writeOut(pending.slice(0, count)), () => {
      pending = pending.slice(count)
      pendingBase += count
    })
  }))

  const append = (entries: ReadonlyArray<Entry>): Effect.Effect<void, DiskError> =>
    Effect.suspend(() => {
      for (const entry of entries) pending.push(entry)
      return pending.length >= pendingLimit ? flush : Effect.void
    })

  const read = (offset: number, maxCount: number) =>
    Effect.gen(function*() {
      const start = segments[0]!.base
      if (offset < start) return yield* new OffsetBelowStart({ offset, start })
      const out: Array<Entry> = []
      let at = offset
      while (out.length < maxCount && at < endOf()) {
        if (at >= pendingBase) {
          out.push(pending[at - pendingBase]!)
          at++
          continue
        }
        const segment = segmentOf(at)
        const index = at - segment.base
        const count = Math.min(maxCount - out.length, segment.count - index)
        if (count <= 0) break
        const bytes = yield* segment.file.read(index * EntryBytes, count * EntryBytes)
        if (bytes.length < count * EntryBytes) return yield* new CorruptIndex({ file: `${directory}/${segment.name}`, offset: at })
        for (let i = 0; i + EntryBytes <= bytes.length; i += EntryBytes) {
          const entry = decodeEntry(bytes, i)
          if (entry.offset !== at) return yield* new CorruptIndex({ file: `${directory}/${segment.name}`, offset: at })
          out.push(entry)
          at++
        }
      }
      return out
    })

  const entryAt = (offset: number) =>
    Effect.gen(function*() {
      if (offset >= pendingBase) return pending[offset - pendingBase]!
      const segment = segmentOf(offset)
      const bytes = yield* segment.file.read((offset - segment.base) * EntryBytes, EntryBytes)
      if (bytes.length < EntryBytes) return yield* new CorruptIndex({ file: `${directory}/${segment.name}`, offset })
      const entry = decodeEntry(bytes, 0)
      if (entry.offset !== offset) return yield* new CorruptIndex({ file: `${directory}/${segment.name}`, offset })
      return entry
    })

  // positions and store times never decrease within a queue (the store keeps times monotonic)
  const firstWhere = (reached: (entry: Entry) => boolean) =>
    Effect.gen(function*() {
      let low = segments[0]!.base
      let high = endOf()
      while (low < high) {
        const middle = Math.floor((low + high) / 2)
        if (reached(yield* entryAt(middle))) high = middle
        else low = middle + 1
      }
      return low
    })

  const truncate = (offset: number) =>
    writing.withPermits(1)(Effect.gen(function*() {
      if (offset >= pendingBase) {
        pending = pending.slice(0, offset - pendingBase)
        return
      }
      pending = []
      while (segments.length > 1 && last().base >= offset) {
        const doomed = segments.pop()!
        dirty.delete(doomed)
        yield* disk.remove(`${directory}/${doomed.name}`)
      }
      const segment = last()
      const keep = Math.max(0, Math.min(segment.count, offset - segment.base))
      if (keep < segment.count) {
        yield* segment.file.truncate(keep * EntryBytes)
        segment.count = keep
        dirty.add(segment)
      }
      pendingBase = diskEnd()
      yield* disk.syncDirectory(directory)
    }))

  const deleteBefore = (offset: number) =>
    Effect.gen(function*() {
      let removed = false
      while (segments.length > 1 && segments[0]!.base + segments[0]!.count <= offset && segments[1]!.base <= offset) {
        const doomed = segments.shift()!
        dirty.delete(doomed)
        yield* disk.remove(`${directory}/${doomed.name}`)
        removed = true
      }
      if (removed) yield* disk.syncDirectory(directory)
    })

  // writes out what is pending, then makes every written entry durable
  const sync = Effect.andThen(flush, Effect.suspend(() => {
    const files = [...dirty]
    dirty.clear()
    return Effect.forEach(files, (segment) => segment.file.datasync, { discard: true })
  }))

  const index: QueueIndex = {
    append,
    read,
    offsetForTime: (time) => firstWhere((entry) => entry.storeTime >= time),
    offsetForPosition: (position) => firstWhere((entry) => entry.position >= position),
    start: Effect.sync(() => segments[0]!.base),
    end: Effect.sync(endOf),
    truncate,
    deleteBefore,
    sync
  }
  return index
})
