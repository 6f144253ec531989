/**
 * The commit log: one append-only sequence of records per broker, in segment files.
 *
 * A record is `u32 crc32c | u16 magic | u8 version | u8 flags | u32 body length | u32 queue key |
 * u32 tag hash | u64 queue offset | u64 store time | body`, little-endian, where the CRC32C covers every byte after
 * itself. A record's position is its byte position in the whole log; a segment file is named by the
 * position of its first byte (20 digits) and never splits a record. Appends are vectored writes of
 * whole batches; nothing is durable before `sync`. Every read verifies the CRC, so a damaged record is
 * never served. Opening a log recovers it: records from the given position on are verified, and the
 * log is cut at the first one that fails (a torn tail after a crash, or damage, which is reported).
 *
 * @since 0.1.0
 */
import { Bytes } from "@strait/core"
import { Data, Effect, Scope } from "effect"
import { crc32c } from "./Crc32c.ts"
import { Disk, type DiskError, type DiskFile, getUint64, makeDurableDirectory, setUint64 } from "./Disk.ts"
import { floorSegment } from "./internal/segments.ts"

/** Bytes before a record's body. */
export const HeaderBytes = 36
const Magic = 0x5354
const Version = 1
const segmentSuffix = ".log"

/**
 * Flags of a record, for the layers above (the log does not interpret them).
 *
 * @since 0.1.0
 */
export type Flags = number

/**
 * What an append writes.
 *
 * @since 0.1.0
 */
export interface Record {
  /** Which queue the record belongs to (assigned by the store). */
  readonly queueKey: number
  /** The hash of the message's tag, kept so that recovery can rebuild index entries. */
  readonly tagHash: number
  readonly queueOffset: number
  readonly storeTime: number
  readonly flags: Flags
  readonly body: Uint8Array
}

/**
 * A record read back, with where it is.
 *
 * @since 0.1.0
 */
export interface Located extends Record {
  readonly position: number
  /** Bytes on disk, header included: the next record starts at `position + size`. */
  readonly size: number
}

/**
 * A record failed its checks: bad magic, version or length, or a CRC mismatch.
 *
 * @since 0.1.0
 */
export class CorruptRecord extends Data.TaggedError("CorruptRecord")<{
  readonly file: string
  readonly position: number
  readonly reason: string
}> {
  override get message() {
    return `corrupt record in ${this.file} at log position ${this.position}: ${this.reason}`
  }
}

/**
 * A read below the log's start (retention deleted it) or at or beyond its end.
 *
 * @since 0.1.0
 */
export class PositionOutOfRange extends Data.TaggedError("PositionOutOfRange")<{
  readonly position: number
  readonly start: number
  readonly end: number
}> {}

/**
 * What opening the log found.
 *
 * @since 0.1.0
 */
export interface Recovery {
  /** Records at or after the requested scan position, in order: the store rebuilds indexes from them. */
  readonly scanned: number
  readonly bytesScanned: number
  /** Bytes cut from the end: a torn tail, or everything from a damaged record on. */
  readonly truncatedBytes: number
  /** The damaged record, when recovery stopped at one that was not the torn tail of the last segment. */
  readonly damage: CorruptRecord | undefined
}

/**
 * Options of a log.
 *
 * @since 0.1.0
 */
export interface Options {
  readonly directory: string
  /** A segment rolls over when the next record would pass this size (a larger record gets one alone). */
  readonly segmentBytes: number
}

/**
 * A segment's place in the log.
 *
 * @since 0.1.0
 */
export interface SegmentInfo {
  readonly file: string
  readonly base: number
  readonly size: number
}

/**
 * An open commit log.
 *
 * @since 0.1.0
 */
export interface CommitLog {
  /** Writes the records after the log's end, rolling segments as needed; returns their positions. */
  readonly append: (records: ReadonlyArray<Record>) => Effect.Effect<ReadonlyArray<number>, DiskError>
  /** Makes everything appended so far durable. */
  readonly sync: Effect.Effect<void, DiskError>
  /** Reads one record whose size is known (from an index entry). */
  readonly read: (position: number, size: number) => Effect.Effect<Located, DiskError | CorruptRecord | PositionOutOfRange>
  /**
   * Reads records whose places are known (index entries, in log order), with one read per run of
   * them that lies within 1 MiB of one segment.
   */
  readonly readMany: (
    places: ReadonlyArray<{ readonly position: number; readonly size: number }>
  ) => Effect.Effect<ReadonlyArray<Located>, DiskError | CorruptRecord | PositionOutOfRange>
  /** Reads the records from `position` on, stopping before `maxBytes` or at the end. */
  readonly scan: (
    position: number,
    maxBytes: number
  ) => Effect.Effect<ReadonlyArray<Located>, DiskError | CorruptRecord | PositionOutOfRange>
  /** The first position still stored. */
  readonly start: Effect.Effect<number>
  /** The position the next append writes at. */
  readonly end: Effect.Effect<number>
  /** Every position below this one is durable. */
  readonly synced: Effect.Effect<number>
  readonly segments: Effect.Effect<ReadonlyArray<SegmentInfo>>
  /** Cuts the log back to end at `position` (undoing a failed batch); `position` must not be below the start. */
  readonly truncate: (position: number) => Effect.Effect<void, DiskError>
  /** Deletes whole segments that end at or before `position`; never the active one. Returns the new start. */
  readonly deleteBefore: (position: number) => Effect.Effect<number, DiskError>
}

const segmentName = (base: number) => `${String(base).padStart(20, "0")}${segmentSuffix}`
const join = (directory: string, name: string) => `${directory}/${name}`

// batches up to this size are encoded into one reused buffer
const scratchLimit = 4 * 1024 * 1024

/** A buffer of at least `bytes`: `scratch` when it is large enough, else a new one (room to grow). */
const bufferFor = (bytes: number, scratch: Uint8Array | undefined) =>
  scratch !== undefined && scratch.length >= bytes
    ? scratch
    : Bytes.allocUnsafe(bytes > scratchLimit ? bytes : Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(bytes))))

/** Writes `records[from, to)`, `bytes` in all, into the front of `target`; returns the bytes written. */
const encode = (records: ReadonlyArray<Record>, from: number, to: number, bytes: number, target: Uint8Array) => {
  const buffer = target.subarray(0, bytes)
  const view = new DataView(buffer.buffer, buffer.byteOffset, bytes)
  let at = 0
  for (let i = from; i < to; i++) {
    const record = records[i]!
    view.setUint16(at + 4, Magic, true)
    view.setUint8(at + 6, Version)
    view.setUint8(at + 7, record.flags)
    view.setUint32(at + 8, record.body.length, true)
    view.setUint32(at + 12, record.queueKey, true)
    view.setUint32(at + 16, record.tagHash >>> 0, true)
    setUint64(view, at + 20, record.queueOffset)
    setUint64(view, at + 28, record.storeTime)
    buffer.set(record.body, at + HeaderBytes)
    const end = at + HeaderBytes + record.body.length
    view.setUint32(at, crc32c(buffer.subarray(at + 4, end)), true)
    at = end
  }
  return buffer
}

/** The body length a header announces, or a reason it is not a header. */
const headerProblem = (bytes: Uint8Array, at: number): string | number => {
  if (bytes.length - at < HeaderBytes) return "truncated header"
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HeaderBytes)
  if (view.getUint16(4, true) !== Magic) return "bad magic"
  if (view.getUint8(6) !== Version) return `unknown version ${view.getUint8(6)}`
  return view.getUint32(8, true)
}

/** Decodes and verifies the record at `at` of `bytes`; `position` is its log position. */
const decodeAt = (bytes: Uint8Array, at: number, position: number): Located | string => {
  const length = headerProblem(bytes, at)
  if (typeof length === "string") return length
  const size = HeaderBytes + length
  if (bytes.length - at < size) return "truncated body"
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HeaderBytes)
  if (crc32c(bytes.subarray(at + 4, at + size)) !== view.getUint32(0, true)) return "CRC mismatch"
  return {
    position,
    size,
    flags: view.getUint8(7),
    queueKey: view.getUint32(12, true),
    tagHash: view.getUint32(16, true),
    queueOffset: getUint64(view, 20),
    storeTime: getUint64(view, 28),
    body: bytes.subarray(at + HeaderBytes, at + size)
  }
}

interface Segment {
  readonly base: number
  readonly file: DiskFile
  readonly name: string
  size: number
}

const recoveryChunkBytes = 4 * 1024 * 1024

/**
 * Verifies the records of a segment from byte `from`, in chunks; returns where the valid records end
 * and, if that is before the segment's end, why.
 */
const verify = Effect.fnUntraced(function*(segment: Segment, from: number, onRecord: (record: Located) => void) {
  let at = from
  while (at < segment.size) {
    const chunk = yield* segment.file.read(at, Math.min(recoveryChunkBytes, segment.size - at))
    let inChunk = 0
    while (chunk.length - inChunk >= HeaderBytes) {
      const length = headerProblem(chunk, inChunk)
      if (typeof length === "string") return { end: at + inChunk, reason: length }
      if (chunk.length - inChunk < HeaderBytes + length) break
      const record = decodeAt(chunk, inChunk, segment.base + at + inChunk)
      if (typeof record === "string") return { end: at + inChunk, reason: record }
      onRecord(record)
      inChunk += record.size
    }
    if (inChunk > 0) {
      at += inChunk
      continue
    }
    // the record at `at` does not fit in one chunk: it is larger than a chunk, or cut by the end
    const length = headerProblem(chunk, 0)
    if (typeof length === "string") return { end: at, reason: length }
    if (at + HeaderBytes + length > segment.size) return { end: at, reason: "truncated body" }
    const record = decodeAt(yield* segment.file.read(at, HeaderBytes + length), 0, segment.base + at)
    if (typeof record === "string") return { end: at, reason: record }
    onRecord(record)
    at += record.size
  }
  return { end: at, reason: "" }
})

/**
 * Opens (or creates) the log in `options.directory`, verifying every record from `scanFrom` on and
 * handing each to `onRecord` (the store rebuilds its indexes there). Lives until the scope closes.
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(
  options: Options,
  scanFrom: number,
  onRecord: (record: Located) => void
) {
  const disk = yield* Disk
  yield* makeDurableDirectory(options.directory)
  const scope = yield* Effect.scope
  const names = (yield* disk.list(options.directory)).filter((name) => name.endsWith(segmentSuffix))
  const segments: Array<Segment> = []
  for (const name of names) {
    const base = Number(name.slice(0, -segmentSuffix.length))
    if (!Number.isSafeInteger(base)) continue
    const file = yield* disk.open(join(options.directory, name), { create: false })
    segments.push({ base, file, name, size: yield* file.size })
  }
  segments.sort((a, b) => a.base - b.base)

  // --- recovery: verify from scanFrom to the end; cut at the first bad record ---
  let scanned = 0
  let bytesScanned = 0
  let truncatedBytes = 0
  let damage: CorruptRecord | undefined
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!
    if (segment.base + segment.size <= scanFrom && index < segments.length - 1) continue
    const first = Math.min(segment.size, Math.max(0, scanFrom - segment.base))
    const verified = yield* verify(segment, first, (record) => {
      onRecord(record)
      scanned++
    })
    bytesScanned += verified.end - first
    if (verified.end === segment.size) continue
    // A bad record in the last segment is the tail a crash tore; anywhere else it is damage, and
    // everything after it is unreachable.
    if (index < segments.length - 1) {
      damage = new CorruptRecord({ file: segment.name, position: segment.base + verified.end, reason: verified.reason })
    }
    truncatedBytes += segment.size - verified.end
    yield* segment.file.truncate(verified.end)
    yield* segment.file.datasync
    segment.size = verified.end
    for (const later of segments.splice(index + 1)) {
      truncatedBytes += later.size
      yield* disk.remove(join(options.directory, later.name))
    }
    yield* disk.syncDirectory(options.directory)
    break
  }

  // --- the open log ---
  const roll = Effect.fnUntraced(function*(base: number) {
    const name = segmentName(base)
    const file = yield* disk.open(join(options.directory, name), { create: true }).pipe(Effect.provideService(Scope.Scope, scope))
    yield* disk.syncDirectory(options.directory)
    const segment: Segment = { base, file, name, size: 0 }
    segments.push(segment)
    return segment
  })
  if (segments.length === 0) yield* roll(0)

  const active = () => segments[segments.length - 1]!
  let unsynced = new Set<Segment>()
  let syncedEnd = active().base + active().size

  const endOf = () => active().base + active().size
  let scratch: Uint8Array | undefined

  const append = (records: ReadonlyArray<Record>): Effect.Effect<ReadonlyArray<number>, DiskError> =>
    Effect.gen(function*() {
      const positions: Array<number> = []
      let from = 0
      while (from < records.length) {
        let segment = active()
        // take as many records as fit in this segment (at least one, into an empty segment)
        let bytes = 0
        let to = from
        while (to < records.length) {
          const size = HeaderBytes + records[to]!.body.length
          if (segment.size + bytes + size > options.segmentBytes && (segment.size + bytes > 0)) break
          bytes += size
          to++
        }
        if (to === from) {
          segment = yield* roll(endOf())
          continue
        }
        // the write buffer is reused once its write has returned (a write cut off by interruption
        // may still be reading it: that buffer is not reused)
        const target = bufferFor(bytes, scratch)
        scratch = undefined
        const buffer = encode(records, from, to, bytes, target)
        yield* segment.file.write(segment.size, [buffer])
        if (target.length <= scratchLimit) scratch = target
        let at = segment.base + segment.size
        for (let i = from; i < to; i++) {
          positions.push(at)
          at += HeaderBytes + records[i]!.body.length
        }
        segment.size += buffer.length
        unsynced.add(segment)
        from = to
      }
      return positions
    })

  const sync: Effect.Effect<void, DiskError> = Effect.suspend(() => {
    const dirty = [...unsynced]
    const end = endOf()
    unsynced = new Set()
    return Effect.forEach(dirty, (segment) => segment.file.datasync, { discard: true }).pipe(
      Effect.tap(() => Effect.sync(() => {
        syncedEnd = Math.max(syncedEnd, end)
      })),
      Effect.tapError(() => Effect.sync(() => {
        for (const segment of dirty) unsynced.add(segment)
      }))
    )
  })

  const segmentOf = (position: number) => {
    const segment = segments[floorSegment(segments, position)]
    return segment !== undefined && segment.base <= position && position < segment.base + segment.size ? segment : undefined
  }

  const outOfRange = (position: number) =>
    new PositionOutOfRange({ position, start: segments[0]!.base, end: endOf() })

  const read = (position: number, size: number) =>
    Effect.gen(function*() {
      const segment = segmentOf(position)
      if (segment === undefined) return yield* outOfRange(position)
      const bytes = yield* segment.file.read(position - segment.base, size)
      const record = decodeAt(bytes, 0, position)
      if (typeof record === "string" || record.size !== size) {
        return yield* new CorruptRecord({
          file: segment.name,
          position,
          reason: typeof record === "string" ? record : "size differs from the index"
        })
      }
      return record
    })

  const spanBytes = 1024 * 1024
  const readMany = (places: ReadonlyArray<{ readonly position: number; readonly size: number }>) =>
    Effect.gen(function*() {
      const out: Array<Located> = []
      let i = 0
      while (i < places.length) {
        const first = places[i]!
        const segment = segmentOf(first.position)
        if (segment === undefined) return yield* outOfRange(first.position)
        // extend the span while the next record is in the same segment, after this one, within reach
        let j = i + 1
        while (
          j < places.length && places[j]!.position >= places[j - 1]!.position + places[j - 1]!.size &&
          places[j]!.position + places[j]!.size <= segment.base + segment.size &&
          places[j]!.position + places[j]!.size - first.position <= spanBytes
        ) j++
        const last = places[j - 1]!
        const bytes = yield* segment.file.read(first.position - segment.base, last.position + last.size - first.position)
        for (let k = i; k < j; k++) {
          const place = places[k]!
          const record = decodeAt(bytes, place.position - first.position, place.position)
          if (typeof record === "string" || record.size !== place.size) {
            return yield* new CorruptRecord({
              file: segment.name,
              position: place.position,
              reason: typeof record === "string" ? record : "size differs from the index"
            })
          }
          out.push(record)
        }
        i = j
      }
      return out
    })

  // Segments are contiguous (each starts where the previous ends), so a scan walks across them.
  const scan = (position: number, maxBytes: number) =>
    Effect.gen(function*() {
      if (position < segments[0]!.base || position > endOf()) return yield* outOfRange(position)
      const out: Array<Located> = []
      let at = position
      let budget = maxBytes
      while (at < endOf() && (budget > 0 || out.length === 0)) {
        const segment = segmentOf(at)
        if (segment === undefined) return yield* outOfRange(at)
        const available = segment.base + segment.size - at
        const bytes = yield* segment.file.read(at - segment.base, Math.min(available, Math.max(budget, HeaderBytes)))
        const corrupt = (offset: number, reason: string) =>
          new CorruptRecord({ file: segment.name, position: at + offset, reason })
        let inChunk = 0
        while (bytes.length - inChunk >= HeaderBytes) {
          const length = headerProblem(bytes, inChunk)
          if (typeof length === "string") return yield* corrupt(inChunk, length)
          if (bytes.length - inChunk < HeaderBytes + length) break
          const record = decodeAt(bytes, inChunk, at + inChunk)
          if (typeof record === "string") return yield* corrupt(inChunk, record)
          out.push(record)
          inChunk += record.size
        }
        if (inChunk === 0) {
          // one record larger than the budget: returned whole when it is the first, so scans progress
          if (out.length > 0) break
          const length = headerProblem(bytes, 0)
          if (typeof length === "string") return yield* corrupt(0, length)
          const whole = yield* read(at, HeaderBytes + length)
          out.push(whole)
          inChunk = whole.size
        }
        at += inChunk
        budget -= inChunk
      }
      return out
    })

  const deleteBefore = (position: number) =>
    Effect.gen(function*() {
      while (segments.length > 1 && segments[0]!.base + segments[0]!.size <= position) {
        const doomed = segments.shift()!
        yield* disk.remove(join(options.directory, doomed.name))
      }
      yield* disk.syncDirectory(options.directory)
      return segments[0]!.base
    })

  const truncate = (position: number) =>
    Effect.gen(function*() {
      while (segments.length > 1 && active().base >= position && active().base > segments[0]!.base) {
        const doomed = segments.pop()!
        unsynced.delete(doomed)
        yield* disk.remove(join(options.directory, doomed.name))
      }
      const segment = active()
      const keep = Math.max(0, position - segment.base)
      if (keep < segment.size) {
        yield* segment.file.truncate(keep)
        segment.size = keep
        unsynced.add(segment)
      }
      syncedEnd = Math.min(syncedEnd, endOf())
      yield* disk.syncDirectory(options.directory)
    })

  const log: CommitLog = {
    append,
    readMany,
    truncate,
    sync,
    read,
    scan,
    start: Effect.sync(() => segments[0]!.base),
    end: Effect.sync(endOf),
    synced: Effect.sync(() => syncedEnd),
    segments: Effect.sync(() => segments.map((s) => ({ file: s.name, base: s.base, size: s.size }))),
    deleteBefore
  }
  const recovery: Recovery = { scanned, bytesScanned, truncatedBytes, damage }
  return { log, recovery }
})
