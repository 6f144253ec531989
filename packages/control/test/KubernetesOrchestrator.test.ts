// The orchestrator on Kubernetes, against a fake API server that keeps a Deployment, a StatefulSet
// and their pods as the real one would (new pods ready at once; a lower deletion cost goes first).
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { KubernetesOrchestrator } from "../src/index.ts"

interface FakePod {
  name: string
  ready: boolean
  terminating: boolean
  deletionCost: number
}

const fakeApiServer = Effect.acquireRelease(
  Effect.promise(async () => {
    const workloads = new Map<string, { replicas: number; pods: Array<FakePod>; next: number; ordered: boolean; prefix: string }>([
      ["deployments/strait-proxy", { replicas: 3, pods: [], next: 0, ordered: false, prefix: "strait-proxy-" }],
      ["statefulsets/strait-broker", { replicas: 2, pods: [], next: 0, ordered: true, prefix: "strait-broker-" }]
    ])
    const seen: Array<{ readonly method: string; readonly path: string; readonly authorization?: string; readonly contentType?: string; readonly body?: unknown }> = []
    let forbidden = false
    // the controllers: pods follow replicas
    const reconcile = (workload: ReturnType<typeof workloads.get> & {}) => {
      while (workload.pods.filter((pod) => !pod.terminating).length < workload.replicas) {
        const name = workload.prefix + (workload.ordered ? String(workload.pods.length) : `p${workload.next++}`)
        workload.pods.push({ name, ready: true, terminating: false, deletionCost: 0 })
      }
      while (workload.pods.length > workload.replicas) {
        const victim = workload.ordered
          ? workload.pods[workload.pods.length - 1]!
          : [...workload.pods].sort((a, b) => a.deletionCost - b.deletionCost)[0]!
        workload.pods.splice(workload.pods.indexOf(victim), 1)
      }
    }
    for (const workload of workloads.values()) reconcile(workload)
    // beside the Deployment's pods, one that is not ready yet and one being deleted: neither is a node
    const extras: Array<FakePod> = [
      { name: "strait-proxy-starting", ready: false, terminating: false, deletionCost: 0 },
      { name: "strait-proxy-leaving", ready: true, terminating: true, deletionCost: 0 }
    ]

    const server = http.createServer((request, response) => {
      let text = ""
      request.on("data", (chunk) => (text += chunk))
      request.on("end", () => {
        const url = new URL(request.url!, "http://fake")
        const body = text === "" ? undefined : JSON.parse(text)
        seen.push({
          method: request.method!,
          path: url.pathname,
          ...(request.headers.authorization === undefined ? {} : { authorization: request.headers.authorization }),
          ...(request.headers["content-type"] === undefined ? {} : { contentType: request.headers["content-type"] }),
          ...(body === undefined ? {} : { body })
        })
        const answer = (status: number, json: unknown) => {
          response.writeHead(status, { "content-type": "application/json" })
          response.end(JSON.stringify(json))
        }
        if (forbidden) return answer(403, { kind: "Status", reason: "Forbidden", message: "pods is forbidden" })
        const scale = /^\/apis\/apps\/v1\/namespaces\/strait\/(deployments\/strait-proxy|statefulsets\/strait-broker)\/scale$/.exec(url.pathname)
        if (scale !== null) {
          const workload = workloads.get(scale[1]!)!
          if (request.method === "PATCH") {
            workload.replicas = body.spec.replicas
            reconcile(workload)
          }
          return answer(200, { spec: { replicas: workload.replicas } })
        }
        if (url.pathname === "/api/v1/namespaces/strait/pods" && request.method === "GET") {
          const selector = url.searchParams.get("labelSelector")
          const proxies = selector === "app.kubernetes.io/name=strait-proxy"
          const listed = proxies ? [...workloads.get("deployments/strait-proxy")!.pods, ...extras] : workloads.get("statefulsets/strait-broker")!.pods
          return answer(200, {
            items: listed.map((pod) => ({
              metadata: { name: pod.name, ...(pod.terminating ? { deletionTimestamp: "2026-12-07T00:00:00Z" } : {}) },
              status: { phase: "Running", conditions: [{ type: "Ready", status: pod.ready ? "True" : "False" }] }
            }))
          })
        }
        const pod = /^\/api\/v1\/namespaces\/strait\/pods\/(.+)$/.exec(url.pathname)
        if (pod !== null && request.method === "PATCH") {
          const found = [...workloads.values()].flatMap((workload) => workload.pods).find((candidate) => candidate.name === pod[1])
          if (found === undefined) return answer(404, { reason: "NotFound" })
          found.deletionCost = Number(body.metadata.annotations["controller.kubernetes.io/pod-deletion-cost"])
          return answer(200, {})
        }
        answer(404, { reason: "NotFound" })
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return {
      server,
      seen,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      forbid: () => void (forbidden = true)
    }
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

const orchestratorOf = (url: string) =>
  KubernetesOrchestrator.make({
    apiServer: url,
    namespace: "strait",
    token: "sa-token",
    proxies: { deployment: "strait-proxy", selector: "app.kubernetes.io/name=strait-proxy" },
    brokers: { statefulSet: "strait-broker", selector: "app.kubernetes.io/name=strait-broker" }
  })

describe("KubernetesOrchestrator", () => {
  it.effect("a role's nodes are its running, ready pods that are not being deleted", () =>
    Effect.gen(function*() {
      const api = yield* fakeApiServer
      const orchestrator = orchestratorOf(api.url)
      assert.deepStrictEqual(yield* orchestrator.nodes("proxy"), ["strait-proxy-p0", "strait-proxy-p1", "strait-proxy-p2"])
      assert.deepStrictEqual(yield* orchestrator.nodes("broker"), ["strait-broker-0", "strait-broker-1"])
      assert.strictEqual(api.seen[0]?.authorization, "Bearer sa-token")
    }).pipe(Effect.scoped))

  it.effect("a scale-out raises the Deployment's replicas through its scale subresource and answers with the new ready pods", () =>
    Effect.gen(function*() {
      const api = yield* fakeApiServer
      const started = yield* orchestratorOf(api.url).scaleOut("proxy", 2)
      assert.deepStrictEqual(started, ["strait-proxy-p3", "strait-proxy-p4"])
      const patch = api.seen.find((request) => request.method === "PATCH")
      assert.deepStrictEqual(patch, {
        method: "PATCH",
        path: "/apis/apps/v1/namespaces/strait/deployments/strait-proxy/scale",
        authorization: "Bearer sa-token",
        contentType: "application/merge-patch+json",
        body: { spec: { replicas: 5 } }
      })
    }).pipe(Effect.scoped))

  it.effect("a proxy scale-in marks the chosen pods cheapest to delete, then lowers the replicas: those pods go, no others", () =>
    Effect.gen(function*() {
      const api = yield* fakeApiServer
      const orchestrator = orchestratorOf(api.url)
      yield* orchestrator.scaleIn("proxy", ["strait-proxy-p1"])
      assert.deepStrictEqual(yield* orchestrator.nodes("proxy"), ["strait-proxy-p0", "strait-proxy-p2"])
      const patches = api.seen.filter((request) => request.method === "PATCH").map((request) => [request.path, request.body])
      assert.deepStrictEqual(patches, [
        ["/api/v1/namespaces/strait/pods/strait-proxy-p1", { metadata: { annotations: { "controller.kubernetes.io/pod-deletion-cost": "-1000" } } }],
        ["/apis/apps/v1/namespaces/strait/deployments/strait-proxy/scale", { spec: { replicas: 2 } }]
      ])
    }).pipe(Effect.scoped))

  it.effect("a broker scale-in must name the StatefulSet's highest ordinals; the API server's refusals are OrchestratorFailed", () =>
    Effect.gen(function*() {
      const api = yield* fakeApiServer
      const orchestrator = orchestratorOf(api.url)
      const wrong = yield* Effect.flip(orchestrator.scaleIn("broker", ["strait-broker-0"]))
      assert.strictEqual(wrong._tag, "OrchestratorFailed")
      assert.include(wrong.reason, "highest ordinals (strait-broker-1)")
      yield* orchestrator.scaleIn("broker", ["strait-broker-1"])
      assert.deepStrictEqual(yield* orchestrator.nodes("broker"), ["strait-broker-0"])
      api.forbid()
      const refused = yield* Effect.flip(orchestrator.scaleOut("proxy", 1))
      assert.include(refused.reason, "403")
      assert.include(refused.reason, "forbidden")
    }).pipe(Effect.scoped))
})
