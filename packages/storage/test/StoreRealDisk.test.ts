import { afterAll } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { RealDisk } from "../src/index.ts"
import { storeContract } from "./Store.contract.ts"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "strait-store-"))
let n = 0
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

storeContract({
  name: "real files",
  layer: () => RealDisk.layer,
  directory: () => path.join(root, `store-${n++}`)
})
