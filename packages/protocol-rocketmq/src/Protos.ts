/**
 * The `apache.rocketmq.v2` protocol definitions, loaded from the `.proto` files that ship with the
 * official `rocketmq-client-nodejs` package, so the server speaks exactly what that client speaks.
 *
 * Decoded messages are plain objects with the protos' field names (`keepCase`), 64-bit integers as
 * numbers, enums as their names, absent fields as their defaults, and each `oneof` named by a
 * virtual field holding the name of the case present.
 *
 * @since 0.1.0
 */
import * as Grpc from "@grpc/grpc-js"
import * as ProtoLoader from "@grpc/proto-loader"
import { createRequire } from "node:module"
import * as Path from "node:path"

const require = createRequire(import.meta.url)
const protoRoot = Path.join(Path.dirname(require.resolve("rocketmq-client-nodejs/package.json")), "proto")

/**
 * The loading options: what decoded messages look like.
 *
 * @since 0.1.0
 */
export const loaderOptions: ProtoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoRoot]
}

let loaded: Grpc.ServiceDefinition | undefined

/**
 * The `MessagingService` definition, loaded once.
 *
 * @since 0.1.0
 */
export const messagingService = (): Grpc.ServiceDefinition => {
  if (loaded === undefined) {
    const definition = ProtoLoader.loadSync(["apache/rocketmq/v2/service.proto"], loaderOptions)
    const root = Grpc.loadPackageDefinition(definition) as unknown as {
      readonly apache: { readonly rocketmq: { readonly v2: { readonly MessagingService: Grpc.ServiceClientConstructor } } }
    }
    loaded = root.apache.rocketmq.v2.MessagingService.service
  }
  return loaded
}

/**
 * A `google.protobuf.Duration` or `Timestamp` as decoded.
 *
 * @since 0.1.0
 */
export interface Seconds {
  readonly seconds?: number | string | null
  readonly nanos?: number | null
}

/**
 * Milliseconds of a decoded Duration or Timestamp (`undefined` when absent).
 *
 * @since 0.1.0
 */
export const millisOf = (value: Seconds | null | undefined): number | undefined =>
  value === null || value === undefined ? undefined : Number(value.seconds ?? 0) * 1000 + Math.floor((value.nanos ?? 0) / 1_000_000)

/**
 * A Duration or Timestamp of `millis` milliseconds.
 *
 * @since 0.1.0
 */
export const fromMillis = (millis: number): { readonly seconds: number; readonly nanos: number } => {
  const seconds = Math.floor(millis / 1000)
  return { seconds, nanos: (millis - seconds * 1000) * 1_000_000 }
}
