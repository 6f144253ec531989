import { Effect } from "effect"
import * as NodeNet from "../src/adapters/NodeNet.ts"
import { TcpTransport } from "../src/index.ts"
import { transportContract } from "./contract.ts"

// one turn of the event loop, so socket callbacks run; progress-based, not a timed wait
const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

transportContract({
  name: "tcp",
  layer: TcpTransport.layer,
  address: () => "tcp://127.0.0.1:0",
  unreachable: "tcp://127.0.0.1:1",
  rawPipe: (address) =>
    Effect.gen(function*() {
      const [host, port] = address.slice("tcp://".length).split(":")
      const socket = yield* Effect.acquireRelease(NodeNet.connect(host!, Number(port)), (s) => Effect.sync(() => s.destroy()))
      return NodeNet.socketPipe(socket)
    }),
  settle: turn
})
