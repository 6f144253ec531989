// The raw shared-memory baseline server of the native bench, in its own process: the same
// length-prefixed frames as rawServer.ts, over the addon's rings through the ring pipe (no
// connection engine, no Effect per frame); a frame whose first payload byte is 1 is echoed, any
// other only read; STRAIT_BENCH_SHM_SPIN (µs) lets its reader spin. Usage: node rawShmServer.ts
// PATH. Prints "listening"; stops on SIGTERM.
import * as Addon from "@strait/transport-native/adapters/Addon"
import * as ShmNet from "@strait/transport-native/adapters/ShmNet"
import { Effect } from "effect"
import { frameOf, framer } from "./rawNet.ts"

const [where] = process.argv.slice(2)
const addon = Addon.addon()
if (typeof addon === "string") {
  console.error(addon)
  process.exit(1)
}
await Effect.runPromise(ShmNet.listen(where!, (socket) => {
  void Effect.runPromise(ShmNet.acceptLink(addon, socket, 5000, Number(process.env.STRAIT_BENCH_SHM_SPIN ?? 0))).then((pipe) => {
    const onFrame = framer((bytes, start, length) => {
      if (bytes[start] === 1) void Effect.runPromise(pipe.write([frameOf(bytes.subarray(start, start + length))]))
    })
    // the framer keeps no view of a chunk (a frame split across chunks is copied): reads may reuse memory
    pipe.deliver({ data: (chunk) => (onFrame(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)), true), closed: () => undefined, copies: true })
  })
}))
console.log("listening")
process.on("SIGTERM", () => process.exit(0))
