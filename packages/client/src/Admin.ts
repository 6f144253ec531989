/**
 * Administration from a service: topics, consumer groups and their lag, over the same connection as
 * producing and consuming (signed calls need the `admin` grant).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type * as Protocol from "./Protocol.ts"
import { StraitClient } from "./StraitClient.ts"

const withClient = <A>(f: (client: StraitClient["Service"]) => Effect.Effect<A, Protocol.Failure>) =>
  Effect.gen(function*() {
    return yield* f(yield* StraitClient)
  })

/**
 * Creates a topic (8 queues, async flush unless said otherwise).
 *
 * @since 0.1.0
 */
export const createTopic = (topic: { readonly name: string; readonly kind: Protocol.TopicInfo["kind"]; readonly queues?: number; readonly flush?: "sync" | "async" }) =>
  withClient((client) =>
    Effect.map(
      client.call({ _tag: "CreateTopic", topic: { name: topic.name, kind: topic.kind, queues: topic.queues ?? 8, flush: topic.flush ?? "async" } }, "Topic"),
      (answer) => answer.topic
    ))

/**
 * Adds queues to a topic, or changes its flush policy.
 *
 * @since 0.1.0
 */
export const updateTopic = (name: string, change: { readonly queues?: number; readonly flush?: "sync" | "async" }) =>
  withClient((client) => Effect.map(client.call({ _tag: "UpdateTopic", name, ...change }, "Topic"), (answer) => answer.topic))

/**
 * Deletes a topic.
 *
 * @since 0.1.0
 */
export const deleteTopic = (name: string) => withClient((client) => Effect.asVoid(client.call({ _tag: "DeleteTopic", name }, "Done")))

/**
 * A topic's kind, queues and flush policy.
 *
 * @since 0.1.0
 */
export const describeTopic = (name: string) => withClient((client) => Effect.map(client.call({ _tag: "DescribeTopic", name }, "Topic"), (answer) => answer.topic))

/**
 * Every topic of the client's namespace.
 *
 * @since 0.1.0
 */
export const topics = withClient((client) => Effect.map(client.call({ _tag: "ListTopics" }, "Topics"), (answer) => answer.topics))

/**
 * Sets a consumer group's settings.
 *
 * @since 0.1.0
 */
export const setGroup = (group: Protocol.GroupInfo) => withClient((client) => Effect.map(client.call({ _tag: "SetGroup", group }, "Group"), (answer) => answer.group))

/**
 * A consumer group's settings (the defaults for a group never configured).
 *
 * @since 0.1.0
 */
export const describeGroup = (name: string) => withClient((client) => Effect.map(client.call({ _tag: "DescribeGroup", name }, "Group"), (answer) => answer.group))

/**
 * Every consumer group configured or used.
 *
 * @since 0.1.0
 */
export const groups = withClient((client) => Effect.map(client.call({ _tag: "ListGroups" }, "Groups"), (answer) => answer.groups))

/**
 * Where a consumer group stands on every queue of every broker: end, consumed offset, lag, messages
 * in flight.
 *
 * @since 0.1.0
 */
export const lag = (group: string) => withClient((client) => Effect.map(client.call({ _tag: "GroupLag", name: group }, "Lag"), (answer) => answer.queues))
