// Serves `emptyService` (grpcEmpty.ts) on @grpc/grpc-js with the RocketMQ proxy's server options; each
// call is answered at once with 16 bytes. Usage: node grpcEmptyServer.ts PORT. Prints "listening"
// once it serves; stops on SIGTERM.
import * as Grpc from "@grpc/grpc-js"
import { grpcServerOptions } from "@strait/protocol-rocketmq/Server"
import { emptyService } from "./grpcEmpty.ts"

const answer = Buffer.alloc(16)
const server = new Grpc.Server(grpcServerOptions)
server.addService(emptyService, {
  Call: (_call: Grpc.ServerUnaryCall<Buffer, Buffer>, callback: Grpc.sendUnaryData<Buffer>) => callback(null, answer)
})
server.bindAsync(`127.0.0.1:${process.argv[2]}`, Grpc.ServerCredentials.createInsecure(), (error) => {
  if (error !== null) throw error
  console.log("listening")
})
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)))
