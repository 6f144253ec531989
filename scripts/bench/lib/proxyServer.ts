// A proxy alone (RocketMQ gRPC) in front of a broker, for the rocketmq and native benches (in its own
// process so its CPU is measured apart) and the conformance suite's rolling restarts. Usage: node
// proxyServer.ts BROKER PORT [DRAIN_MILLIS] [NATIVE_PORT], BROKER a TCP port on this host or a whole
// address (tcp://…, shm://…), NATIVE_PORT where it also serves Strait's own client protocol. Prints
// "listening" once it serves; stops on SIGTERM, draining for up to DRAIN_MILLIS (default 0).
import { Node } from "@strait/node"
import { serveUntilTerminated } from "./serve.ts"

const [brokerPort, port, drainMillis, nativePort] = process.argv.slice(2)
serveUntilTerminated(Node.proxyOnly({
  host: "127.0.0.1",
  port: Number(port),
  broker: brokerPort!.includes("://") ? brokerPort! : `tcp://127.0.0.1:${brokerPort}`,
  tuning: { drainTimeoutMillis: Number(drainMillis ?? 0) },
  ...(nativePort === undefined ? {} : { nativePort: Number(nativePort) })
}))
