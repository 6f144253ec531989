// The README's example runs, and the README shows it as it is.
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, test } from "vitest"

const root = new URL("../../", import.meta.url)
const example = fileURLToPath(new URL("examples/effect-service.ts", root))

describe("examples", () => {
  test("the README shows examples/effect-service.ts as it is", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8")
    expect(readme).toContain("```ts\n" + readFileSync(example, "utf8") + "```")
  })

  test("examples/effect-service.ts sends three orders and ships each once", () => {
    const run = spawnSync(process.execPath, [example], { encoding: "utf8", timeout: 60_000 })
    expect(run.status).toBe(0)
    for (const item of ["tea", "coffee", "cocoa"]) expect(run.stdout.match(new RegExp(`shipping 2 × ${item}`, "g"))?.length).toBe(1)
    expect(run.stdout).toContain("all orders shipped")
  }, 60_000)
})
