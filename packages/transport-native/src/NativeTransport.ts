/**
 * One `Transport` for every scheme this process can use: `tcp://` always, `shm://` where the
 * shared-memory addon is available. Each listen and connect goes to the Layer of its address's
 * scheme, so a process can listen on TCP for some peers and on shared memory for others.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { TcpTransport } from "@strait/transport"
import { Context, Effect, Layer } from "effect"
import * as ShmTransport from "./ShmTransport.ts"

const make = Effect.gen(function*() {
  const tcp = Context.get(yield* Layer.build(TcpTransport.layer), Transport.Transport)
  const shm = ShmTransport.available().available
    ? Context.get(yield* Layer.build(ShmTransport.layer.pipe(Layer.orDie)), Transport.Transport)
    : undefined
  const byScheme = new Map<Transport.Scheme, Transport.Transport["Service"]>([["tcp", tcp], ...(shm === undefined ? [] : [["shm", shm] as const])])
  const of = (address: string) => {
    const scheme = /^([a-z]+):\/\//.exec(address)?.[1]
    const transport = byScheme.get(scheme as Transport.Scheme)
    if (transport !== undefined) return transport
    const shmState = ShmTransport.available()
    return new Transport.InvalidAddress({
      address,
      reason: scheme === "shm" && !shmState.available
        ? `shared memory is not available here: ${shmState.reason}`
        : `expected one of ${[...byScheme.keys()].map((s) => `${s}://`).join(", ")}`
    })
  }
  return Transport.Transport.of({
    schemes: [...byScheme.keys()],
    listen: (address) => {
      const transport = of(address)
      return transport instanceof Transport.InvalidAddress ? Effect.fail(transport) : transport.listen(address)
    },
    connect: (address) => {
      const transport = of(address)
      return transport instanceof Transport.InvalidAddress ? Effect.fail(transport) : transport.connect(address)
    }
  })
})

/**
 * TCP, and shared memory where it is available.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport> = Layer.effect(Transport.Transport, make)
