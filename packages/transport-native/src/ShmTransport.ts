/**
 * The shared-memory `Transport` Layer: `shm:///path/to.sock` between processes of one host. The
 * bytes go through two single-producer single-consumer rings in a sealed memfd (the C++ addon of
 * `native/shm`); a Unix domain socket at the path sets the link up and carries the doorbells and
 * the peer's death. Over the rings runs the same connection engine as TCP and memory (framing,
 * back-pressure, heartbeats, GOAWAY), so it passes the same contract.
 *
 * `available()` says whether the addon loaded here; without it `layer` fails to build with the
 * reason, and callers use TCP.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { Connection } from "@strait/transport"
import { Context, Duration, Effect, Layer } from "effect"
import type { Socket } from "node:net"
import * as Addon from "./adapters/Addon.ts"
import * as ShmNet from "./adapters/ShmNet.ts"
import { availableParallelism } from "node:os"

/**
 * Shared-memory tunables.
 *
 * @since 0.1.0
 */
export const ShmSettings = Context.Reference<{
  /** Bytes of each ring (one per direction): a power of two from 4 KiB to 1 GiB. */
  readonly capacity: number
  readonly connectTimeout: Duration.Input
  /** Accepted connections waiting for the server to take them. */
  readonly acceptBacklog: number
  /**
   * Whether a reader finding its ring empty watches it for up to 20 µs before it sleeps (saving the
   * writer a doorbell and itself a wake-up), as long as that pays (`native/shm/src/spin.h`: 80 % of
   * spins see data, at most 5 % of a CPU). Default: `adaptive` on machines with more than 2 CPUs,
   * `off` on smaller ones, where the spinner takes the CPU its writer needs.
   */
  readonly spin?: "off" | "adaptive"
}>("@strait/transport-native/ShmTransport/ShmSettings", {
  defaultValue: () => ({ capacity: 4 * 1024 * 1024, connectTimeout: Duration.seconds(5), acceptBacklog: 1024 })
})

/**
 * The spin a link's readers use under `settings`: 20 µs when adaptive spinning is on (explicitly,
 * or by default on a machine with more than 2 CPUs), else 0.
 *
 * @since 0.1.0
 */
export const spinMicros = (spin: "off" | "adaptive" | undefined, cpus: number = availableParallelism()): number =>
  (spin ?? (cpus > 2 ? "adaptive" : "off")) === "adaptive" ? 20 : 0

/**
 * The shared-memory Layer cannot run here: the addon is not built, or did not load.
 *
 * @since 0.1.0
 */
export class ShmUnavailable extends Error {
  override readonly name = "ShmUnavailable"
}

/**
 * Whether shared memory is available here, and why not.
 *
 * @since 0.1.0
 */
export const available = (): { readonly available: true } | { readonly available: false; readonly reason: string } => {
  const loaded = Addon.addon()
  return typeof loaded === "string" ? { available: false, reason: loaded } : { available: true }
}

const pathOf = (address: string) => {
  const parsed = Transport.parseAddress(address, ["shm"])
  if (parsed instanceof Transport.InvalidAddress) return parsed
  if (!parsed.rest.startsWith("/") || parsed.rest.length > 100) {
    return new Transport.InvalidAddress({ address, reason: "expected shm:///absolute/path (at most 100 bytes)" })
  }
  return parsed.rest
}

const make = (addon: Addon.Addon) =>
  Effect.map(Effect.service(ShmSettings), (settings) => {
    const handoverMillis = Duration.toMillis(settings.connectTimeout)
    const spin = spinMicros(settings.spin)
    return Connection.socketTransport<string, Socket>({
      scheme: "shm",
      parse: pathOf,
      acceptBacklog: settings.acceptBacklog,
      connectTimeout: settings.connectTimeout,
      start: (path) => (onSocket) => Effect.map(ShmNet.listen(path, onSocket), (server) => ({ address: `shm://${path}`, close: ShmNet.close(server) })),
      pipeOf: (socket) => ShmNet.acceptLink(addon, socket, handoverMillis, spin),
      remoteOf: (_, path) => `shm://${path}#peer`,
      open: (path) => ShmNet.connect(addon, path, settings.capacity, spin)
    })
  })

/**
 * The shared-memory Transport; fails to build with `ShmUnavailable` (and why) where the addon is not
 * available.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport, ShmUnavailable> = Layer.effect(
  Transport.Transport,
  Effect.suspend(() => {
    const loaded = Addon.addon()
    return typeof loaded === "string" ? Effect.fail(new ShmUnavailable(loaded)) : make(loaded)
  })
)
