/**
 * A cluster of local processes for `strait cluster up`: etcd (started here unless one is given),
 * N brokers and M proxies (each a `strait node` process of its own), and a load balancer in front of
 * the proxies so that clients have one address.
 *
 * **Details**
 *
 * Every process writes its log lines to this one's output, prefixed with its name. Closing the scope
 * stops the proxies first (each drains: GOAWAY), then the brokers (each revokes its lease), then
 * etcd, each with SIGTERM and a deadline before SIGKILL.
 *
 * With `autoscale`, an elasticity controller runs here and scales the proxies through this module's
 * orchestrator (returned, for benchmarks to drive): `warm` proxies are kept started in standby (serving nobody, unregistered); a
 * scale-out activates warm ones (they register and the balancer sends them new connections, well
 * under a second) and starts more standbys in the background to refill the pool; a scale-in takes
 * the chosen proxies out of the balancer first, then stops them (SIGTERM: each deregisters, sends
 * GOAWAY and drains within its deadline). Proxy `j` listens on `proxyPort + j - 1` (and
 * `nativePort + j - 1`), `j` the lowest number free.
 *
 * When the policy names brokers, the orchestrator scales them too: a scale-out starts broker `i`
 * (the lowest number free, on `brokerPort + i - 1`, with its data in `<dataDir>/broker-<i>`) and
 * returns once it has registered, so that queues can move to it; a scale-in stops the brokers named
 * (the controller names them only once they are drained), each keeping its data directory.
 *
 * @since 0.1.0
 */
import { Catalog, type Elasticity, ElasticityController, EtcdProcess, EtcdStore, MetadataStore, NodeRegistration, Orchestrator } from "@strait/control"
import { Context, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Balancer from "./Balancer.ts"

/**
 * What `strait cluster up` starts.
 *
 * @since 0.1.0
 */
export interface ClusterPlan {
  readonly brokers: number
  readonly proxies: number
  /** Where every process keeps its data: `<dataDir>/etcd`, `<dataDir>/broker-<i>`, `<dataDir>/proxy-<j>`. */
  readonly dataDir: string
  readonly host: string
  /** The load balancer's port: the one address clients use. */
  readonly port: number
  /** An etcd to use; without it one is started on `etcdPort` (and `etcdPort + 1` for its peers). */
  readonly etcd?: string
  readonly etcdPort: number
  /** The first broker's data-plane port (the next brokers count up from it). */
  readonly brokerPort: number
  /** The first proxy's port (the next proxies count up from it). */
  readonly proxyPort: number
  /** The first proxy's port for Strait's own client protocol (the next proxies count up from it). */
  readonly nativePort: number
  /** A node configuration file every node reads (topics, groups, access, tuning). */
  readonly config?: string
  /** Proxies kept started in standby for the orchestrator's scale-outs (default 0). */
  readonly warm?: number
  /** Scale the proxies (and the brokers, when it names them) with an elasticity controller of this policy. */
  readonly autoscale?: { readonly policy: Partial<Elasticity.Policy> }
}

/**
 * A process of the cluster could not be started, or did not become ready.
 *
 * @since 0.1.0
 */
export class ClusterStartFailed extends Error {}

const prefixed = (name: string, stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream) => {
  if (stream === null) return
  let pending = ""
  stream.on("data", (chunk) => {
    pending += String(chunk)
    const lines = pending.split("\n")
    pending = lines.pop()!
    for (const line of lines) out.write(`[${name}] ${line}\n`)
  })
}

const stop = (child: ChildProcess, deadlineMillis: number) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), deadlineMillis)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

// a child process for as long as the scope lives
const process_ = (name: string, command: string, args: ReadonlyArray<string>, deadlineMillis = 20_000) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
          prefixed(name, child.stdout, process.stdout)
          prefixed(name, child.stderr, process.stderr)
          child.once("error", (error) => reject(new ClusterStartFailed(`cannot start ${name} (${command}): ${error.message}`)))
          child.once("spawn", () => resolve(child))
        }),
      catch: (error) => error instanceof ClusterStartFailed ? error : new ClusterStartFailed(String(error))
    }),
    (child) => Effect.promise(() => stop(child, deadlineMillis))
  )

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

// resolves once `check` holds, failing after `timeoutMillis` or when the child exits
const ready = (name: string, child: ChildProcess, check: () => Promise<boolean>, timeoutMillis = 30_000) =>
  Effect.tryPromise({
    try: async () => {
      for (let waited = 0; waited < timeoutMillis; waited += 100) {
        if (child.exitCode !== null) throw new ClusterStartFailed(`${name} exited with code ${child.exitCode}`)
        if (await check()) return
        await sleep(100)
      }
      throw new ClusterStartFailed(`${name} was not ready after ${timeoutMillis} ms`)
    },
    catch: (error) => error instanceof ClusterStartFailed ? error : new ClusterStartFailed(String(error))
  })

const accepts = (host: string, port: number) => () =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, host)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const straitBin = fileURLToPath(new URL("../bin.ts", import.meta.url))

// a broker of the cluster
interface BrokerProcess {
  readonly index: number
  readonly name: string
  readonly port: number
  readonly scope: Scope.Closeable
}

// a proxy of the cluster: starting (not yet serving), warm (a standby), activating, active (in the
// balancer), or stopping (out of it, draining)
interface ProxyProcess {
  readonly index: number
  readonly id: string
  readonly port: number
  readonly nativePort: number
  readonly scope: Scope.Closeable
  readonly standby: boolean
  state: "starting" | "warm" | "activating" | "active" | "stopping"
}

/**
 * Starts the cluster; it runs until the scope closes. Returns the balancer's address and the etcd
 * endpoint.
 *
 * @since 0.1.0
 */
export const up = (plan: ClusterPlan) =>
  Effect.gen(function*() {
    mkdirSync(plan.dataDir, { recursive: true })
    let etcd = plan.etcd
    if (etcd === undefined) {
      const started = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            EtcdProcess.start({
              host: plan.host,
              dataDir: join(plan.dataDir, "etcd"),
              clientPort: plan.etcdPort,
              peerPort: plan.etcdPort + 1,
              onOutput: (chunk) => process.stderr.write(chunk.replace(/^(?=.)/gm, "[etcd] "))
            }),
          catch: (error) => new ClusterStartFailed(`${error instanceof Error ? error.message : String(error)}; or pass --etcd`)
        }),
        (running) => Effect.promise(() => running.stop())
      )
      etcd = started.endpoint
    }
    const common = ["--etcd", etcd, ...(plan.config === undefined ? [] : ["--config", plan.config])]
    const node = (name: string, args: ReadonlyArray<string>) => process_(name, process.execPath, [straitBin, "node", ...args, ...common])
    const clusterScope = yield* Effect.scope
    // a node process in a scope of its own (so that it can be stopped alone), numbered with the
    // lowest number free in `taken`: taken and reserved in one step, so starts at the same time
    // never share one, and given back if the start fails; ready once it accepts on its port
    const startNumbered = <E extends { readonly index: number }>(
      taken: Map<number, E>,
      make: (index: number, scope: Scope.Closeable) => E,
      describe: (entry: E) => { readonly name: string; readonly port: number; readonly args: ReadonlyArray<string> }
    ) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(clusterScope)
        const entry = yield* Effect.sync(() => {
          let index = 1
          while (taken.has(index)) index++
          const reserved = make(index, scope)
          taken.set(index, reserved)
          return reserved
        })
        const { args, name, port } = describe(entry)
        const child = yield* node(name, args).pipe(
          Scope.provide(scope),
          Effect.tapError(() => Effect.sync(() => taken.delete(entry.index)))
        )
        yield* ready(name, child, accepts(plan.host, port)).pipe(
          Effect.tapError(() => Effect.andThen(Scope.close(scope, Exit.void), Effect.sync(() => taken.delete(entry.index))))
        )
        return entry
      })
    const brokers = new Map<number, BrokerProcess>()
    const startBroker = startNumbered(
      brokers,
      (index, scope): BrokerProcess => ({ index, name: `broker-${index}`, port: plan.brokerPort + index - 1, scope }),
      (entry) => ({
        name: entry.name,
        port: entry.port,
        args: ["--role", "broker", "--broker-id", entry.name, "--broker-listen", `tcp://${plan.host}:${entry.port}`, "--data-dir", join(plan.dataDir, entry.name)]
      })
    )
    yield* Effect.forEach(Array.from({ length: plan.brokers }), () => startBroker, { concurrency: "unbounded", discard: true })

    const store = Context.get(yield* Layer.build(EtcdStore.layer({ endpoints: [etcd] })), MetadataStore.MetadataStore)
    const withStore = Effect.provideService(MetadataStore.MetadataStore, store)
    // a node counts once it has registered: queues can move to a broker then, and a proxy is listed
    const registeredIn = (live: Effect.Effect<ReadonlyArray<{ readonly id: string }>, unknown, MetadataStore.MetadataStore>, name: string) =>
      withStore(Effect.orElseSucceed(live, () => [])).pipe(
        Effect.repeat({ until: (records) => records.some((record) => record.id === name), schedule: Schedule.spaced("50 millis") }),
        Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.fail(new ClusterStartFailed(`${name} did not register within 30 s of its start`)) })
      )
    const registered = (name: string) => registeredIn(Catalog.brokers, name)
    const pool = new Map<number, ProxyProcess>()
    const proxyArgs = (proxy: ProxyProcess) => [
      "--role", "proxy", "--proxy-id", proxy.id, "--host", plan.host, "--port", String(proxy.port), "--native-port", String(proxy.nativePort),
      "--data-dir", join(plan.dataDir, proxy.id)
    ]
    const startProxy = (standby: boolean) =>
      startNumbered(
        pool,
        (index, scope): ProxyProcess => ({
          id: `proxy-${index}`,
          port: plan.proxyPort + index - 1,
          nativePort: plan.nativePort + index - 1,
          index,
          scope,
          standby,
          state: "starting"
        }),
        (entry) => ({ name: entry.id, port: entry.port, args: [...proxyArgs(entry), ...(standby ? ["--standby"] : [])] })
      ).pipe(Effect.tap((entry) =>
        Effect.sync(() => {
          // a standby taken while it started is being activated already
          if (entry.state === "starting") entry.state = standby ? "warm" : "active"
        })
      ))
    // a standby registers once activated: then the balancer gives it connections
    const activate = (entry: ProxyProcess) =>
      Effect.gen(function*() {
        entry.state = "activating"
        yield* withStore(NodeRegistration.activate("proxy", entry.id))
        yield* withStore(Effect.orElseSucceed(Catalog.proxies, () => [])).pipe(
          Effect.repeat({ until: (registered) => registered.some((record) => record.id === entry.id), schedule: Schedule.spaced("20 millis") }),
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.fail(new ClusterStartFailed(`${entry.id} did not register within 10 s of its activation`)) })
        )
        entry.state = "active"
      })
    // out of the balancer first, then SIGTERM: it deregisters, sends GOAWAY, drains, exits
    const stopProxy = (entry: ProxyProcess) =>
      Effect.gen(function*() {
        entry.state = "stopping"
        yield* Effect.ignore(withStore(NodeRegistration.deactivate("proxy", entry.id)))
        yield* Scope.close(entry.scope, Exit.void)
        pool.delete(entry.index)
      })
    const inState = (state: ProxyProcess["state"]) => [...pool.values()].filter((entry) => entry.state === state)

    yield* Effect.forEach(Array.from({ length: plan.proxies }), () => startProxy(false), { concurrency: "unbounded", discard: true })
    // the cluster is up once every node started here has registered (a node accepts on its port a
    // moment before): `strait status` run right after lists them all
    yield* Effect.forEach(brokers.values(), (broker) => registered(broker.name), { concurrency: "unbounded", discard: true })
    yield* Effect.forEach(pool.values(), (proxy) => registeredIn(Catalog.proxies, proxy.id), { concurrency: "unbounded", discard: true })
    const balancer = yield* Balancer.scoped({
      host: plan.host,
      port: plan.port,
      backends: () => inState("active").map(({ port }) => ({ host: plan.host, port }))
    })

    const warm = plan.warm ?? 0
    // every missing standby starts at once (a start takes seconds; scale-outs may come faster); one
    // already starting counts, so refills that overlap do not start too many
    const refill = Effect.suspend(() => {
      const missing = Math.max(0, warm - inState("warm").length - inState("starting").length)
      return Effect.forEach(Array.from({ length: missing }), () => startProxy(true), { concurrency: "unbounded", discard: true }).pipe(
        Effect.catch((error) => Effect.logWarning("could not start a standby proxy", error))
      )
    })
    yield* Effect.forEach(Array.from({ length: warm }), () => startProxy(true), { concurrency: "unbounded", discard: true })
    const orchestrator = Orchestrator.Orchestrator.of({
      describe: "local processes",
      nodes: (role) => Effect.sync(() => role === "proxy" ? inState("active").map((entry) => entry.id) : [...brokers.values()].map((broker) => broker.name)),
      scaleOut: (role, count) =>
        role === "broker" ? Effect.gen(function*() {
          const started = yield* Effect.forEach(Array.from({ length: count }), () => startBroker, { concurrency: "unbounded" })
          yield* Effect.forEach(started, (entry) => registered(entry.name), { concurrency: "unbounded", discard: true })
          return started.map((entry) => entry.name)
        }).pipe(Effect.mapError((error) => new Orchestrator.OrchestratorFailed({ reason: error.message }))) : Effect.gen(function*() {
          // warm standbys first, then standbys still starting (sooner up than a process started now)
          const chosen: Array<ProxyProcess> = [...inState("warm"), ...inState("starting").filter((entry) => entry.standby)].slice(0, count)
          for (const entry of chosen) entry.state = "activating"
          const more = yield* Effect.forEach(Array.from({ length: count - chosen.length }), () => startProxy(true), { concurrency: "unbounded" })
          yield* Effect.forEach([...chosen, ...more], activate, { concurrency: "unbounded", discard: true })
          yield* Effect.forkIn(refill, clusterScope)
          return [...chosen, ...more].map((entry) => entry.id)
        }).pipe(Effect.mapError((error) => new Orchestrator.OrchestratorFailed({ reason: error.message }))),
      scaleIn: (role, ids) =>
        role === "broker"
          ? Effect.forEach([...brokers.values()].filter((entry) => ids.includes(entry.name)), (entry) =>
            Effect.andThen(Scope.close(entry.scope, Exit.void), Effect.sync(() => brokers.delete(entry.index))), { concurrency: "unbounded", discard: true })
          : Effect.forEach(inState("active").filter((entry) => ids.includes(entry.id)), stopProxy, { concurrency: "unbounded", discard: true })
    })
    if (plan.autoscale !== undefined) {
      yield* ElasticityController.run({ id: `cluster-up-${process.pid}`, policy: plan.autoscale.policy }).pipe(
        withStore,
        Effect.provideService(Orchestrator.Orchestrator, orchestrator),
        Effect.mapError((error) => new ClusterStartFailed(error.message))
      )
    }

    return {
      address: `${balancer.host}:${balancer.port}`,
      etcd,
      brokers: [...brokers.values()].map(({ name, port }) => `${name} tcp://${plan.host}:${port}`),
      proxies: [...pool.values()].map((entry) =>
        `${entry.id} ${plan.host}:${entry.port} (native protocol tcp://${plan.host}:${entry.nativePort})${entry.state === "warm" ? ", standby" : ""}`
      ),
      /** Scales the proxies (what the controller of `autoscale` uses; benchmarks drive it directly). */
      orchestrator,
      /** Where a proxy of the cluster listens, while it runs. */
      proxy: (id: string) => {
        const entry = [...pool.values()].find((candidate) => candidate.id === id)
        return entry === undefined ? undefined : { host: plan.host, port: entry.port, nativePort: entry.nativePort, state: entry.state }
      }
    }
  })
