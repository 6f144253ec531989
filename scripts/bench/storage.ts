// Storage bench, in one run on this machine's disk: the physical limits first (raw sequential write
// bandwidth, raw fdatasync rate, with the same system calls the real Disk makes), then 1 KiB appends
// through the Store under `async` and `sync` with 1, 16 and 256 concurrent appenders, CPU per append
// next to a CRC32C + copy of 1 KiB, and recovery speed of a large log. The append runs go to one
// store, as a running broker's do, after an untimed warm-up in it (JIT, heap sized for the store's
// recent-record cache: the first 200,000 appends into a store measured 3–5 µs each, falling to a
// steady 2.3–2.6 µs after 600,000), and in a process with the V8 settings a Strait node runs with (the
// bench re-executes itself with them, as `strait` does: @strait/cli's nodeFlags.ts).
import { applyStraitNodeFlags } from "@strait/cli/nodeFlags"
import { EventLoopScheduler } from "@strait/core"
import { CommitLog, Crc32c, Disk, RealDisk, Store } from "@strait/storage"
import { Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { emit, median, table } from "./lib/report.ts"

applyStraitNodeFlags()

const KiB = 1024
const MiB = 1024 * KiB
const RAW_BYTES = 256 * MiB
const RAW_SYNCS = 2_000
const APPENDS = 100_000
// every append run this many times (STRAIT_BENCH_ROUNDS), each figure the median: the machine is noisy
const ROUNDS = Number(process.env.STRAIT_BENCH_ROUNDS ?? 3)
const WARMUP_APPENDS = 600_000
const RECOVERY_BYTES = Number(process.env.STRAIT_BENCH_RECOVERY_MIB ?? 1024) * MiB
const root = fs.mkdtempSync(path.join(os.tmpdir(), "strait-bench-storage-"))
const now = () => performance.now()
// what a Strait process runs on (see EventLoopScheduler)
const scheduler = EventLoopScheduler.make()

const callback = <A>(register: (done: (error: NodeJS.ErrnoException | null, value?: A) => void) => void) =>
  new Promise<A>((resolve, reject) => register((error, value) => (error ? reject(error) : resolve(value as A))))

/**
 * Sequential 1 MiB vectored writes of `bytes` into a new file, then one fdatasync: the disk's write
 * bandwidth. The file stays until the bench ends when `keep` (freeing its pages mid-run would hand the
 * next append run memory the machine has just used, which is faster to write into: see `appendRuns`).
 */
const rawBandwidth = async (bytes: number, name: string, keep: boolean) => {
  const file = path.join(root, name)
  const fd = await callback<number>((done) => fs.open(file, "w", done))
  const chunk = new Uint8Array(MiB).fill(7)
  const start = now()
  for (let position = 0; position < bytes; position += MiB) {
    await callback((done) => fs.writev(fd, [chunk], position, done))
  }
  await callback((done) => fs.fdatasync(fd, done))
  const seconds = (now() - start) / 1000
  await callback((done) => fs.close(fd, done))
  if (!keep) fs.rmSync(file)
  return bytes / MiB / seconds
}

/**
 * Writes of `bytes` each followed by an fdatasync, one after another, appending to a new file: how
 * many durable writes a second the disk allows. With 1 KiB, the disk's fdatasync rate; with what a
 * group commit of 256 appends writes, how many group commits a second it allows (256 closed-loop
 * `sync` appenders can go no faster than 256 records per such cycle). The file stays until the bench
 * ends when `keep`.
 */
const rawSyncedWrites = async (bytes: number, cycles: number, name: string, keep: boolean) => {
  const file = path.join(root, name)
  const fd = await callback<number>((done) => fs.open(file, "w", done))
  const chunk = new Uint8Array(bytes).fill(7)
  const start = now()
  for (let i = 0; i < cycles; i++) {
    await callback((done) => fs.writev(fd, [chunk], i * bytes, done))
    await callback((done) => fs.fdatasync(fd, done))
  }
  const seconds = (now() - start) / 1000
  await callback((done) => fs.close(fd, done))
  if (!keep) fs.rmSync(file)
  return cycles / seconds
}

/** CRC32C of 1 KiB plus a 1 KiB copy: the work an append cannot avoid (its median of 5 is the baseline). */
const crcAndCopyMicros = () => {
  const source = new Uint8Array(KiB).map((_, i) => i & 0xff)
  const target = new Uint8Array(KiB)
  const rounds = 200_000
  let sink = 0
  const start = now()
  for (let i = 0; i < rounds; i++) {
    target.set(source)
    sink ^= Crc32c.crc32c(target)
  }
  const micros = ((now() - start) * 1000) / rounds
  return sink === 0.5 ? 0 : micros
}

const settings = { ...Store.StoreSettings.defaultValue(), segmentBytes: 128 * MiB }

const withStore = <A>(directory: string, counters: Disk.Counters, body: (store: Store.Store) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(Store.open(directory), body)).pipe(
      Effect.provideService(Store.StoreSettings, settings),
      Effect.provide(Disk.layerCounting(counters).pipe(Layer.provide(RealDisk.layer)))
    ),
    { scheduler }
  )

interface AppendRun {
  readonly policy: Store.FlushPolicy
  readonly appenders: number
  readonly perSecond: number
  readonly megabytesPerSecond: number
  readonly recordsPerSync: number
  readonly cpuMicrosPerAppend: number
}

/** `appenders` fibers each append their share of 1 KiB messages to `store`, one message per append. */
const appendRun = (store: Store.Store, counters: Disk.Counters, policy: Store.FlushPolicy, appenders: number, count: number) =>
  Effect.gen(function*() {
    const message = { body: new Uint8Array(KiB).map((_, i) => i & 0xff), tagHash: 0 }
    const syncsBefore = counters.datasyncs
    const cpu = process.cpuUsage()
    const start = now()
    yield* Effect.forEach(Array.from({ length: appenders }, (_, a) => a), (a) =>
      Effect.gen(function*() {
        for (let i = a; i < count; i += appenders) yield* store.append({ topic: "bench", queueId: a % 8 }, [message], policy)
      }), { concurrency: "unbounded", discard: true })
    const seconds = (now() - start) / 1000
    const used = process.cpuUsage(cpu)
    const run: AppendRun = {
      policy,
      appenders,
      perSecond: count / seconds,
      megabytesPerSecond: (count * KiB) / MiB / seconds,
      recordsPerSync: policy === "sync" ? count / Math.max(1, counters.datasyncs - syncsBefore) : Number.NaN,
      cpuMicrosPerAppend: (used.user + used.system) / count
    }
    return run
  })

/** Each figure of a run's rounds, the median. */
const medianRun = (rounds: ReadonlyArray<AppendRun>): AppendRun => ({
  policy: rounds[0]!.policy,
  appenders: rounds[0]!.appenders,
  perSecond: median(rounds.map((r) => r.perSecond)),
  megabytesPerSecond: median(rounds.map((r) => r.megabytesPerSecond)),
  recordsPerSync: median(rounds.map((r) => r.recordsPerSync)),
  cpuMicrosPerAppend: median(rounds.map((r) => r.cpuMicrosPerAppend))
})

// A group commit of 256 appends writes 256 records of 1 KiB and a header each.
const GROUP_COMMIT_BYTES = 256 * (KiB + CommitLog.HeaderBytes)

/**
 * The untimed warm-up, then every measured run `ROUNDS` times, in one store. In each round, right
 * before the 256-appender runs, the raw figures they are compared with, measured at the same point:
 * the same bytes of raw 1 MiB writes as the async run appends, and raw group commits before the sync
 * run. On this machine (a VM) the first few hundred MiB of new page cache a process writes take
 * ~35 µs a 256 KiB write and the rest ~470 µs (2 GiB of raw writes: 5,455 MiB/s for the first 256 MiB,
 * 520–560 MiB/s for every 256 MiB after it), so a raw figure taken before the store has written
 * anything measures a burst the store's runs, past their warm-up, never see.
 */
const appendRuns = async () => {
  const directory = path.join(root, "appends")
  const counters: Disk.Counters = { datasyncs: 0, bytesWritten: 0 }
  const rawInRound: Array<number> = []
  const groupCommitsInRound: Array<number> = []
  const runs = await withStore(directory, counters, (store) =>
    Effect.gen(function*() {
      yield* appendRun(store, counters, "async", 256, WARMUP_APPENDS)
      const rounds = new Map<string, Array<AppendRun>>()
      for (let round = 0; round < ROUNDS; round++) {
        for (const policy of ["async", "sync"] as const) {
          for (const appenders of [1, 16, 256]) {
            if (appenders === 256 && policy === "async") {
              rawInRound.push(yield* Effect.promise(() => rawBandwidth(APPENDS * (KiB + CommitLog.HeaderBytes), `raw-round-${round}`, true)))
            }
            if (appenders === 256 && policy === "sync") {
              groupCommitsInRound.push(yield* Effect.promise(() => rawSyncedWrites(GROUP_COMMIT_BYTES, 400, `raw-commits-${round}`, true)))
            }
            // one appender under sync is bounded by the raw fdatasync rate: fewer messages keep it short
            const run = yield* appendRun(store, counters, policy, appenders, policy === "sync" && appenders === 1 ? 2_000 : APPENDS)
            const key = `${policy}-${appenders}`
            rounds.set(key, [...(rounds.get(key) ?? []), run])
          }
        }
      }
      return [...rounds.values()].map(medianRun)
    }))
  fs.rmSync(directory, { recursive: true, force: true })
  return { runs, rawInRound: median(rawInRound), groupCommitsPerSecond: median(groupCommitsInRound) }
}

/** Writes a log of about `bytes`, forgets its checkpoint (as after a crash), and times reopening. */
const recovery = async (bytes: number) => {
  const directory = path.join(root, "recovery")
  const counters: Disk.Counters = { datasyncs: 0, bytesWritten: 0 }
  const body = new Uint8Array(16 * KiB).map((_, i) => i & 0xff)
  const batch = Array.from({ length: 16 }, () => ({ body, tagHash: 0 }))
  await withStore(directory, counters, (store) =>
    Effect.gen(function*() {
      for (let written = 0; written < bytes; written += 16 * body.length) {
        yield* store.append({ topic: "bench", queueId: 0 }, batch, "async")
      }
    }))
  fs.rmSync(path.join(directory, "checkpoint"))
  const start = now()
  const scanned = await Effect.runPromise(
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const store = yield* Store.open(directory).pipe(Scope.provide(scope))
      const result = store.recovery.bytesScanned
      yield* Scope.close(scope, Exit.void)
      return result
    }).pipe(Effect.provideService(Store.StoreSettings, settings), Effect.provide(RealDisk.layer)),
    { scheduler }
  )
  const seconds = (now() - start) / 1000
  fs.rmSync(directory, { recursive: true, force: true })
  return { scanned, seconds, megabytesPerSecond: scanned / MiB / seconds }
}

try {
  const burst = await rawBandwidth(RAW_BYTES, "raw-bandwidth", false)
  const syncRate = await rawSyncedWrites(KiB, RAW_SYNCS, "raw-sync", false)
  const crcCopy = median(Array.from({ length: 5 }, crcAndCopyMicros))
  const { groupCommitsPerSecond, rawInRound, runs } = await appendRuns()
  const recovered = await recovery(RECOVERY_BYTES)
  const find = (policy: Store.FlushPolicy, appenders: number) => runs.find((r) => r.policy === policy && r.appenders === appenders)!
  // 256 closed-loop sync appenders wait, all of them, on each group commit: at most 256 records a cycle
  const syncBound = 256 * groupCommitsPerSecond

  table("the disk, raw (same system calls as the real Disk)", [
    { measure: "sequential writes, 1 MiB writev, first 256 MiB of the run", value: `${burst.toFixed(0)} MiB/s` },
    { measure: "sequential writes, 1 MiB writev, in each round (median)", value: `${rawInRound.toFixed(0)} MiB/s` },
    { measure: "1 KiB write + fdatasync", value: `${syncRate.toFixed(0)} /s` },
    { measure: `${(GROUP_COMMIT_BYTES / KiB).toFixed(0)} KiB write + fdatasync, in each round (median)`, value: `${groupCommitsPerSecond.toFixed(0)} /s` },
    { measure: "CRC32C + copy of 1 KiB", value: `${crcCopy.toFixed(3)} µs` }
  ])
  table(`1 KiB appends through the Store (${APPENDS.toLocaleString("en-US")} per run, median of ${ROUNDS} rounds)`, runs.map((run) => ({
    policy: run.policy,
    appenders: run.appenders,
    "msgs/s": run.perSecond,
    "MiB/s": run.megabytesPerSecond,
    "records/fdatasync": Number.isNaN(run.recordsPerSync) ? "-" : run.recordsPerSync,
    "CPU µs/append": run.cpuMicrosPerAppend
  })))
  table("what the disk allows 256 closed-loop sync appenders (256 records per write + fdatasync)", [
    { measure: "at most, msgs/s", value: syncBound },
    { measure: "of the async run's msgs/s", value: syncBound / find("async", 256).perSecond },
    { measure: "sync run's msgs/s, of that bound", value: find("sync", 256).perSecond / syncBound }
  ])
  table("recovery (checkpoint removed, every record verified)", [
    { log: `${(recovered.scanned / MiB).toFixed(0)} MiB`, seconds: recovered.seconds, "MB/s": recovered.megabytesPerSecond }
  ])

  emit("storage", {
    sync_vs_async_throughput: find("sync", 256).perSecond / find("async", 256).perSecond,
    records_per_fdatasync: find("sync", 256).recordsPerSync,
    async_vs_raw_bandwidth: find("async", 256).megabytesPerSecond / rawInRound,
    cpu_per_append_vs_crc_copy: find("async", 256).cpuMicrosPerAppend / crcCopy,
    recovery_mb_per_s: recovered.megabytesPerSecond
  }, {
    node: process.version,
    raw_write_mib_per_s: rawInRound,
    raw_write_first_256_mib_per_s: burst,
    async_vs_first_256_mib: find("async", 256).megabytesPerSecond / burst,
    raw_fdatasync_per_s: syncRate,
    raw_group_commits_per_s: groupCommitsPerSecond,
    sync_256_bound_msgs_per_s: syncBound,
    sync_256_bound_vs_async: syncBound / find("async", 256).perSecond,
    crc_copy_us: crcCopy,
    crc_native: Crc32c.isNative ? "yes" : "no",
    ...Object.fromEntries(runs.flatMap((run) => [
      [`${run.policy}_${run.appenders}_msgs_per_s`, run.perSecond],
      [`${run.policy}_${run.appenders}_cpu_us`, run.cpuMicrosPerAppend],
      ...(run.policy === "sync" ? [[`sync_${run.appenders}_records_per_fdatasync`, run.recordsPerSync]] : [])
    ])),
    recovery_log_mib: recovered.scanned / MiB,
    recovery_seconds: recovered.seconds
  })
} finally {
  fs.rmSync(root, { recursive: true, force: true })
}
