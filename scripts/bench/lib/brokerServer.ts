// A broker serving its data-plane protocol on TCP (and, given SHM_PATH, on shared memory too), for
// the broker, rocketmq and native benches. It runs as its own process so its CPU is measured apart
// from the client's. Usage: node brokerServer.ts DIRECTORY PORT [SHM_PATH]. Prints "listening" once
// it serves; stops on SIGTERM.
import { Broker, Server } from "@strait/broker"
import { RealDisk } from "@strait/storage"
import { NativeTransport } from "@strait/transport-native"
import { Layer } from "effect"
import { serveUntilTerminated } from "./serve.ts"

const [directory, port, shmPath] = process.argv.slice(2)
const tcp = Server.layer(`tcp://127.0.0.1:${port}`)
serveUntilTerminated((shmPath === undefined ? tcp : Layer.merge(tcp, Server.layer(`shm://${shmPath}`))).pipe(
  Layer.provide(Broker.Broker.layer({ directory: directory! })),
  Layer.provide(NativeTransport.layer),
  Layer.provide(RealDisk.layer)
))
