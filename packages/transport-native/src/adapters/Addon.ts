/**
 * The C++ addon (`native/shm`, built by `scripts/build-native.ts` with the machine's g++), loaded
 * once, or the reason it cannot be: the shared-memory Layer is offered only when it loads.
 *
 * @since 0.1.0
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

/**
 * What every link of two rings offers its pipe (`RingPipe`): the shared-memory `Link` and the RDMA
 * `VerbsLink`.
 *
 * @since 0.1.0
 */
export interface RingLink {
  /** Copies bytes of `chunks` (from byte `skip` of the first) into the outgoing ring, waking the reader if it sleeps: the bytes taken. */
  send(chunks: ReadonlyArray<Uint8Array>, skip: number): number
  /**
   * Copies the published records (whole, at most `limit` bytes) into `target` from byte `offset` and
   * releases them (waking the writer if it waits for room): the bytes copied, or minus the length of
   * the next record when it does not fit (nothing copied). `state[0]` gets, when nothing was copied,
   * 0 asleep, 1 data came meanwhile, 2 the peer ended. Throws when the link is poisoned (a corrupt
   * record, a failed RDMA operation).
   */
  takeInto(target: Uint8Array, offset: number, limit: number, state: Int32Array): number
  /** Before waiting for room: true when room for `wanted` bytes appeared meanwhile. */
  armWritable(wanted: number): boolean
  /** No more bytes from this side (the reader is woken). */
  endWrite(): void
  /** Runs `handler` whenever the peer woke this side (data, room, its end, a failure). */
  onWake(handler: () => void): void
  unmap(): void
}

/**
 * What one side of an RDMA link tells the other (over the TCP side channel) to connect: its queue
 * pair, and where the peer writes (its receive ring, its credit word) with the keys.
 *
 * @since 0.1.0
 */
export interface VerbsHello {
  readonly qpn: number
  readonly psn: number
  readonly lid: number
  readonly gid: Uint8Array
  readonly mtu: number
  readonly ringAddr: bigint
  readonly ringKey: number
  readonly capacity: number
  readonly creditAddr: bigint
  readonly creditKey: number
}

/**
 * One RDMA link (see `native/shm/src/verbs.cc`): the ring format of shared memory carried by RDMA
 * WRITE with immediate data.
 *
 * @since 0.1.0
 */
export interface VerbsLink extends RingLink {
  hello(): VerbsHello
  /** Moves the queue pair to ready-to-send against the peer's hello. */
  connect(peer: VerbsHello): void
}

/**
 * One link's two rings in a mapped memfd, as the addon exposes them (see `native/shm/src/addon.cc`).
 *
 * @since 0.1.0
 */
export interface Link extends RingLink {
  /** After a write: whether the reader sleeps (the flag is taken): ring its doorbell (links without bells). */
  wakeReader(): boolean
  /** Copies bytes of `chunks` (from byte `skip` of the first) into the ring; how many it took (0: full). */
  write(chunks: ReadonlyArray<Uint8Array>, skip: number): number
  /** The bytes published and not yet read (a copy, at most about `maxBytes`), released; null when none. Throws on a corrupt record. */
  read(maxBytes: number): Uint8Array | null
  /** Before waiting for data: true when data (or the peer's end) appeared meanwhile. */
  armReadable(): boolean
  /** After a read: whether the writer waits for room (the flag is taken): ring its doorbell. */
  wakeWriter(): boolean
  /** The peer ended its side and everything it wrote was read. */
  ended(): boolean
  /** How often the reader spun on an empty ring, and how often data came while it did. */
  spins(): [number, number]
}

/**
 * The reader's adaptive spin policy (`native/shm/src/spin.h`).
 *
 * @since 0.1.0
 */
export interface SpinPolicy {
  shouldSpin(nowNanos: number): boolean
  record(won: boolean, spentNanos: number, nowNanos: number): void
}

/**
 * The addon's functions.
 *
 * @since 0.1.0
 */
export interface Addon {
  readonly abiVersion: number
  createMemfd(capacity: number): number
  checkMemfd(fd: number, capacity: number): boolean
  /** An eventfd: a side's doorbell. */
  createBell(): number
  /** Passes descriptors (the memfd, then the two doorbells) and the capacity over a connected Unix socket. */
  sendFds(socketFd: number, fds: ReadonlyArray<number>, capacity: number): void
  /** What `sendFds` passed, or null when nothing came yet; throws on a malformed hand-over. */
  recvFds(socketFd: number): { readonly fds: ReadonlyArray<number>; readonly capacity: number } | null
  closeFd(fd: number): void
  /** A buffer of `slabBytes` to read into, whose memory is reused once the garbage collector frees it. */
  slab(): Uint8Array
  readonly slabBytes: number
  /** RDMA verbs here: available with the devices, or the reason not (and the devices, if any). */
  probeVerbs(): { readonly available: boolean; readonly reason?: string; readonly errno?: number; readonly devices?: ReadonlyArray<string> }
  /** Whether this build has the libibverbs backend (its headers existed when it was compiled). */
  readonly verbsCompiled: boolean
  /**
   * `spinMicros`: how long a reader finding its ring empty may watch it before sleeping (0: never;
   * adaptive, see `spin.h`); `bell` and `peerBell`: this side's doorbell and the peer's (eventfds the
   * link owns from then on), without which it wakes nobody itself.
   */
  readonly Link: new(fd: number, side: 0 | 1, capacity: number, spinMicros?: number, bell?: number, peerBell?: number) => Link
  /** The spin policy alone (times in nanoseconds, the caller's). */
  readonly SpinPolicy: new(spinNanos: number) => SpinPolicy
  /** An RDMA link on `device` ("loopback": the in-process test fabric), `port` from 1, `gidIndex` for RoCE. */
  readonly VerbsLink: new(device: string, capacity: number, psn: number, port: number, gidIndex: number) => VerbsLink
}

/**
 * Where the built addon is.
 *
 * @since 0.1.0
 */
export const addonPath = fileURLToPath(new URL("../../../../native/shm/build/strait_shm.node", import.meta.url))

const load = (): Addon | string => {
  if (process.platform !== "linux") return `shared memory needs Linux (memfd); this is ${process.platform}`
  if (!existsSync(addonPath)) return `the addon is not built (${addonPath}; npm run build:native needs g++)`
  try {
    const addon = createRequire(import.meta.url)(addonPath) as Addon
    return addon.abiVersion === 1 ? addon : `the addon at ${addonPath} is of another version (${addon.abiVersion})`
  } catch (error) {
    return `the addon did not load: ${error instanceof Error ? error.message : String(error)}`
  }
}

let loaded: Addon | string | undefined

/**
 * The addon, or why it is not available (loaded on first use).
 *
 * @since 0.1.0
 */
export const addon = (): Addon | string => (loaded ??= load())
