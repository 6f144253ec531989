/**
 * What happened in a simulated run, as the checker reads it: every client operation with its outcome
 * (Jepsen style: an operation that failed may still have taken effect), the faults applied, and what
 * brokers did to queues (claims and stores, from their `Trace` records), each at its virtual time.
 *
 * @since 0.1.0
 */

/**
 * A message the workload sent: `key` is the workload's own name for it (carried in its body), so a
 * send whose answer was lost can still be recognized when it is delivered.
 *
 * @since 0.1.0
 */
export interface Sent {
  readonly type: "send"
  /** When the send was made. */
  readonly at: number
  /** When it returned: the broker stored it (if it did) between the two. */
  readonly completedAt: number
  readonly client: string
  readonly key: string
  readonly topic: string
  readonly kind: "NORMAL" | "FIFO" | "DELAY" | "TRANSACTION" | "PRIORITY"
  /** `ok`: stored (and, for a transaction, committed); `fail`: the client saw an error (it may be stored). */
  readonly outcome: "ok" | "fail"
  readonly messageId?: string
  readonly messageGroup?: string
  /** Its place in its producer's sends to its message group (FIFO). */
  readonly sequence?: number
  readonly deliverAt?: number
  /** Its time to live, counted by the broker from when it stored it. */
  readonly ttlMillis?: number
  /** Transactions: how the producer ended it. A rolled-back message must never be delivered. */
  readonly resolution?: "COMMIT" | "ROLLBACK"
}

/**
 * A message handed to a consumer.
 *
 * @since 0.1.0
 */
export interface Delivered {
  readonly type: "deliver"
  /** When the receive that brought it returned. */
  readonly at: number
  /** When that receive was made: the broker took the message between the two. */
  readonly requestedAt: number
  readonly client: string
  readonly group: string
  readonly topic: string
  readonly key: string
  readonly messageId: string
  /**
   * Which stored copy it is (`broker/queue@offset`): a send made again after its answer was lost may
   * be stored twice (at least once, as in RocketMQ), and each copy is delivered on its own.
   */
  readonly copy: string
  /** When the broker stored this copy (a time to live counts from it). */
  readonly storedAt: number
  readonly attempt: number
  readonly receiptHandle: string
  /** When it becomes visible again unless acknowledged (the consumer asked for this window). */
  readonly invisibleUntil: number
}

/**
 * A message a pull consumer read from a queue at an offset (pulls have no invisibility and no
 * attempts: the consumer's committed offset is its progress).
 *
 * @since 0.1.0
 */
export interface Pulled {
  readonly type: "pull"
  readonly at: number
  readonly client: string
  readonly group: string
  readonly topic: string
  readonly key: string
  readonly copy: string
}

/**
 * A pull consumer committed its position on a queue (`broker/queue`) as its group's offset.
 *
 * @since 0.1.0
 */
export interface Committed {
  readonly type: "commit"
  readonly at: number
  readonly client: string
  readonly group: string
  readonly queue: string
  readonly offset: number
  readonly outcome: "ok" | "fail"
}

/**
 * A consumer settled (or tried to settle) a delivery: acknowledged it, or gave it back to come again
 * after `retryAt`.
 *
 * @since 0.1.0
 */
export interface Settled {
  readonly type: "ack" | "nack"
  /** When the request returned. */
  readonly at: number
  /** When it was made: the broker applied it between the two. */
  readonly invokedAt: number
  readonly client: string
  readonly group: string
  readonly key: string
  readonly receiptHandle: string
  /** `unknown`: the consumer died before the answer came (it may have been applied). */
  readonly outcome: "ok" | "fail" | "unknown"
}

/**
 * A producer recalled a delayed message: once a recall succeeded, the message is never delivered.
 *
 * @since 0.1.0
 */
export interface Recalled {
  readonly type: "recall"
  readonly at: number
  readonly invokedAt: number
  readonly client: string
  readonly key: string
  readonly outcome: "ok" | "fail"
}

/**
 * A receive that failed: messages it took may have been lost on the way (they come back later,
 * their attempt counted).
 *
 * @since 0.1.0
 */
export interface ReceiveFailed {
  readonly type: "receive-failed"
  readonly at: number
  readonly client: string
  readonly group: string
  readonly reason: string
}

/**
 * A fault the plan applied, or its end.
 *
 * @since 0.1.0
 */
export interface Fault {
  readonly type: "fault"
  readonly at: number
  readonly fault: string
  readonly nodes: ReadonlyArray<string>
}

/**
 * A broker's claim of a queue at an epoch, or its first store into a queue after a claim.
 *
 * @since 0.1.0
 */
export interface QueueEvent {
  readonly type: "claim" | "store"
  readonly at: number
  readonly broker: string
  readonly queue: string
  readonly epoch: number
  /** A store: the message written. */
  readonly messageId?: string
}

/**
 * One entry of the history.
 *
 * @since 0.1.0
 */
export type Event = Sent | Delivered | Pulled | Committed | Settled | Recalled | ReceiveFailed | Fault | QueueEvent

/**
 * The history of one run, appended to as it happens.
 *
 * @since 0.1.0
 */
export interface History {
  readonly events: Array<Event>
  /** When the run began: reports count time from it. */
  origin: number
}

/**
 * An empty history.
 *
 * @since 0.1.0
 */
export const make = (): History => ({ events: [], origin: 0 })

/**
 * A virtual time as reports show it: seconds since the run's start.
 *
 * @since 0.1.0
 */
export const time = (millis: number, origin: number): string => `${((millis - origin) / 1000).toFixed(3)}s`

/**
 * One line per event, for violation reports.
 *
 * @since 0.1.0
 */
export const format = (event: Event, origin = 0): string => {
  const seconds = (millis: number) => time(millis, origin)
  const at = seconds(event.at)
  switch (event.type) {
    case "send":
      return `${at} ${event.client} send ${event.key} → ${event.topic} (${event.kind}${event.messageGroup === undefined ? "" : ` group ${event.messageGroup} #${event.sequence}`}${
        event.deliverAt === undefined ? "" : ` at ${seconds(event.deliverAt)}`
      }${event.resolution === undefined ? "" : ` ${event.resolution}`}) ${event.outcome}${event.messageId === undefined ? "" : ` ${event.messageId}`}`
    case "deliver":
      return `${at} ${event.client} got ${event.key} for ${event.group} attempt ${event.attempt}, invisible until ${seconds(event.invisibleUntil)}`
    case "ack":
    case "nack":
      return `${at} ${event.client} ${event.type} ${event.key} for ${event.group} ${event.outcome}`
    case "pull":
      return `${at} ${event.client} pulled ${event.key} for ${event.group} from ${event.copy}`
    case "commit":
      return `${at} ${event.client} committed ${event.queue} at ${event.offset} for ${event.group} ${event.outcome}`
    case "recall":
      return `${at} ${event.client} recall ${event.key} ${event.outcome}`
    case "receive-failed":
      return `${at} ${event.client} receive for ${event.group} failed: ${event.reason}`
    case "fault":
      return `${at} fault ${event.fault} ${event.nodes.join(", ")}`
    case "claim":
    case "store":
      return `${at} ${event.broker} ${event.type} ${event.queue} epoch ${event.epoch}${event.messageId === undefined ? "" : ` ${event.messageId}`}`
  }
}
