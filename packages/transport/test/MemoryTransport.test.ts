import { Effect } from "effect"
import { MemoryTransport, SimNetwork } from "../src/index.ts"
import { transportContract } from "./contract.ts"

transportContract({
  name: "memory",
  layer: MemoryTransport.layerLocal,
  address: (n) => `mem://server-${n}`,
  unreachable: "mem://nobody",
  rawPipe: (address) => SimNetwork.SimNetwork.use(({ network }) => network.connect("raw", address.slice("mem://".length))),
  settle: Effect.yieldNow
})
