/**
 * The `Orchestrator` on Kubernetes: proxies are the pods of a Deployment, brokers the pods of a
 * StatefulSet (as `deploy/kubernetes` defines them), scaled through the API server's `scale`
 * subresource. A node's id is its pod's name (the manifests set `STRAIT_PROXY_ID` from it).
 *
 * **Details**
 *
 * - `nodes` lists the role's pods that are running, ready, and not being deleted.
 * - A scale-out raises the workload's replicas and answers once as many new pods are ready.
 * - A proxy scale-in first marks the chosen pods cheapest to delete
 *   (`controller.kubernetes.io/pod-deletion-cost`), so the ReplicaSet removes those and no others,
 *   then lowers the replicas and answers once they are gone; each one drains (GOAWAY) within its
 *   grace period as it stops.
 * - A StatefulSet removes its highest ordinals, and a broker leaves safely only once its queues are
 *   drained; a broker scale-in is refused unless it names exactly the highest ordinals.
 * - Requests use the pod's service account (token and CA under
 *   `/var/run/secrets/kubernetes.io/serviceaccount`) unless given others.
 *
 * @since 0.1.0
 */
import { Data, Duration, Effect, Layer, Schedule } from "effect"
import { readFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { Role } from "../Elasticity.ts"
import { Orchestrator, OrchestratorFailed } from "../Orchestrator.ts"

/**
 * Where the API server is and what to scale.
 *
 * @since 0.1.0
 */
export interface KubernetesOptions {
  /** The API server (default `https://kubernetes.default.svc`). */
  readonly apiServer?: string
  readonly namespace: string
  /** A bearer token (default: the service account's). */
  readonly token?: string
  /** The API server's CA certificate, PEM (default: the service account's). */
  readonly ca?: string
  readonly proxies: { readonly deployment: string; readonly selector: string }
  readonly brokers: { readonly statefulSet: string; readonly selector: string }
  /** How long a scale waits for its pods (default 2 minutes). */
  readonly timeout?: Duration.Input
}

class ApiError extends Data.TaggedError("ApiError")<{ readonly reason: string }> {}

interface Pod {
  readonly metadata: { readonly name: string; readonly deletionTimestamp?: string }
  readonly status?: {
    readonly phase?: string
    readonly conditions?: ReadonlyArray<{ readonly type: string; readonly status: string }>
  }
}

const serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount"
const readOptional = (path: string) => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

/**
 * The orchestrator over the API server.
 *
 * @since 0.1.0
 */
export const make = (options: KubernetesOptions): Orchestrator["Service"] => {
  const base = new URL(options.apiServer ?? "https://kubernetes.default.svc")
  const token = options.token ?? readOptional(`${serviceAccount}/token`)?.trim()
  const ca = options.ca ?? readOptional(`${serviceAccount}/ca.crt`)
  const timeout = options.timeout ?? Duration.minutes(2)
  const ns = encodeURIComponent(options.namespace)

  const call = (method: "GET" | "PATCH", path: string, body?: unknown) =>
    Effect.tryPromise({
      try: () =>
        new Promise<{ readonly status: number; readonly json: unknown }>((resolve, reject) => {
          const payload = body === undefined ? undefined : JSON.stringify(body)
          const request = (base.protocol === "https:" ? https.request : http.request)(new URL(path, base), {
            method,
            headers: {
              accept: "application/json",
              ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
              ...(payload === undefined ? {} : { "content-type": "application/merge-patch+json", "content-length": Buffer.byteLength(payload) })
            },
            ...(ca === undefined ? {} : { ca })
          }, (response) => {
            let text = ""
            response.setEncoding("utf8")
            response.on("data", (chunk: string) => (text += chunk))
            response.on("end", () => {
              try {
                resolve({ status: response.statusCode ?? 0, json: text === "" ? undefined : JSON.parse(text) as unknown })
              } catch (error) {
                reject(error)
              }
            })
          })
          request.on("error", reject)
          request.end(payload)
        }),
      catch: (error) => new ApiError({ reason: `${method} ${path}: ${error instanceof Error ? error.message : String(error)}` })
    }).pipe(
      Effect.timeoutOrElse({ duration: Duration.seconds(10), orElse: () => Effect.fail(new ApiError({ reason: `${method} ${path}: no answer within 10 s` })) }),
      Effect.flatMap((answer) =>
        answer.status >= 200 && answer.status < 300
          ? Effect.succeed(answer.json)
          : Effect.fail(new ApiError({ reason: `${method} ${path}: ${answer.status} ${JSON.stringify(answer.json)}` }))
      )
    )

  const workload = (role: Role) =>
    role === "proxy"
      ? { path: `/apis/apps/v1/namespaces/${ns}/deployments/${encodeURIComponent(options.proxies.deployment)}/scale`, selector: options.proxies.selector }
      : { path: `/apis/apps/v1/namespaces/${ns}/statefulsets/${encodeURIComponent(options.brokers.statefulSet)}/scale`, selector: options.brokers.selector }

  const pods = (role: Role) =>
    Effect.map(
      call("GET", `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(workload(role).selector)}`),
      (json) => ((json as { readonly items?: ReadonlyArray<Pod> } | undefined)?.items ?? [])
    )
  const ready = (pod: Pod) =>
    pod.metadata.deletionTimestamp === undefined && pod.status?.phase === "Running" &&
    (pod.status.conditions ?? []).some((condition) => condition.type === "Ready" && condition.status === "True")
  const readyNames = (role: Role) => Effect.map(pods(role), (all) => all.filter(ready).map((pod) => pod.metadata.name).sort())
  const replicas = (role: Role) =>
    Effect.map(call("GET", workload(role).path), (json) => (json as { readonly spec?: { readonly replicas?: number } } | undefined)?.spec?.replicas ?? 0)
  const setReplicas = (role: Role, count: number) => call("PATCH", workload(role).path, { spec: { replicas: count } })
  // looks again every second until `done` holds, for at most the scale's timeout
  const until = <A>(look: Effect.Effect<A, ApiError>, done: (value: A) => boolean, what: string) =>
    look.pipe(
      Effect.repeat({ until: done, schedule: Schedule.spaced(Duration.seconds(1)) }),
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(new ApiError({ reason: `${what} within ${Duration.format(Duration.fromInputUnsafe(timeout))}` })) })
    )
  const failed = Effect.mapError((error: ApiError) => new OrchestratorFailed({ reason: error.reason }))

  return Orchestrator.of({
    describe: `Kubernetes at ${base.origin}, namespace ${options.namespace}`,
    nodes: (role) => readyNames(role).pipe(failed),
    scaleOut: (role, count) =>
      Effect.gen(function*() {
        const before = new Set(yield* readyNames(role))
        yield* setReplicas(role, (yield* replicas(role)) + count)
        const after = yield* until(readyNames(role), (names) => names.filter((name) => !before.has(name)).length >= count, `${count} new ${role} pods were not ready`)
        return after.filter((name) => !before.has(name)).slice(0, count)
      }).pipe(failed),
    scaleIn: (role, ids) =>
      Effect.gen(function*() {
        const current = yield* replicas(role)
        if (role === "broker") {
          const highest = Array.from({ length: ids.length }, (_, i) => `${options.brokers.statefulSet}-${current - 1 - i}`)
          if (!ids.every((id) => highest.includes(id))) {
            return yield* new ApiError({ reason: `a StatefulSet removes its highest ordinals (${highest.join(", ")}), not ${ids.join(", ")}` })
          }
        } else {
          for (const id of ids) {
            yield* call("PATCH", `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(id)}`, {
              metadata: { annotations: { "controller.kubernetes.io/pod-deletion-cost": "-1000" } }
            })
          }
        }
        yield* setReplicas(role, Math.max(0, current - ids.length))
        yield* until(pods(role), (all) => !all.some((pod) => ids.includes(pod.metadata.name)), `${ids.join(", ")} did not stop`)
      }).pipe(failed)
  })
}

/**
 * The orchestrator as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (options: KubernetesOptions): Layer.Layer<Orchestrator> => Layer.succeed(Orchestrator, make(options))
