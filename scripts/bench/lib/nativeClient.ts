// @strait/client end to end for the benches: 1 KiB messages produced and consumed through a proxy's
// native protocol port, with the load and the measurements of endToEnd.ts.
import { Consumer, Producer, type Protocol, StraitClient } from "@strait/client"
import { EventLoopScheduler } from "@strait/core"
import { TcpTransport } from "@strait/transport"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { CONSUMERS, type EndToEnd, measure } from "./endToEnd.ts"

// @strait/client as a service uses it: one Producer (concurrent sends travel together), and
// CONSUMERS consumers (Consumer.run) whose handlers' acknowledgements travel together
export const nativeEndToEnd: EndToEnd = async (endpoint, topic, seconds, pids, window) => {
  const runtime = ManagedRuntime.make(
    Producer.Producer.layer().pipe(
      Layer.provideMerge(StraitClient.StraitClient.layer({ endpoints: [endpoint] })),
      Layer.provide(TcpTransport.layer)
    )
  )
  const scheduler = EventLoopScheduler.make()
  const producer = await runtime.runPromise(Effect.gen(function*() {
    return yield* Producer.Producer
  }))
  try {
    return await measure(
      seconds,
      pids,
      window,
      // the producers are fibers, as in an Effect service
      (window, next) => {
        const producing: Effect.Effect<void, Protocol.Failure> = Effect.suspend(() => {
          const message = next()
          return message === undefined
            ? Effect.void
            : producer.send({ topic, body: message.bytes }).pipe(Effect.andThen(Effect.promise(() => message.consumed)), Effect.andThen(producing))
        })
        return runtime.runPromise(Effect.forEach(Array.from({ length: window }), () => producing, { concurrency: "unbounded", discard: true }), { scheduler })
      },
      (onBody) => {
        const consumers = Array.from({ length: CONSUMERS }, () =>
          runtime.runFork(
            Consumer.run(
              { group: "bench", topic, concurrency: Math.ceil(window / CONSUMERS), prefetch: 32, pollTime: "1 second" },
              ({ message }) => Effect.sync(() => onBody(message.body))
            ),
            { scheduler }
          ))
        return () => runtime.runPromise(Fiber.interruptAll(consumers))
      }
    )
  } finally {
    await runtime.dispose()
  }
}

