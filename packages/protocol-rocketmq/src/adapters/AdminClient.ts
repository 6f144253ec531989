/**
 * A client of Strait's admin service (`Admin.ts`) over gRPC: what the `strait` CLI uses.
 *
 * @since 0.1.0
 */
import * as Grpc from "@grpc/grpc-js"
import { Buffer } from "node:buffer"
import { type Answer, definition, type Method } from "../Admin.ts"

/**
 * A client of the admin service at `address` (`host:port`); over TLS with `tls`, trusting `rootCerts`
 * (PEM) or the system's roots.
 *
 * @since 0.1.0
 */
export const client = (
  address: string,
  options: { readonly metadata?: () => Grpc.Metadata; readonly tls?: { readonly rootCerts?: Uint8Array } } = {}
) => {
  const Client = Grpc.makeGenericClientConstructor(definition, "Admin")
  const credentials = options.tls === undefined
    ? Grpc.credentials.createInsecure()
    : Grpc.credentials.createSsl(options.tls.rootCerts === undefined ? null : Buffer.from(options.tls.rootCerts))
  const stub = new Client(address, credentials) as unknown as Record<
    Method,
    (request: unknown, metadata: Grpc.Metadata, options: Grpc.CallOptions, callback: (error: Grpc.ServiceError | null, answer: Answer<unknown>) => void) => void
  >
  const call = <A>(name: Method, request: unknown, timeoutMillis = 10_000) =>
    new Promise<Answer<A>>((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMillis)
      stub[name](request, options.metadata?.() ?? new Grpc.Metadata(), { deadline }, (error, answer) => {
        if (error !== null) reject(error)
        else resolve(answer as Answer<A>)
      })
    })
  return {
    call,
    close: () => (stub as unknown as Grpc.Client).close()
  }
}
