/**
 * Strait's admin service, served on the same gRPC port as RocketMQ (`strait.admin.v1.Admin`): topics
 * and consumer groups, created, changed, listed and described. The `strait` CLI is its client.
 *
 * **Details**
 *
 * Requests and answers are JSON documents (the service is small and not on any hot path). An answer
 * is `{ ok: true, value }` or `{ ok: false, error: { tag, code, message } }` with the RocketMQ code of
 * the error. Calls are signed and authorized like RocketMQ calls (the `admin` action).
 *
 * @since 0.1.0
 */
import * as Grpc from "@grpc/grpc-js"
import { Buffer } from "node:buffer"
import type { Proxy, Routing } from "@strait/proxy"
import * as Codes from "./Codes.ts"

const servicePath = "/strait.admin.v1.Admin"

const toJson = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8")
const fromJson = (bytes: Buffer): any => JSON.parse(bytes.toString("utf8"))

const method = (name: string): Grpc.MethodDefinition<unknown, unknown> => ({
  path: `${servicePath}/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: toJson,
  requestDeserialize: fromJson,
  responseSerialize: toJson,
  responseDeserialize: fromJson
})

/**
 * The admin methods.
 *
 * @since 0.1.0
 */
export const methods = ["CreateTopic", "UpdateTopic", "DeleteTopic", "DescribeTopic", "ListTopics", "SetGroup", "DescribeGroup", "ListGroups", "Status", "SetAccess"] as const

/**
 * An admin method's name.
 *
 * @since 0.1.0
 */
export type Method = typeof methods[number]

/**
 * The service definition, for the server and for clients.
 *
 * @since 0.1.0
 */
export const definition: Grpc.ServiceDefinition = Object.fromEntries(methods.map((name) => [name, method(name)]))

/**
 * A topic as the admin service shows it: the proxy's view of it.
 *
 * @since 0.1.0
 */
export type TopicInfo = Proxy.TopicView

/**
 * The cluster's nodes and queue owners.
 *
 * @since 0.1.0
 */
export type StatusInfo = Routing.ClusterStatus

/**
 * A consumer group as the admin service shows it.
 *
 * @since 0.1.0
 */
export interface GroupInfo {
  readonly name: string
  readonly maxDeliveryAttempts: number
  readonly fifo: boolean
  /** Messages stored and not yet consumed by the group, over every queue. */
  readonly lag?: number
  /** Messages the group holds in flight (received, not yet acknowledged), over every queue. */
  readonly inFlight?: number
  /** Per queue of every broker (`DescribeGroup` only). */
  readonly queues?: ReadonlyArray<Proxy.GroupQueueProgress>
}

/**
 * An answer.
 *
 * @since 0.1.0
 */
export type Answer<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly error: { readonly tag: string; readonly code: Codes.CodeName; readonly message: string } }

/**
 * The answer for a failure.
 *
 * @since 0.1.0
 */
export const failure = (error: unknown): Answer<never> => {
  const status = Codes.statusOf(error)
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Defect"
  return { ok: false, error: { tag, code: status.code, message: status.message } }
}
