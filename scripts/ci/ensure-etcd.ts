// Before the tests: etcd (Debian's etcd-server) must be on the PATH, for the control plane's
// specifications and the cluster conformance scenarios. Installs it when missing (as root, or with
// sudo); says clearly what to do when it cannot.
import { execFileSync, spawnSync } from "node:child_process"

const has = (command: string) => spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0

if (!has("etcd")) {
  const root = typeof process.getuid === "function" && process.getuid() === 0
  const prefix = root ? [] : has("sudo") ? ["sudo", "-n"] : undefined
  if (prefix === undefined || !has("apt-get")) {
    console.error("etcd is not installed and cannot be installed here: install Debian's etcd-server (apt-get install etcd-server)")
    process.exit(1)
  }
  console.log("installing etcd-server (the tests run a real etcd)")
  try {
    const run = (args: ReadonlyArray<string>) =>
      execFileSync(prefix[0] ?? args[0]!, [...prefix.slice(1), ...(prefix.length === 0 ? args.slice(1) : args)], {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
      })
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", "etcd-server"])
  } catch (error) {
    console.error(`could not install etcd-server: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
}
