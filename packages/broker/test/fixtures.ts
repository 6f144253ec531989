// Helpers shared by the broker specifications.
import { Message } from "@strait/core"
import { Disk, SimDisk, Store } from "@strait/storage"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Broker, Transactions } from "../src/index.ts"

export const directory = "/data/broker"
let ids = 0
export const nextId = () => `01${(++ids).toString(16).toUpperCase().padStart(32, "0")}`

export const message = (topic: string, body: string, extra: Partial<ConstructorParameters<typeof Message.Message>[0]> = {}) =>
  new Message.Message({
    topic,
    body: new TextEncoder().encode(body),
    keys: [],
    userProperties: {},
    bornTimestamp: 0,
    bornHost: "test-host",
    messageId: nextId(),
    ...extra
  })

export const text = (m: Message.Message) => new TextDecoder().decode(m.body)

/** A broker on a fresh simulated disk; `restart` builds another broker on the same disk. */
export const withBroker = <A, E>(
  body: (
    broker: Broker.Broker["Service"],
    restart: () => Effect.Effect<Broker.Broker["Service"], unknown>,
    /** A file of the broker's directory as the disk holds it now (undefined if there is none). */
    readFile: (name: string) => Effect.Effect<Uint8Array | undefined, unknown>
  ) => Effect.Effect<A, E, Scope.Scope>,
  options: {
    readonly transactionChecker?: Transactions.TransactionChecker
    readonly settings?: Partial<ReturnType<typeof Broker.BrokerSettings.defaultValue>>
    readonly storeSettings?: Partial<ReturnType<typeof Store.StoreSettings.defaultValue>>
  } = {}
) =>
  Effect.gen(function*() {
    const disk = yield* Layer.build(SimDisk.layer())
    const { settings, storeSettings, ...brokerOptions } = options
    const start = () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(Layer.fresh(Broker.Broker.layer({ directory, ...brokerOptions }))).pipe(
          Effect.provideContext(disk),
          Effect.provideService(Broker.BrokerSettings, { ...Broker.BrokerSettings.defaultValue(), ...settings }),
          Effect.provideService(Store.StoreSettings, { ...Store.StoreSettings.defaultValue(), ...storeSettings })
        )
        return Context.get(context, Broker.Broker)
      })
    let current = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(current, Exit.void))
    const broker = yield* start().pipe(Scope.provide(current))
    return yield* body(broker, () =>
      Effect.gen(function*() {
        // the running broker stops (its finalizers commit and checkpoint) before the next one opens
        yield* Scope.close(current, Exit.void)
        current = yield* Scope.make()
        return yield* start().pipe(Scope.provide(current))
      }), (name) => Disk.readSmallFile(`${directory}/${name}`).pipe(Effect.provideContext(disk)))
  })
