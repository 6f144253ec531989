/**
 * The RDMA `Transport` Layer: `rdma://host:port` between hosts whose RDMA devices reach each other.
 * The address is a TCP side channel: it sets each link up (queue pairs, registered rings, keys) and
 * stays open to report the peer's death. The bytes go as RDMA WRITE with immediate data into the
 * peer's ring (the addon's `VerbsLink`: the ring format of shared memory, credit words written back
 * by the reader, completions on the Node event loop). Over it runs the same connection engine as
 * TCP and shared memory, so it passes the same contract.
 *
 * `available()` says whether verbs can run here (the addon has the backend and a device answers);
 * otherwise `layer` fails to build with the reason, and callers use TCP. The settings' `device`
 * `"loopback"` selects the addon's in-process fabric, which checks keys, bounds and rights as a
 * device does but only links queue pairs of one process: the specifications use it to run
 * everything above the device on machines without one.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { Connection } from "@strait/transport"
import * as NodeNet from "@strait/transport/adapters/NodeNet"
import { Context, Duration, Effect, Layer, Random } from "effect"
import type { Socket } from "node:net"
import * as Addon from "./adapters/Addon.ts"
import * as VerbsNet from "./adapters/VerbsNet.ts"
import * as Probe from "./Probe.ts"

/**
 * RDMA tunables.
 *
 * @since 0.1.0
 */
export const VerbsSettings = Context.Reference<{
  /** The device by name (`mlx5_0`, …); empty: the first one; `loopback`: the in-process test fabric. */
  readonly device: string
  /** The device port, from 1. */
  readonly port: number
  /** The GID table entry (RoCE v2 is often 1 or 3). */
  readonly gidIndex: number
  /** Bytes of each ring (one per direction): a power of two from 4 KiB to 256 MiB. Registered (pinned) memory. */
  readonly capacity: number
  readonly connectTimeout: Duration.Input
  /** Accepted connections waiting for the server to take them. */
  readonly acceptBacklog: number
}>("@strait/transport-native/VerbsTransport/VerbsSettings", {
  defaultValue: () => ({ device: "", port: 1, gidIndex: 0, capacity: 4 * 1024 * 1024, connectTimeout: Duration.seconds(5), acceptBacklog: 1024 })
})

/**
 * The RDMA Layer cannot run here: no addon, no verbs backend in it, no libibverbs, or no device.
 *
 * @since 0.1.0
 */
export class VerbsUnavailable extends Error {
  override readonly name = "VerbsUnavailable"
}

/**
 * Whether RDMA verbs can run here (a device answered and the addon has the backend), and why not.
 *
 * @since 0.1.0
 */
export const available = (): Probe.Availability => Probe.probe().verbs

const make = (addon: Addon.Addon) =>
  Effect.map(Effect.service(VerbsSettings), (settings) => {
    // each side starts its queue pair at a random packet sequence number (24 bits)
    const linkOptions = Effect.map(Random.nextIntBetween(0, 0xffffff), (psn): VerbsNet.LinkOptions => ({
      device: settings.device,
      port: settings.port,
      gidIndex: settings.gidIndex,
      capacity: settings.capacity,
      psn
    }))
    return Connection.socketTransport<{ readonly host: string; readonly port: number }, Socket>({
      scheme: "rdma",
      parse: (address) => Transport.parseHostPort(address, "rdma"),
      acceptBacklog: settings.acceptBacklog,
      connectTimeout: settings.connectTimeout,
      start: (target) => NodeNet.serveAt("rdma", target.host, target.port),
      pipeOf: (socket) => {
        socket.pause()
        return linkOptions.pipe(
          Effect.flatMap((options) => VerbsNet.acceptLink(addon, socket, options)),
          Effect.timeoutOrElse({ duration: settings.connectTimeout, orElse: () => Effect.fail("the setup timed out") })
        )
      },
      remoteOf: (socket) => `rdma://${socket.remoteAddress}:${socket.remotePort}`,
      open: (target) =>
        Effect.flatMap(linkOptions, (options) =>
          Effect.flatMap(NodeNet.connect(target.host, target.port), (socket) => VerbsNet.connectLink(addon, socket, options)))
    })
  })

/**
 * The RDMA Transport; fails to build with `VerbsUnavailable` (and why) where verbs cannot run, unless
 * the settings ask for the in-process `loopback` fabric.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport, VerbsUnavailable> = Layer.effect(
  Transport.Transport,
  Effect.gen(function*() {
    const loaded = Addon.addon()
    if (typeof loaded === "string") return yield* Effect.fail(new VerbsUnavailable(`the native addon is not available: ${loaded}`))
    const settings = yield* VerbsSettings
    if (settings.device !== "loopback") {
      const state = available()
      if (!state.available) return yield* Effect.fail(new VerbsUnavailable(state.reason))
    }
    return yield* make(loaded)
  })
)
