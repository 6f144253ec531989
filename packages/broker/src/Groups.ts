/**
 * Consumer group settings, kept durably in one small file. A group nobody configured gets the
 * defaults (RocketMQ creates subscription groups on first use).
 *
 * @since 0.1.0
 */
import { ConsumerGroup } from "@strait/core"
import { Disk } from "@strait/storage"
import { Effect, Schema, Semaphore } from "effect"

const File = Schema.Struct({ version: Schema.Literal(1), groups: Schema.Array(ConsumerGroup.ConsumerGroup) })
const encodeFile = Schema.encodeSync(Schema.toCodecJson(File))
const decodeFile = Schema.decodeUnknownSync(Schema.toCodecJson(File))

/**
 * Opens the group settings kept at `path`.
 *
 * @since 0.1.0
 */
export const open = Effect.fnUntraced(function*(path: string) {
  const disk = yield* Disk.Disk
  const groups = new Map<string, ConsumerGroup.ConsumerGroup>()
  const bytes = yield* Disk.readSmallFile(path)
  if (bytes !== undefined) {
    for (const group of decodeFile(JSON.parse(new TextDecoder().decode(bytes))).groups) groups.set(group.name, group)
  }
  const writes = yield* Semaphore.make(1)
  const save = Effect.suspend(() =>
    Disk.writeFileAtomically(path, new TextEncoder().encode(JSON.stringify(encodeFile({ version: 1, groups: [...groups.values()] }))))
  ).pipe(Effect.provideService(Disk.Disk, disk))
  const seen = new Set<string>()
  // the defaults of groups nobody configured, built once per name
  const defaults = new Map<string, ConsumerGroup.ConsumerGroup>()
  const defaultsOf = (name: string) => {
    let group = defaults.get(name)
    if (group === undefined) defaults.set(name, group = new ConsumerGroup.ConsumerGroup({ name: name as ConsumerGroup.ConsumerGroupName }))
    return group
  }

  const names = () => [...new Set([...groups.keys(), ...seen])]

  return {
    /** The group's settings; the defaults for a group nobody configured. */
    get: (name: string) =>
      Effect.sync(() => {
        const group = groups.get(name) ?? defaultsOf(name)
        // only once it is known to be a group: a name that is not one is never listed
        seen.add(name)
        return group
      }),
    set: (group: ConsumerGroup.ConsumerGroup) =>
      writes.withPermits(1)(Effect.suspend(() => {
        const before = groups.get(group.name)
        groups.set(group.name, group)
        seen.add(group.name)
        return save.pipe(Effect.tapError(() =>
          Effect.sync(() => (before === undefined ? groups.delete(group.name) : groups.set(group.name, before)))
        ))
      })),
    /** Every group configured or used since opening. */
    names,
    /** The settings of every group configured or used since opening. */
    list: Effect.sync(() => names().map((name) => groups.get(name) ?? defaultsOf(name)))
  }
})
