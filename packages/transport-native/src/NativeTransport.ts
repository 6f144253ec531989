/**
 * One `Transport` for every scheme this process can use: `tcp://` always, `shm://` where the
 * shared-memory addon is available, `rdma://` where RDMA verbs are (`VerbsTransport.available()`).
 * Each listen and connect goes to the Layer of its address's scheme, so a process can listen on TCP
 * for some peers and on shared memory or RDMA for others.
 *
 * @since 0.1.0
 */
import { Transport } from "@strait/core"
import { TcpTransport } from "@strait/transport"
import { Context, Effect, Layer } from "effect"
import * as ShmTransport from "./ShmTransport.ts"
import * as VerbsTransport from "./VerbsTransport.ts"

// the native schemes, each with whether it can run here (and why not) and its Layer
const natives: ReadonlyArray<{
  readonly scheme: Transport.Scheme
  readonly name: string
  readonly available: () => { readonly available: true } | { readonly available: false; readonly reason: string }
  readonly layer: Layer.Layer<Transport.Transport>
}> = [
  { scheme: "shm", name: "shared memory", available: ShmTransport.available, layer: ShmTransport.layer.pipe(Layer.orDie) },
  { scheme: "rdma", name: "RDMA", available: VerbsTransport.available, layer: VerbsTransport.layer.pipe(Layer.orDie) }
]

const make = Effect.gen(function*() {
  const byScheme = new Map<Transport.Scheme, Transport.Transport["Service"]>([
    ["tcp", Context.get(yield* Layer.build(TcpTransport.layer), Transport.Transport)]
  ])
  for (const native of natives) {
    if (native.available().available) {
      byScheme.set(native.scheme, Context.get(yield* Layer.build(native.layer), Transport.Transport))
    }
  }
  const of = (address: string) => {
    const scheme = /^([a-z]+):\/\//.exec(address)?.[1]
    const transport = byScheme.get(scheme as Transport.Scheme)
    if (transport !== undefined) return transport
    const native = natives.find((candidate) => candidate.scheme === scheme)
    const state = native?.available()
    return new Transport.InvalidAddress({
      address,
      reason: native !== undefined && state !== undefined && !state.available
        ? `${native.name} is not available here: ${state.reason}`
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
 * TCP, and shared memory and RDMA where they are available.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Transport.Transport> = Layer.effect(Transport.Transport, make)
