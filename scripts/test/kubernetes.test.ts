// The Kubernetes manifests (deploy/kubernetes) against the Kubernetes API's own schemas, and against
// what Strait reads: no cluster runs here, so this is what checks them.
import { ConfigFile, variables } from "@strait/cli/cli"
import { Schema } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, test } from "vitest"
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1"
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1"
import { ConfigMap, Service, ServiceAccount } from "kubernetes-models/v1"
import { parseAllDocuments } from "yaml"

// the kinds the manifests use, with the API's schemas
const models: Record<string, (new(object: any) => { validate(): void }) | undefined> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "v1/ServiceAccount": ServiceAccount,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding
}

const directory = fileURLToPath(new URL("../../deploy/kubernetes/", import.meta.url))
const documents = readdirSync(directory)
  .filter((name) => name.endsWith(".yaml"))
  .flatMap((name) => parseAllDocuments(readFileSync(join(directory, name), "utf8")).map((document) => ({ name, object: document.toJS() as any })))
const find = (kind: string, name: string) => documents.find(({ object }) => object.kind === kind && object.metadata.name === name)!.object
const container = (workload: any) => workload.spec.template.spec.containers[0]
const envOf = (workload: any) => new Map<string, string>(container(workload).env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]))

describe("the Kubernetes manifests", () => {
  test.for(documents.map(({ name, object }) => [`${name}: ${object.kind} ${object.metadata.name}`, object] as const))(
    "%s is valid against the Kubernetes API schema",
    ([, object]) => {
      const Model = models[`${object.apiVersion}/${object.kind}`]
      expect(Model, `a model of ${object.apiVersion} ${object.kind}`).toBeDefined()
      expect(() => new Model!(object).validate()).not.toThrow()
    }
  )

  const nodeConfig = Schema.decodeUnknownSync(Schema.fromJsonString(ConfigFile))(find("ConfigMap", "strait-config").data["node.json"])
  const broker = find("StatefulSet", "strait-broker")
  const proxy = find("Deployment", "strait-proxy")

  test("the node configuration they mount is one strait reads", () => {
    expect(nodeConfig.tuning?.drainTimeoutMillis).toBeGreaterThan(0)
  })

  test("every STRAIT_ variable they set is one strait reads", () => {
    const known = new Set<string>(Object.values(variables))
    for (const workload of [broker, proxy]) {
      for (const name of envOf(workload).keys()) if (name.startsWith("STRAIT_")) expect(known).toContain(name)
    }
  })

  test("a proxy's grace period covers its preStop pause and the drain deadline", () => {
    const preStop = Number(container(proxy).lifecycle.preStop.exec.command[1])
    const drainSeconds = nodeConfig.tuning!.drainTimeoutMillis! / 1000
    expect(proxy.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drainSeconds + 1)
  })

  test("brokers keep their id and disk: the pod name is the broker id, advertised under the headless service, with its data on its own volume", () => {
    const env = envOf(broker)
    expect(env.get("STRAIT_ROLE")).toBe("broker")
    expect(env.get("STRAIT_BROKER_ID")).toBe("$(POD_NAME)")
    expect(env.get("STRAIT_BROKER_ADVERTISE")).toBe(`tcp://$(POD_NAME).${broker.spec.serviceName}:7001`)
    expect(find("Service", broker.spec.serviceName).spec.clusterIP).toBe("None")
    const dataMount = container(broker).volumeMounts.find((mount: any) => mount.mountPath === env.get("STRAIT_DATA_DIR"))
    expect(broker.spec.volumeClaimTemplates.map((claim: any) => claim.metadata.name)).toContain(dataMount.name)
  })

  test("brokers and proxies use the etcd members the etcd StatefulSet runs, and the Service sends clients to the proxies' port", () => {
    const etcd = find("StatefulSet", "strait-etcd")
    const members = Array.from({ length: etcd.spec.replicas }, (_, i) => `http://strait-etcd-${i}.${etcd.spec.serviceName}:2379`).join(",")
    expect(envOf(broker).get("STRAIT_ETCD")).toBe(members)
    expect(envOf(proxy).get("STRAIT_ETCD")).toBe(members)
    const service = find("Service", "strait")
    expect(service.spec.selector).toEqual(proxy.spec.template.metadata.labels)
    expect(String(envOf(proxy).get("STRAIT_PORT"))).toBe(String(container(proxy).ports.find((port: any) => port.name === service.spec.ports[0].targetPort).containerPort))
  })

  test("the elasticity controller scales the proxies' Deployment by their labels, with a role that allows just what it calls, and campaigns in the same etcd", () => {
    const controller = find("Deployment", "strait-controller")
    const args: Array<string> = container(controller).args
    const flag = (name: string) => args[args.indexOf(name) + 1]
    expect(args[0]).toBe("controller")
    expect(flag("--proxy-deployment")).toBe(proxy.metadata.name)
    expect(flag("--proxy-selector")).toBe(Object.entries(proxy.spec.template.metadata.labels).map(([key, value]) => `${key}=${value}`).join(","))
    expect(envOf(controller).get("STRAIT_ETCD")).toBe(envOf(proxy).get("STRAIT_ETCD"))
    const binding = find("RoleBinding", "strait-controller")
    expect(binding.subjects[0].name).toBe(controller.spec.template.spec.serviceAccountName)
    const rules: Array<any> = find("Role", binding.roleRef.name).rules
    const allows = (group: string, resource: string, verb: string) =>
      rules.some((rule) => rule.apiGroups.includes(group) && rule.resources.includes(resource) && rule.verbs.includes(verb))
    for (const verb of ["get", "patch"]) expect(allows("apps", "deployments/scale", verb)).toBe(true)
    for (const verb of ["list", "patch"]) expect(allows("", "pods", verb)).toBe(true)
    expect(allows("", "pods", "delete")).toBe(false)
  })
})

