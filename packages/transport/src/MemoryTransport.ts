/**
 * `Transport` Layers over the in-process `SimNetwork`: `mem://name` addresses, deterministic under
 * the simulator, with the network's fault injection.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { Layer } from "effect"
import * as SimNetwork from "./SimNetwork.ts"

/**
 * The Transport of node `node` on the `SimNetwork` it is given; give every node of a simulated
 * cluster its own, over one shared network.
 *
 * @since 0.1.0
 */
export const layer = (node: string): Layer.Layer<Transport.Transport, never, SimNetwork.SimNetwork> =>
  Layer.effect(Transport.Transport, SimNetwork.transport(node))

/**
 * One node alone on a fresh network without faults: for tests and in-process embedding.
 *
 * @since 0.1.0
 */
export const layerLocal: Layer.Layer<Transport.Transport | SimNetwork.SimNetwork> = layer("local").pipe(
  Layer.provideMerge(SimNetwork.SimNetwork.layer())
)
