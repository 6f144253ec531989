/**
 * `@strait/core`: the domain model, typed errors, limits, the actor kit, the data-plane frame codec
 * and the `Transport` service interface that every other Strait package builds on.
 *
 * @since 0.1.0
 */
export * as Actor from "./Actor.ts"
export * as ActorRegistry from "./ActorRegistry.ts"
export * as Bytes from "./Bytes.ts"
export * as ConsumerGroup from "./ConsumerGroup.ts"
export * as EventLoopScheduler from "./adapters/EventLoopScheduler.ts"
export * as Frame from "./Frame.ts"
export * as Limits from "./Limits.ts"
export * as Message from "./Message.ts"
export * as MessageBatch from "./MessageBatch.ts"
export * as MessageId from "./MessageId.ts"
export * as MinHeap from "./MinHeap.ts"
export * as PlantedBugs from "./PlantedBugs.ts"
export * as ReceiptHandle from "./ReceiptHandle.ts"
export * as RequestSlots from "./RequestSlots.ts"
export * as Signature from "./Signature.ts"
export * as Topic from "./Topic.ts"
export * as Trace from "./Trace.ts"
export * as Transport from "./Transport.ts"
export * as Wire from "./Wire.ts"
