/**
 * This host's identity for shared memory: the kernel's boot id and this process's network
 * namespace. Two processes may link through shared memory only when both match: the same kernel
 * since its last boot, and no container boundary between them that hides each other's sockets.
 *
 * @since 0.1.0
 */
import { readFileSync, statSync } from "node:fs"

let known: string | undefined

/**
 * The host id, or `undefined` where it cannot be read (not Linux, no /proc).
 *
 * @since 0.1.0
 */
export const hostId = (): string | undefined => {
  if (known !== undefined) return known
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
    const namespace = statSync("/proc/self/ns/net").ino
    known = `${boot}/${namespace}`
    return known
  } catch {
    return undefined
  }
}
