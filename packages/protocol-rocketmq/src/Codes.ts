/**
 * RocketMQ status codes (`apache.rocketmq.v2.Code`) for Strait's typed errors: every error a request
 * can end with becomes the status the RocketMQ clients know for it.
 *
 * @since 0.1.0
 */

/**
 * The codes Strait answers with.
 *
 * @since 0.1.0
 */
export const Code = {
  OK: 20000,
  MULTIPLE_RESULTS: 30000,
  BAD_REQUEST: 40000,
  ILLEGAL_TOPIC: 40002,
  ILLEGAL_CONSUMER_GROUP: 40003,
  ILLEGAL_MESSAGE_TAG: 40004,
  ILLEGAL_MESSAGE_KEY: 40005,
  ILLEGAL_MESSAGE_GROUP: 40006,
  ILLEGAL_MESSAGE_PROPERTY_KEY: 40007,
  INVALID_TRANSACTION_ID: 40008,
  ILLEGAL_MESSAGE_ID: 40009,
  ILLEGAL_FILTER_EXPRESSION: 40010,
  ILLEGAL_INVISIBLE_TIME: 40011,
  ILLEGAL_DELIVERY_TIME: 40012,
  INVALID_RECEIPT_HANDLE: 40013,
  MESSAGE_PROPERTY_CONFLICT_WITH_TYPE: 40014,
  UNRECOGNIZED_CLIENT_TYPE: 40015,
  CLIENT_ID_REQUIRED: 40017,
  ILLEGAL_POLLING_TIME: 40018,
  ILLEGAL_OFFSET: 40019,
  UNAUTHORIZED: 40100,
  FORBIDDEN: 40300,
  NOT_FOUND: 40400,
  MESSAGE_NOT_FOUND: 40401,
  TOPIC_NOT_FOUND: 40402,
  CONSUMER_GROUP_NOT_FOUND: 40403,
  MESSAGE_BODY_TOO_LARGE: 41301,
  MESSAGE_BODY_EMPTY: 41302,
  TOO_MANY_REQUESTS: 42900,
  MESSAGE_PROPERTIES_TOO_LARGE: 43101,
  INTERNAL_SERVER_ERROR: 50001,
  NOT_IMPLEMENTED: 50100,
  PROXY_TIMEOUT: 50400,
  UNSUPPORTED: 50500
} as const

/**
 * A code's name, as the protos' enum names it (what goes on the wire with `enums: String`).
 *
 * @since 0.1.0
 */
export type CodeName = keyof typeof Code

/**
 * A `Status` to answer with.
 *
 * @since 0.1.0
 */
export interface Status {
  readonly code: CodeName
  readonly message: string
}

const byTag: Record<string, CodeName> = {
  BadRequest: "BAD_REQUEST",
  BrokerUnavailable: "INTERNAL_SERVER_ERROR",
  BrokerUnreachable: "INTERNAL_SERVER_ERROR",
  NotQueueOwner: "INTERNAL_SERVER_ERROR",
  MetadataUnavailable: "INTERNAL_SERVER_ERROR",
  MalformedResponse: "INTERNAL_SERVER_ERROR",
  ConnectionClosed: "INTERNAL_SERVER_ERROR",
  ConnectionDraining: "INTERNAL_SERVER_ERROR",
  MalformedInput: "INTERNAL_SERVER_ERROR",
  RequestTimeout: "PROXY_TIMEOUT",
  MessageBodyEmpty: "MESSAGE_BODY_EMPTY",
  MessageBodyTooLarge: "MESSAGE_BODY_TOO_LARGE",
  IllegalMessageTag: "ILLEGAL_MESSAGE_TAG",
  IllegalMessageKey: "ILLEGAL_MESSAGE_KEY",
  IllegalMessageGroup: "ILLEGAL_MESSAGE_GROUP",
  IllegalPropertyKey: "ILLEGAL_MESSAGE_PROPERTY_KEY",
  IllegalPropertyValue: "ILLEGAL_MESSAGE_PROPERTY_KEY",
  MessagePropertiesTooLarge: "MESSAGE_PROPERTIES_TOO_LARGE",
  IllegalDeliveryTime: "ILLEGAL_DELIVERY_TIME",
  IllegalMessagePriority: "BAD_REQUEST",
  IllegalMessageTtl: "BAD_REQUEST",
  MessagePropertyConflict: "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
  MessageTypeMismatch: "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
  IllegalTopicName: "ILLEGAL_TOPIC",
  IllegalNamespace: "BAD_REQUEST",
  IllegalMessageId: "ILLEGAL_MESSAGE_ID",
  IllegalConsumerGroup: "ILLEGAL_CONSUMER_GROUP",
  TopicNotFound: "TOPIC_NOT_FOUND",
  TopicAlreadyExists: "BAD_REQUEST",
  IllegalTopicSpec: "BAD_REQUEST",
  IllegalTopicChange: "BAD_REQUEST",
  QueueNotFound: "NOT_FOUND",
  OffsetOutOfRange: "ILLEGAL_OFFSET",
  IllegalInvisibleTime: "ILLEGAL_INVISIBLE_TIME",
  IllegalPollingTime: "ILLEGAL_POLLING_TIME",
  ReceiptHandleStale: "INVALID_RECEIPT_HANDLE",
  ReceiptHandleMismatch: "INVALID_RECEIPT_HANDLE",
  InvalidReceiptHandle: "INVALID_RECEIPT_HANDLE",
  ReceiptHandleExpired: "INVALID_RECEIPT_HANDLE",
  RecallFailed: "BAD_REQUEST",
  TransactionNotFound: "INVALID_TRANSACTION_ID",
  IllegalFilterExpression: "ILLEGAL_FILTER_EXPRESSION",
  Unauthorized: "UNAUTHORIZED",
  Forbidden: "FORBIDDEN",
  ClientIdRequired: "CLIENT_ID_REQUIRED",
  UnrecognizedClientType: "UNRECOGNIZED_CLIENT_TYPE",
  TooManyReceives: "TOO_MANY_REQUESTS",
  Throttled: "TOO_MANY_REQUESTS"
}

/**
 * The status answering `error`: its code by its tag (an unknown error is an internal error), and
 * its message.
 *
 * @since 0.1.0
 */
export const statusOf = (error: unknown): Status => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : undefined
  const code = tag === undefined ? undefined : byTag[tag]
  const text = error instanceof Error && error.message !== "" ? error.message : tag ?? String(error)
  return { code: code ?? "INTERNAL_SERVER_ERROR", message: tag === undefined ? text : `${tag}: ${text}` }
}

/**
 * The OK status.
 *
 * @since 0.1.0
 */
export const ok: Status = { code: "OK", message: "OK" }
