import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { flagsToAdd, straitNodeFlags } from "../src/nodeFlags.ts"

describe("nodeFlags", () => {
  it("a process started without young-generation settings gets Strait's", () => {
    expect(flagsToAdd([], undefined)).toEqual(straitNodeFlags)
    expect(flagsToAdd(["--enable-source-maps"], "--max-old-space-size=4096")).toEqual(straitNodeFlags)
  })

  it("settings of the process's owner, on the command line or in NODE_OPTIONS, are left alone", () => {
    expect(flagsToAdd(["--max-semi-space-size=64"], undefined)).toEqual([])
    expect(flagsToAdd([], "--trace-gc --min_semi_space_size=8")).toEqual([])
  })

  it("a process that has them already is not re-executed again", () => {
    expect(flagsToAdd(straitNodeFlags, undefined)).toEqual([])
  })

  it("the strait executable runs with them, whatever it was started with", () => {
    const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
    const probe = "console.log(JSON.stringify(process.execArgv))"
    // `--version` is the cheapest command: the re-execution happens before any command runs
    const run = spawnSync(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(`process.on("exit", () => { ${probe} })`)}`, bin, "--version"], {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "" }
    })
    expect(run.status).toBe(0)
    const lines = run.stdout.trim().split("\n")
    expect(JSON.parse(lines[lines.length - 1]!)).toEqual(expect.arrayContaining([...straitNodeFlags]))
  })
})
