// The lint configuration is itself specified: planted ambient time or randomness in a runtime file fails.
import { ESLint } from "eslint"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const eslint = new ESLint({ cwd: root })

const errorsOf = async (path: string, code: string) => {
  const [result] = await eslint.lintText(code, { filePath: path })
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => m.ruleId)
}

const runtimeFile = "packages/core/src/Planted.ts"

describe("determinism lint", () => {
  it.each([
    ["Date.now()", "export const t = Date.now()\n"],
    ["Math.random()", "export const r = Math.random()\n"],
    ["setTimeout", "setTimeout(() => {}, 1)\n"],
    ["setInterval", "setInterval(() => {}, 1)\n"],
    ["setImmediate", "setImmediate(() => {})\n"],
    ["globalThis.setTimeout", "globalThis.setTimeout(() => {}, 1)\n"],
    ["performance.now()", "export const p = performance.now()\n"],
    ["crypto.randomUUID()", "export const u = crypto.randomUUID()\n"],
    ["randomUUID from node:crypto", "import { randomUUID } from \"node:crypto\"\nexport const u = randomUUID()\n"],
    ["node:timers", "import { setTimeout as later } from \"node:timers\"\nlater(() => {}, 1)\n"],
    ["new Date()", "export const d = new Date()\n"]
  ])("%s in a runtime file is an error", async (_name, code) => {
    expect((await errorsOf(runtimeFile, code)).length).toBeGreaterThan(0)
  })

  it("time from Clock and a Date built from a timestamp are allowed in a runtime file", async () => {
    const code = "import { Clock, Effect } from \"effect\"\nexport const t = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))\n"
    expect(await errorsOf(runtimeFile, code)).toEqual([])
  })

  it.each(["packages/cli/src/bin.ts", "packages/node/src/main.ts", "packages/transport/src/adapters/Tcp.ts"])(
    "the entry point or adapter %s may read the wall clock",
    async (path) => {
      expect(await errorsOf(path, "export const t = Date.now()\n")).toEqual([])
    }
  )

  it("tests and scripts are not runtime code", async () => {
    expect(await errorsOf("packages/core/test/Planted.test.ts", "export const t = Date.now()\n")).toEqual([])
    expect(await errorsOf("scripts/bench/planted.ts", "export const t = performance.now()\n")).toEqual([])
  })
})
