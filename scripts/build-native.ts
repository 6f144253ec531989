// Builds the native addon (native/shm: shared-memory rings, and the RDMA verbs backend where the
// libibverbs headers exist) with this machine's g++, against the Node-API headers of the
// node-api-headers and node-addon-api packages: no header download, no node-gyp. Without
// g++, or off Linux, it says why and exits 0: the runtime then uses TCP, and the shared-memory
// specifications say they were skipped. Rebuilds only when a source is newer than the addon.
// `npm install` runs it with --optional (a failed compile is then a warning, so the install still
// succeeds); `npm test` runs it plainly (a failed compile fails the tests).
//
//   node scripts/build-native.ts [--force] [--optional]
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const sources = `${root}native/shm/src`
const output = `${root}native/shm/build/strait_shm.node`

const skip = (why: string) => {
  console.log(`build-native: skipped (${why}); the shared-memory transport is unavailable and TCP serves instead`)
  process.exit(0)
}

if (process.platform !== "linux") skip(`shared memory needs Linux, this is ${process.platform}`)
const compiler = process.env.CXX ?? "g++"
if (spawnSync(compiler, ["--version"], { stdio: "ignore" }).status !== 0) skip(`no C++ compiler (${compiler})`)

const files = readdirSync(sources).map((name) => `${sources}/${name}`)
const newest = Math.max(...files.map((file) => statSync(file).mtimeMs))
if (!process.argv.includes("--force") && existsSync(output) && statSync(output).mtimeMs >= newest) {
  console.log(`build-native: ${output} is up to date`)
  process.exit(0)
}

mkdirSync(`${root}native/shm/build`, { recursive: true })
const temporary = `${output}.${process.pid}.tmp`
const args = [
  "-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-fexceptions",
  "-Wall", "-Wextra", "-Werror",
  "-DNAPI_CPP_EXCEPTIONS", "-DNAPI_VERSION=8", "-DNODE_ADDON_API_DISABLE_DEPRECATED",
  `-I${root}node_modules/node-api-headers/include`,
  `-I${root}node_modules/node-addon-api`,
  // extra flags from the environment (-DSTRAIT_NO_VERBS builds without the RDMA backend)
  ...(process.env.CXXFLAGS ?? "").split(/\s+/).filter((flag) => flag.length > 0),
  "-o", temporary,
  ...files.filter((file) => file.endsWith(".cc")),
  // dlopen, for the verbs probe (in libc since glibc 2.34, a separate library before)
  "-ldl"
]
const started = process.hrtime.bigint()
const built = spawnSync(compiler, args, { stdio: "inherit" })
if (built.status !== 0) {
  console.error(`build-native: ${compiler} failed (exit ${built.status}); the shared-memory transport is unavailable`)
  process.exit(process.argv.includes("--optional") ? 0 : 1)
}
renameSync(temporary, output)
console.log(`build-native: built ${output} in ${Number((process.hrtime.bigint() - started) / 1_000_000n)} ms`)
