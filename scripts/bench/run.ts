// `npm run bench -- NAME` runs scripts/bench/NAME.ts.
import { existsSync, readdirSync } from "node:fs"

const name = process.argv[2]
const available = readdirSync(new URL(".", import.meta.url)).filter((f) => f.endsWith(".ts") && f !== "run.ts").map((f) => f.slice(0, -3))
if (name === undefined || !existsSync(new URL(`./${name}.ts`, import.meta.url))) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${available.join(", ")})`)
  process.exit(2)
}
await import(new URL(`./${name}.ts`, import.meta.url).href)
