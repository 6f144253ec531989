// The benches' server processes: a Node script started on this Node with the V8 settings a Strait
// process runs with (as `strait` applies them to itself; CPU profiles too when STRAIT_BENCH_PROFILE
// names a directory), ready once its output says so; stopped with SIGTERM.
import { flagsToAdd } from "@strait/cli/nodeFlags"
import { type ChildProcess, spawn } from "node:child_process"

const PROFILE = process.env.STRAIT_BENCH_PROFILE

/** Runs `script` with `args` and resolves once its standard output has shown `ready`. */
export const startScript = async (script: string, args: ReadonlyArray<string>, ready: string): Promise<ChildProcess> => {
  const flags = [...flagsToAdd([], process.env.NODE_OPTIONS), ...(PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`])]
  const child = spawn(process.execPath, [...flags, script, ...args], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk) && out.includes(ready) && resolve())
    child.on("exit", () => reject(new Error(`${script} exited`)))
  })
  return child
}

/** Asks a process to stop (its finalizers run) and resolves once it has exited. */
export const stopProcess = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.removeAllListeners("exit")
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })
