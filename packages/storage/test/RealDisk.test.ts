import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { RealDisk } from "../src/index.ts"
import { diskContract } from "./Disk.contract.ts"

diskContract({
  name: "real",
  layer: RealDisk.layer,
  directory: Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "strait-disk-"))),
    (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
  )
})
