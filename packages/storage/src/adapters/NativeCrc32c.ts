/**
 * The native CRC32C from `@node-rs/crc32`, when its prebuilt binary loads on this machine.
 *
 * It ships as per-platform npm packages (no install script, no download); where none fits, or it
 * fails to load, this is `undefined` and the portable implementation is used.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"

type Native = (input: Uint8Array, initial?: number) => number

const load = (): Native | undefined => {
  try {
    const loaded = createRequire(import.meta.url)("@node-rs/crc32") as { readonly crc32c?: Native }
    return typeof loaded.crc32c === "function" ? loaded.crc32c : undefined
  } catch {
    return undefined
  }
}

/** The native `crc32c(input, initial)`, or `undefined`. */
export const nativeCrc32c: Native | undefined = load()
