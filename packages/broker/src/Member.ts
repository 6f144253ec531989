/**
 * A broker as a member of a cluster: registered in the control plane under its id, holding the
 * queues its partition leases give it, mirroring the catalog's topics and groups, and serving the
 * data plane at its address.
 *
 * **Details**
 *
 * Receipt handles carry the broker's id, so a proxy sends an acknowledgement back to the broker that
 * issued the handle. The broker's data stays on its own disk: while it is down, its queues are served
 * by other brokers for new messages, and the messages it holds wait for it to return.
 *
 * @since 0.1.0
 */
import { LoadReports, type MetadataStore, PartitionLeases } from "@strait/control"
import type { Transport } from "@strait/core"
import type { Disk, Store } from "@strait/storage"
import { type Duration, Effect, Layer } from "effect"
import { Broker, BrokerSettings } from "./Broker.ts"
import * as CatalogMirror from "./CatalogMirror.ts"
import * as Server from "./Server.ts"
import type * as Transactions from "./Transactions.ts"

/**
 * How a cluster broker runs.
 *
 * @since 0.1.0
 */
export interface MemberOptions {
  /** The broker's id in the cluster: stable across restarts (its data directory belongs to it). */
  readonly brokerId: string
  readonly directory: string
  /** Where the data plane listens (a `Transport` address). */
  readonly listen: string
  /** Where proxies reach it, when not `listen` (a wildcard host, a NAT). */
  readonly advertise?: string
  /**
   * It also serves the data plane over shared memory at `listen` (a `shm://` address; the Transport
   * given must offer it), for proxies on the host `host` (`hostId`).
   */
  readonly shm?: { readonly listen: string; readonly host: string }
  /**
   * It also serves the data plane over RDMA at `listen` (an `rdma://` address; the Transport given
   * must offer it), reached at `advertise` when that is given.
   */
  readonly rdma?: { readonly listen: string; readonly advertise?: string }
  /** The lease ttl: how long a dead broker's queues wait before they move (default 10 s). */
  readonly leaseTtl?: Duration.Input
  readonly transactionChecker?: Transactions.TransactionChecker
  /** Publish the broker's own topics the catalog lacks at start (a single node's older data directory). */
  readonly adoptTopics?: boolean
  /**
   * Publish the broker's load every second under `load/broker/<id>` (for the elasticity controller,
   * which also waits on it for a leaving broker to be drained), with the CPU time `cpuMicros` gives
   * (the process's, or 0 where CPU is not measured).
   */
  readonly reportLoad?: { readonly cpuMicros: () => number }
}

/**
 * A broker's load report sample (`LoadReports`) from its holdings.
 *
 * @since 0.1.0
 */
export const loadSample = (broker: Broker["Service"], cpuMicros: () => number): Effect.Effect<LoadReports.Sample, Store.ReadError> =>
  Effect.map(broker.holdings, (holdings) => ({
    cpuMicros: cpuMicros(),
    messages: holdings.storedMessages,
    bytes: holdings.storedBytes,
    connections: 0,
    popInFlight: holdings.inFlight,
    backlog: holdings.unconsumed,
    lagMillis: holdings.lagMillis,
    p99Millis: 0,
    held: holdings.held
  }))

/**
 * A cluster broker for as long as the layer lives; closing it stops the data plane, then revokes the
 * lease so the queues move at once.
 *
 * @since 0.1.0
 */
export const layer = (
  options: MemberOptions
): Layer.Layer<
  Broker,
  Disk.DiskError | Store.ReadError | MetadataStore.MetadataUnavailable | Transport.InvalidAddress | Transport.AddressInUse,
  Disk.Disk | Transport.Transport | MetadataStore.MetadataStore
> => {
  const member = Layer.effect(
    Broker,
    Effect.gen(function*() {
      const leases = yield* PartitionLeases.make({
        brokerId: options.brokerId,
        address: options.advertise ?? options.listen,
        ...(options.shm === undefined ? {} : { shm: { address: options.shm.listen, host: options.shm.host } }),
        ...(options.rdma === undefined ? {} : { rdma: options.rdma.advertise ?? options.rdma.listen }),
        ...(options.leaseTtl === undefined ? {} : { ttl: options.leaseTtl })
      })
      const settings = yield* BrokerSettings
      const broker = yield* Broker.make({
        directory: options.directory,
        ownership: leases,
        ...(options.transactionChecker === undefined ? {} : { transactionChecker: options.transactionChecker })
      }).pipe(Effect.provideService(BrokerSettings, { ...settings, brokerName: options.brokerId }))
      yield* CatalogMirror.run({ adopt: options.adoptTopics === true }).pipe(Effect.provideService(Broker, broker))
      const reportLoad = options.reportLoad
      if (reportLoad !== undefined) {
        yield* LoadReports.publish({ role: "broker", id: options.brokerId, sample: loadSample(broker, reportLoad.cpuMicros) })
      }
      return broker
    })
  )
  const more = [...(options.shm === undefined ? [] : [options.shm.listen]), ...(options.rdma === undefined ? [] : [options.rdma.listen])]
  return Layer.provideMerge(Layer.mergeAll(Server.layer(options.listen), ...more.map((listen) => Server.layer(listen))), member)
}
