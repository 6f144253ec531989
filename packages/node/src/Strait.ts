/**
 * A whole Strait node inside the process that uses it: `Strait.embedded` runs a broker, a proxy and
 * the metadata store in memory (or on disk), and provides a `StraitClient` connected to it over the
 * in-process transport, so `Effect.provide(Strait.embedded())` gives a test or a small service a
 * working broker. The same client code points at a real cluster with `StraitClient.layer` and the
 * cluster's addresses.
 *
 * @since 0.1.0
 */
import { Member } from "@strait/broker"
import { StraitClient } from "@strait/client"
import { EmbeddedStore } from "@strait/control"
import { Server as NativeServer } from "@strait/protocol-native"
import { Proxy, type Quotas } from "@strait/proxy"
import { RealDisk, SimDisk } from "@strait/storage"
import { MemoryTransport } from "@strait/transport"
import { Layer } from "effect"
import { type GroupConfig, provision, type TopicConfig } from "./Node.ts"

/**
 * What an embedded node starts with.
 *
 * @since 0.1.0
 */
export interface EmbeddedOptions {
  /** Where it keeps its data; without it, everything is in memory and gone with the layer. */
  readonly dataDir?: string
  readonly topics?: ReadonlyArray<typeof TopicConfig.Type>
  readonly groups?: ReadonlyArray<typeof GroupConfig.Type>
  /** Per-namespace limits the proxy enforces (`Throttled` beyond them). */
  readonly quotas?: Quotas.QuotaSettings
  /** The client's settings (its id, namespace, the topics whose check-backs come to it). */
  readonly client?: Omit<StraitClient.ClientConfig, "endpoints">
}

/**
 * An in-process node and a client of it, for as long as the layer lives.
 *
 * @since 0.1.0
 */
export const embedded = (options: EmbeddedOptions = {}) => {
  const disk = options.dataDir === undefined ? SimDisk.layer() : RealDisk.layer
  const metadata = options.dataDir === undefined
    ? EmbeddedStore.layerMemory
    : EmbeddedStore.layer(`${options.dataDir}/metadata`).pipe(Layer.provide(RealDisk.layer))
  const broker = Member.layer({
    brokerId: "broker-0",
    directory: options.dataDir === undefined ? "/strait/broker" : `${options.dataDir}/broker`,
    listen: "mem://strait-broker",
    adoptTopics: true
  }).pipe(
    Layer.provide(disk),
    Layer.provide(Layer.effectDiscard(provision({ ...(options.topics === undefined ? {} : { topics: options.topics }), ...(options.groups === undefined ? {} : { groups: options.groups }) })))
  )
  const proxy = NativeServer.layer({ listen: "mem://strait" }).pipe(Layer.provideMerge(Proxy.Proxy.layerCluster(options.quotas === undefined ? {} : { quotas: options.quotas })))
  const client = StraitClient.StraitClient.layer({ ...options.client, endpoints: ["mem://strait"] })
  return client.pipe(
    Layer.provideMerge(proxy),
    Layer.provideMerge(broker),
    Layer.provideMerge(MemoryTransport.layerLocal),
    Layer.provideMerge(metadata)
  )
}
