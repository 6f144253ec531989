/**
 * Committed consumer offsets: for each consumer group, topic and queue, the next offset the group
 * will read. Kept durably in one small file, rewritten atomically on every commit.
 *
 * @since 0.1.0
 */
import { Disk } from "@strait/storage"
import { Effect, Schema, Semaphore } from "effect"

const File = Schema.Struct({
  version: Schema.Literal(1),
  offsets: Schema.Array(Schema.Struct({ group: Schema.String, topic: Schema.String, queueId: Schema.Int, offset: Schema.Int })),
  /** The offset of `%POP%` where the latest snapshot of Pop consumer state starts (see `Consumption`). */
  stateSnapshotFrom: Schema.optionalKey(Schema.Int)
})
const encodeFile = Schema.encodeSync(Schema.toCodecJson(File))
const decodeFile = Schema.decodeUnknownSync(Schema.toCodecJson(File))

const keyOf = (group: string, topic: string, queueId: number) => `${group}\u0000${topic}\u0000${queueId}`

/**
 * Opens the offsets kept at `path`.
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(path: string) {
  const disk = yield* Disk.Disk
  const offsets = new Map<string, { readonly group: string; readonly topic: string; readonly queueId: number; offset: number }>()
  const bytes = yield* Disk.readSmallFile(path)
  let stateSnapshotFrom = 0
  if (bytes !== undefined) {
    const file = decodeFile(JSON.parse(new TextDecoder().decode(bytes)))
    for (const entry of file.offsets) offsets.set(keyOf(entry.group, entry.topic, entry.queueId), { ...entry })
    stateSnapshotFrom = file.stateSnapshotFrom ?? 0
  }
  const writes = yield* Semaphore.make(1)
  const save = Effect.suspend(() =>
    Disk.writeFileAtomically(
      path,
      new TextEncoder().encode(JSON.stringify(encodeFile({ version: 1, offsets: [...offsets.values()], stateSnapshotFrom })))
    )
  ).pipe(Effect.provideService(Disk.Disk, disk))

  return {
    /** The committed offset, or `undefined` if the group never committed on that queue. */
    get: (group: string, topic: string, queueId: number) =>
      Effect.sync(() => offsets.get(keyOf(group, topic, queueId))?.offset),
    /** Commits durably: answered after the file holding it is synced. */
    commit: (entries: ReadonlyArray<{ readonly group: string; readonly topic: string; readonly queueId: number; readonly offset: number }>) =>
      writes.withPermits(1)(Effect.gen(function*() {
        const previous = entries.map((e) => offsets.get(keyOf(e.group, e.topic, e.queueId)))
        for (const entry of entries) offsets.set(keyOf(entry.group, entry.topic, entry.queueId), { ...entry })
        yield* save.pipe(Effect.tapError(() =>
          Effect.sync(() =>
            entries.forEach((entry, i) => {
              const before = previous[i]
              if (before === undefined) offsets.delete(keyOf(entry.group, entry.topic, entry.queueId))
              else offsets.set(keyOf(entry.group, entry.topic, entry.queueId), before)
            })
          )
        ))
      })),
    /** Where the latest snapshot of Pop consumer state starts (0 before the first). */
    stateSnapshotFrom: () => stateSnapshotFrom,
    /** Records, durably, where the latest snapshot of Pop consumer state starts. */
    setStateSnapshotFrom: (offset: number) =>
      writes.withPermits(1)(Effect.suspend(() => {
        const before = stateSnapshotFrom
        stateSnapshotFrom = offset
        return save.pipe(Effect.tapError(() => Effect.sync(() => { stateSnapshotFrom = before })))
      })),
    /** Every committed offset of a group. */
    ofGroup: (group: string) =>
      Effect.sync(() => [...offsets.values()].filter((entry) => entry.group === group).map((entry) => ({ ...entry })))
  }
})
