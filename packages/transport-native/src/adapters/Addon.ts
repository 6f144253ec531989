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
 * One link's two rings in a mapped memfd, as the addon exposes them (see `native/shm/src/addon.cc`).
 *
 * @since 0.1.0
 */
export interface Link {
  /** Copies bytes of `chunks` (from byte `skip` of the first) into the ring; how many it took (0: full). */
  write(chunks: ReadonlyArray<Uint8Array>, skip: number): number
  /** After a write: whether the reader sleeps (the flag is taken): ring its doorbell. */
  wakeReader(): boolean
  /** Before waiting for room: true when room for `wanted` bytes appeared meanwhile. */
  armWritable(wanted: number): boolean
  /** The bytes published and not yet read (a copy, at most about `maxBytes`), released; null when none. Throws on a corrupt record. */
  read(maxBytes: number): Uint8Array | null
  /** Before waiting for data: true when data (or the peer's end) appeared meanwhile. */
  armReadable(): boolean
  /** After a read: whether the writer waits for room (the flag is taken): ring its doorbell. */
  wakeWriter(): boolean
  /** No more bytes from this side. */
  endWrite(): void
  /** The peer ended its side and everything it wrote was read. */
  ended(): boolean
  unmap(): void
  /** `write` then `wakeReader` in one call: the bytes taken, negated when the reader must be woken. */
  send(chunks: ReadonlyArray<Uint8Array>, skip: number): number
  /**
   * `read`, `wakeWriter` and, when nothing was there, `ended` and `armReadable`, in one call; `state`
   * gets [1 when the writer must be woken, then 0 asleep, 1 data came meanwhile, 2 the peer ended].
   */
  take(maxBytes: number, state: Int32Array): Uint8Array | null
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
  sendFd(socketFd: number, fd: number, capacity: number): void
  recvFd(socketFd: number): { readonly fd: number; readonly capacity: number } | null
  closeFd(fd: number): void
  /** One doorbell byte on a connected socket, written directly; false when the socket is gone. */
  ring(socketFd: number): boolean
  /** RDMA verbs here: never available in this build, with the reason (and the devices, if any). */
  probeVerbs(): { readonly available: false; readonly reason: string; readonly errno?: number; readonly devices?: ReadonlyArray<string> }
  readonly Link: new(fd: number, side: 0 | 1, capacity: number) => Link
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
