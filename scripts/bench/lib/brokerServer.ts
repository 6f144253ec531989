// A broker serving its data-plane protocol on TCP, for the broker bench. It runs as its own process
// so its CPU is measured apart from the client's. Usage: node brokerServer.ts DIRECTORY PORT.
// Prints "listening" once it serves; stops on SIGTERM.
import { Broker, Server } from "@strait/broker"
import { RealDisk } from "@strait/storage"
import { TcpTransport } from "@strait/transport"
import { Layer } from "effect"
import { serveUntilTerminated } from "./serve.ts"

const [directory, port] = process.argv.slice(2)
serveUntilTerminated(Server.layer(`tcp://127.0.0.1:${port}`).pipe(
  Layer.provide(Broker.Broker.layer({ directory: directory! })),
  Layer.provide(TcpTransport.layer),
  Layer.provide(RealDisk.layer)
))
