import { Layer } from "effect"
import { SimDisk } from "../src/index.ts"
import { storeContract } from "./Store.contract.ts"

storeContract({
  name: "the simulated disk",
  layer: () => Layer.fresh(SimDisk.layer()),
  directory: () => "/data/store"
})
