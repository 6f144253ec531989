// A Transport server for the native bench, in its own process so its CPU is measured apart: it
// listens at ADDRESS (tcp:// or shm://) and answers every request frame with its payload; response
// frames (the streaming phase) it only takes in. Usage: node transportServer.ts ADDRESS. Prints
// "listening" once it serves; stops on SIGTERM.
import { Frame, Transport } from "@strait/core"
import { NativeTransport } from "@strait/transport-native"
import { Effect, Layer, Stream } from "effect"
import { serveUntilTerminated } from "./serve.ts"

const [address] = process.argv.slice(2)
const reply = Frame.responseType(Frame.Type.Echo)
serveUntilTerminated(Layer.effectDiscard(Effect.gen(function*() {
  const transport = yield* Transport.Transport
  const listener = yield* transport.listen(address!)
  yield* Effect.forkScoped(Stream.runForEach(listener.connections, (connection) =>
    Effect.forkScoped(Effect.forever(Effect.flatMap(connection.receive, (frames) => {
      const answers = frames.filter((frame) => !Frame.isResponse(frame.type)).map((frame) => Frame.make(reply, frame.correlation, frame.payload))
      return answers.length === 0 ? Effect.void : connection.send(answers)
    })).pipe(Effect.ignore))))
})).pipe(Layer.provide(NativeTransport.layer)))
