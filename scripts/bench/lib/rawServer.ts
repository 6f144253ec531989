// The raw `node:net` baseline server of the native bench, in its own process: length-prefixed
// frames over TCP or a Unix domain socket; a frame whose first payload byte is 1 is echoed, any
// other only read. Usage: node rawServer.ts PORT|PATH. Prints "listening"; stops on SIGTERM.
import * as net from "node:net"
import { frameOf, framer } from "./rawNet.ts"

const [where] = process.argv.slice(2)
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("data", framer((bytes, start, length) => {
    if (bytes[start] === 1) socket.write(frameOf(bytes.subarray(start, start + length)))
  }))
  socket.on("error", () => socket.destroy())
})
const port = Number(where)
if (Number.isInteger(port)) server.listen(port, "127.0.0.1", () => console.log("listening"))
else server.listen(where!, () => console.log("listening"))
process.on("SIGTERM", () => process.exit(0))
