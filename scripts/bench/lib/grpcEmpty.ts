// The floor of one unary gRPC call on @grpc/grpc-js, the library the RocketMQ proxy serves on: a
// method whose handler answers at once, its messages raw bytes (no protobuf), so what a call costs is
// grpc-js's and HTTP/2's own work. `grpcEmptyServer.ts` serves it in a process of its own;
// `measureEmptyCalls` drives it with calls of the size of a 1 KiB message's send.
import * as Grpc from "@grpc/grpc-js"
import { cpuSeconds } from "./peers.ts"

const raw = (bytes: Buffer) => bytes

/** One unary method taking and returning bytes as they are. */
export const emptyService: Grpc.ServiceDefinition = {
  Call: {
    path: "/strait.bench.Empty/Call",
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw
  }
}

/** What one call cost: the server's and this process's CPU, µs a call, and calls a second. */
export interface EmptyCalls {
  readonly perSecond: number
  readonly serverCpu: number
  readonly clientCpu: number
}

/** Calls `address` with `window` calls in flight for `seconds`, counting the server process's CPU. */
export const measureEmptyCalls = (address: string, serverPid: number, window: number, seconds: number) =>
  new Promise<EmptyCalls>((resolve, reject) => {
    const Client = Grpc.makeGenericClientConstructor(emptyService, "Empty")
    const client = new Client(address, Grpc.credentials.createInsecure()) as unknown as {
      Call: (request: Buffer, callback: (error: Grpc.ServiceError | null) => void) => void
      close: () => void
    }
    const request = Buffer.alloc(1100, 7)
    let done = 0
    let measuring = false
    let stopping = false
    let serverBefore = 0
    let clientBefore = process.cpuUsage()
    let began = 0
    const one = () =>
      client.Call(request, (error) => {
        if (error !== null) {
          stopping = true
          client.close()
          return reject(error)
        }
        if (measuring) done++
        if (!stopping) one()
      })
    for (let i = 0; i < window; i++) one()
    // a second's warm-up, then the measured run
    setTimeout(() => {
      serverBefore = cpuSeconds(serverPid)
      clientBefore = process.cpuUsage()
      began = performance.now()
      measuring = true
      setTimeout(() => {
        measuring = false
        stopping = true
        const took = (performance.now() - began) / 1000
        const clientUsed = process.cpuUsage(clientBefore)
        const serverCpu = cpuSeconds(serverPid) - serverBefore
        client.close()
        resolve({
          perSecond: done / took,
          serverCpu: (serverCpu * 1e6) / Math.max(1, done),
          clientCpu: (clientUsed.user + clientUsed.system) / Math.max(1, done)
        })
      }, seconds * 1000)
    }, 1000)
  })
