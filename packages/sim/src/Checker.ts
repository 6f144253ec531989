/**
 * The queue-semantics checker: reads a run's `History` and reports every rule it breaks, each with
 * the events that show it (the message's own events and the faults around them).
 *
 * **Rules**
 *
 * - `lost`: a message whose send was acknowledged (and, in a transaction, committed) reaches every
 *   group that consumes its topic, or that group's dead-letter topic, unless its time to live ran out.
 * - `phantom`: nothing is delivered that was not sent; a rolled-back message is never delivered.
 * - `ack-final`: after an acknowledgement succeeded, the message is not delivered to that group again
 *   (unless a broker crashed, failed a sync or had a full disk in between: acknowledgements and
 *   receive windows are written asynchronously).
 * - `early-redelivery`: a message comes again only once its invisibility ended, it was given back, a
 *   receive that may have carried it failed, or a broker crashed.
 * - `attempts`: a message's delivery attempts, as its group sees them, start at 1 and go up by one; a
 *   gap only where a delivery may have been lost on the way (a receive failed, a fault was in force),
 *   a repeat only where a broker may have lost state (a crash, a failed sync).
 * - `fifo`: in a FIFO group, a message of a message group is delivered only after the one sent before
 *   it (same producer) was acknowledged or dead-lettered; except across a failover (a broker crashed,
 *   stopped, isolated or failing a sync), where the queue's new broker serves new messages while the
 *   old ones wait for theirs.
 * - `delay`: a delayed message is never delivered before its time.
 * - `ttl`: a message is never delivered after its time to live.
 * - `recall`: a delayed message whose recall succeeded is never delivered.
 * - `offsets`: a pull consumer's committed offset on a queue never goes back (and what it pulls
 *   counts for `lost`).
 * - `dead-letter`: a message reaches the dead-letter topic only after its last attempt, and never
 *   comes to its group again.
 * - `fencing`: no two brokers claim one queue at one epoch, and a broker never writes to a queue at an
 *   epoch after another broker claimed a higher one.
 *
 * @since 0.1.0
 */
import * as History from "./History.ts"

/**
 * A broken rule.
 *
 * @since 0.1.0
 */
export interface Violation {
  readonly rule: string
  readonly message: string
  /** The fewest events that show it, in order. */
  readonly excerpt: ReadonlyArray<History.Event>
}

/**
 * What the checker needs to know of the run besides its history.
 *
 * @since 0.1.0
 */
export interface Expectations {
  /** The groups that consume each topic (to the end of the run). */
  readonly consumers: ReadonlyMap<string, ReadonlyArray<string>>
  /** The most delivery attempts of a group before dead-lettering. */
  readonly maxAttempts: number
  /** FIFO groups (consuming FIFO topics in order). */
  readonly fifoTopics: ReadonlySet<string>
  /** How long after a broker is back its queues may still be moving back to it (two lease times). */
  readonly failoverSettles: number
  /**
   * How far apart two nodes' clocks may be (default 0: one clock): a broker's times (when a copy
   * was stored, when its invisibility ends, when a delayed message is due) are compared with the
   * clients' within this much.
   */
  readonly clockErrorMillis?: number
}

/**
 * How many events of each kind the checker looked at.
 *
 * @since 0.1.0
 */
export interface Summary {
  readonly sends: number
  readonly deliveries: number
  readonly redeliveries: number
  readonly acks: number
  readonly faults: number
}

/**
 * The dead-letter topic of a group.
 *
 * @since 0.1.0
 */
export const deadLetterTopic = (group: string) => `%DLQ%${group}`

/**
 * Checks a history.
 *
 * @since 0.1.0
 */
export const check = (history: History.History, expect: Expectations): { readonly violations: ReadonlyArray<Violation>; readonly summary: Summary } => {
  const events = history.events
  // times in messages count from the run's start, as the excerpts do
  const t = (millis: number) => History.time(millis, history.origin)
  const skew = expect.clockErrorMillis ?? 0
  const violations: Array<Violation> = []
  const sends = new Map<string, History.Sent>()
  const faults: Array<History.Fault> = []
  // per (group, key): the deliveries and settlements, in order
  const perMessage = new Map<string, Array<History.Delivered | History.Settled>>()
  const receiveFailures = new Map<string, Array<number>>()
  const dead = new Map<string, History.Delivered>()
  // the copy each receipt handle names
  const copyOf = new Map<string, string>()
  // delayed messages whose recall succeeded
  const recalled = new Set<string>()
  let deliveries = 0
  let redeliveries = 0
  let acks = 0
  for (const event of events) {
    switch (event.type) {
      case "send": {
        const earlier = sends.get(event.key)
        // a send tried again keeps the best outcome known
        if (earlier === undefined || event.outcome === "ok") sends.set(event.key, event)
        break
      }
      case "deliver": {
        deliveries++
        // the dead-letter topic's reader: the message reached the dead-letter topic of the group named
        if (event.topic.startsWith("%DLQ%")) {
          dead.set(`${event.topic.slice("%DLQ%".length)}\u0000${event.key}`, event)
          break
        }
        copyOf.set(event.receiptHandle, event.copy)
        const id = `${event.group}\u0000${event.key}\u0000${event.copy}`
        const line = perMessage.get(id)
        if (line === undefined) perMessage.set(id, [event])
        else {
          redeliveries++
          line.push(event)
        }
        break
      }
      case "ack":
      case "nack": {
        if (event.type === "ack" && event.outcome === "ok") acks++
        const id = `${event.group}\u0000${event.key}\u0000${copyOf.get(event.receiptHandle) ?? ""}`
        const line = perMessage.get(id)
        if (line === undefined) perMessage.set(id, [event])
        else line.push(event)
        break
      }
      case "receive-failed": {
        const line = receiveFailures.get(event.group)
        if (line === undefined) receiveFailures.set(event.group, [event.at])
        else line.push(event.at)
        break
      }
      case "fault":
        faults.push(event)
        break
      case "recall":
        if (event.outcome === "ok") recalled.add(event.key)
        break
      case "claim":
      case "store":
        break
    }
  }

  // When each fault was in force: from its start to its end (a node back, the network healed; the
  // final heal ends all), or an instant. A span is a failover when a broker's queues may have moved,
  // and a loss of state when a broker may have lost consumer-state records, which are written
  // asynchronously: at a crash or a failed sync (an instant), or while its disk was full.
  interface Span {
    readonly from: number
    readonly to: number
    readonly failover: boolean
    readonly stateLoss: boolean
  }
  const spans: Array<Span> = []
  // the spans in force, per key: a node can be under two faults at once (a disk that fills on a
  // broker scaled in), each ended by its own kind of end
  const open = new Map<string, Array<Omit<Span, "to"> & { readonly fault: string }>>()
  const closed = (started: Omit<Span, "to">, to: number): Span => ({ from: started.from, failover: started.failover, stateLoss: started.stateLoss, to })
  // faults that both nodes of a metadata outage, or all of a partition, share one span
  const spanKey = (fault: History.Fault) =>
    fault.fault.startsWith("metadata") ? "metadata" : fault.fault.startsWith("partition") ? "partition" : fault.nodes[0] ?? "network"
  const starts = new Set(["crash", "stop", "scale in", "isolate", "pause", "disk full", "metadata outage", "partition"])
  // each end, and the starts it ends
  const ends = new Map<string, ReadonlySet<string>>([
    ["restart", new Set(["crash", "stop"])],
    ["rejoin", new Set(["isolate"])],
    ["resume", new Set(["pause"])],
    ["network healed", new Set(["isolate", "lossy"])],
    ["disk freed", new Set(["disk full"])],
    ["scale out", new Set(["scale in"])],
    ["metadata back", new Set(["metadata outage"])],
    ["partition healed", new Set(["partition"])]
  ])
  const kindOf = (fault: string) => fault.startsWith("lossy") ? "lossy" : fault
  for (const fault of faults) {
    const key = spanKey(fault)
    const broker = fault.nodes.some((node) => node.startsWith("broker"))
    if (fault.fault === "crash" && broker) spans.push({ from: fault.at, to: fault.at, failover: false, stateLoss: true })
    const ended = ends.get(fault.fault)
    if (starts.has(fault.fault) || fault.fault.startsWith("lossy")) {
      const started = {
        fault: kindOf(fault.fault),
        from: fault.at,
        failover: key === "metadata" || (key !== "partition" && key.startsWith("broker")),
        stateLoss: fault.fault === "disk full"
      }
      const line = open.get(key)
      if (line === undefined) open.set(key, [started])
      else line.push(started)
    } else if (ended !== undefined) {
      // the spans this end ends; an end of some other kind ends the key's latest span, as before
      const line = open.get(key) ?? []
      let closing = line.filter((started) => ended.has(started.fault))
      if (closing.length === 0) closing = line.slice(-1)
      for (const started of closing) spans.push(closed(started, fault.at))
      const left = line.filter((started) => !closing.includes(started))
      if (left.length === 0) open.delete(key)
      else open.set(key, left)
    } else if (fault.fault === "healed") {
      for (const line of open.values()) for (const started of line) spans.push(closed(started, fault.at))
      open.clear()
    } else {
      const failedSync = fault.fault === "failed sync"
      spans.push({ from: fault.at, to: fault.at, failover: failedSync, stateLoss: failedSync && broker })
    }
  }
  for (const line of open.values()) for (const started of line) spans.push(closed(started, Number.POSITIVE_INFINITY))
  const crashBetween = (from: number, to: number) => spans.some((span) => span.stateLoss && span.from <= to && span.to >= from)
  const disturbed = (from: number, to: number) => spans.some((span) => span.from <= to && span.to >= from)
  // a queue moved away from a broker goes back to it after the broker is back: a failover lasts until then
  const failoverBetween = (from: number, to: number) => spans.some((span) => span.failover && span.from <= to && span.to + expect.failoverSettles >= from)
  const receiveFailedBetween = (group: string, from: number, to: number) => (receiveFailures.get(group) ?? []).some((at) => at >= from && at <= to)
  const faultsBetween = (from: number, to: number) => faults.filter((fault) => fault.at >= from && fault.at <= to)
  // each message's own events (its sends, stores, deliveries and settlements), in order, built once
  let byKey: Map<string, Array<History.Event>> | undefined
  const eventsOf = (key: string) => {
    if (byKey === undefined) {
      const index = new Map<string, Array<History.Event>>()
      const keyOfId = new Map<string, string>()
      for (const sent of sends.values()) if (sent.messageId !== undefined) keyOfId.set(sent.messageId, sent.key)
      for (const event of events) {
        const owner = event.type === "send" || event.type === "deliver" || event.type === "pull" || event.type === "ack" || event.type === "nack" ||
            event.type === "recall"
          ? event.key
          : event.type === "store" && event.messageId !== undefined
          ? keyOfId.get(event.messageId)
          : undefined
        if (owner === undefined) continue
        const line = index.get(owner)
        if (line === undefined) index.set(owner, [event])
        else line.push(event)
      }
      byKey = index
    }
    return byKey.get(key) ?? []
  }
  const excerptOf = (key: string, group: string | undefined, extra: ReadonlyArray<History.Event> = []) => {
    const own = eventsOf(key).filter((event) =>
      !(event.type === "deliver" || event.type === "ack" || event.type === "nack") ||
      group === undefined || event.group === group || (event.type === "deliver" && event.topic === deadLetterTopic(group))
    )
    const from = own[0]?.at ?? 0
    const to = own[own.length - 1]?.at ?? 0
    return [...own, ...faultsBetween(from, to), ...extra].sort((a, b) => a.at - b.at)
  }
  const report = (rule: string, message: string, key: string, group: string | undefined, extra: ReadonlyArray<History.Event> = []) =>
    violations.push({ rule, message, excerpt: excerptOf(key, group, extra) })

  // phantom, delay, ttl: per delivery
  for (const event of events) {
    if (event.type !== "deliver") continue
    const sent = sends.get(event.key)
    if (sent === undefined) {
      report("phantom", `${event.key} was delivered to ${event.group} but never sent`, event.key, event.group)
      continue
    }
    if (sent.resolution === "ROLLBACK") report("phantom", `${event.key} was rolled back but delivered to ${event.group}`, event.key, event.group)
    if (recalled.has(event.key)) report("recall", `${event.key} was recalled but delivered to ${event.group}`, event.key, event.group)
    if (sent.deliverAt !== undefined && event.at < sent.deliverAt - skew) {
      report("delay", `${event.key} was due at ${t(sent.deliverAt)} but delivered at ${t(event.at)}`, event.key, event.group)
    }
    // its time to live counts from when the broker stored this copy
    if (sent.ttlMillis !== undefined && event.requestedAt > event.storedAt + sent.ttlMillis + skew) {
      report("ttl", `${event.key} expired at ${t(event.storedAt + sent.ttlMillis)} but a receive made at ${t(event.requestedAt)} got it`, event.key, event.group)
    }
  }

  // per (group, message, stored copy): ack-final, early-redelivery, attempts, dead-letter
  for (const [id, line] of perMessage) {
    const [group, key] = id.split("\u0000") as [string, string, string]
    const deliveries = line.filter((event): event is History.Delivered => event.type === "deliver")
    const settles = line.filter((event): event is History.Settled => event.type !== "deliver")
    for (let i = 0; i < deliveries.length; i++) {
      const event = deliveries[i]!
      // the receive that brought it again was made after an acknowledgement had been answered
      const acked = settles.find((settle) => settle.type === "ack" && settle.outcome === "ok" && settle.at < event.requestedAt)
      if (acked !== undefined && !crashBetween(acked.invokedAt, event.at)) {
        report("ack-final", `${key} was acknowledged by ${group} at ${t(acked.at)} and delivered again by a receive made at ${t(event.requestedAt)}`, key, group)
      }
      const previous = deliveries[i - 1]
      if (previous === undefined) {
        // a first delivery lost on the way (a receive that failed, a client or proxy gone) counts
        if (event.attempt !== 1 && !receiveFailedBetween(group, 0, event.at) && !disturbed(0, event.at)) {
          report("attempts", `${key} first came to ${group} at attempt ${event.attempt}`, key, group)
        }
        continue
      }
      // given back: a change of invisibility, or an acknowledgement that may not have been applied
      const gaveBack = settles.some((settle) =>
        (settle.type === "nack" || settle.outcome !== "ok") && settle.invokedAt >= previous.requestedAt && settle.invokedAt <= event.at
      )
      // (the broker took the message between the receive's request and its answer)
      const cause = event.at >= previous.invisibleUntil - skew || gaveBack || receiveFailedBetween(group, previous.at, event.at) ||
        crashBetween(previous.requestedAt, event.at)
      if (!cause) {
        report("early-redelivery", `${key} came to ${group} again at ${t(event.at)}, before its invisibility ended at ${t(previous.invisibleUntil)}`, key, group)
      }
      const step = event.attempt - previous.attempt
      const excused = step > 1
        ? receiveFailedBetween(group, previous.at, event.at) || disturbed(previous.requestedAt, event.at)
        : crashBetween(previous.requestedAt, event.at)
      if (step !== 1 && !excused) {
        report("attempts", `${key} came to ${group} at attempt ${event.attempt} after attempt ${previous.attempt}`, key, group)
      }
    }
    // past its last attempt a message goes to the dead-letter topic, never to its group
    const beyond = deliveries.find((delivery) => delivery.attempt > expect.maxAttempts)
    if (beyond !== undefined) {
      report("dead-letter", `${key} came to ${group} at attempt ${beyond.attempt}, past the last (${expect.maxAttempts})`, key, group)
    }
  }

  // dead letters only after the last attempt (of some stored copy of the message)
  for (const [id, deadLettered] of dead) {
    const [group, key] = id.split("\u0000") as [string, string]
    let last = 0
    for (const [copyId, line] of perMessage) {
      if (!copyId.startsWith(`${id}\u0000`)) continue
      for (const event of line) if (event.type === "deliver") last = Math.max(last, event.attempt)
    }
    if (last < expect.maxAttempts && !receiveFailedBetween(group, 0, deadLettered.at) && !disturbed(0, deadLettered.at)) {
      report("dead-letter", `${key} reached ${deadLetterTopic(group)} after ${last} of ${expect.maxAttempts} attempts`, key, group)
    }
  }

  // lost: every acknowledged send reaches each group of its topic
  for (const { group, sent } of undelivered(history, expect)) {
    report("lost", `${sent.key} was stored (${sent.messageId ?? "?"}) but never reached ${group}`, sent.key, group)
  }

  // fifo: a message group's next message only after the one before it was settled for good
  const firstDelivery = new Map<string, History.Delivered>()
  const firstAck = new Map<string, History.Settled>()
  for (const event of events) {
    if (event.type === "deliver" && !firstDelivery.has(`${event.group}\u0000${event.key}`)) firstDelivery.set(`${event.group}\u0000${event.key}`, event)
    if (event.type === "ack") {
      const id = `${event.group}\u0000${event.key}`
      const known = firstAck.get(id)
      if (known === undefined || event.invokedAt < known.invokedAt) firstAck.set(id, event)
    }
  }
  const fifoSends = new Map<string, Array<History.Sent>>()
  for (const sent of sends.values()) {
    if (!expect.fifoTopics.has(sent.topic) || sent.messageGroup === undefined || sent.outcome !== "ok") continue
    const id = `${sent.topic}\u0000${sent.client}\u0000${sent.messageGroup}`
    const line = fifoSends.get(id)
    if (line === undefined) fifoSends.set(id, [sent])
    else line.push(sent)
  }
  for (const line of fifoSends.values()) {
    line.sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0))
    for (const group of expect.consumers.get(line[0]!.topic) ?? []) {
      for (let i = 1; i < line.length; i++) {
        const later = firstDelivery.get(`${group}\u0000${line[i]!.key}`)
        if (later === undefined) continue
        const earlier = line[i - 1]!
        // dead-lettered: the broker moved it at some time before the reader saw it, so no order is checked
        if (dead.has(`${group}\u0000${earlier.key}`)) continue
        // an acknowledgement that may have been applied (answered ok, failed, or never answered)
        const settled = firstAck.get(`${group}\u0000${earlier.key}`)
        // the acknowledgement of the one before was made only after this one had been received
        const settledAt = settled?.invokedAt ?? Number.POSITIVE_INFINITY
        // a queue that moved to another broker serves new messages while the old ones wait for theirs
        if (settledAt > later.at && !failoverBetween(earlier.at, later.at)) {
          report("fifo", `${line[i]!.key} came to ${group} at ${t(later.at)} before ${earlier.key} (sent before it in group ${earlier.messageGroup}) was settled`, earlier.key, group, [
            ...excerptOf(line[i]!.key, group)
          ])
        }
      }
    }
  }

  // offsets: a group's committed offset on a queue never goes back
  const committedAt = new Map<string, History.Committed>()
  for (const event of events) {
    if (event.type !== "commit" || event.outcome !== "ok") continue
    const id = `${event.group}\u0000${event.queue}`
    const before = committedAt.get(id)
    if (before !== undefined && event.offset < before.offset) {
      violations.push({ rule: "offsets", message: `${event.group} committed ${event.queue} at ${event.offset} after ${before.offset}`, excerpt: [before, event] })
    }
    if (before === undefined || event.offset >= before.offset) committedAt.set(id, event)
  }

  // fencing: claims unique per epoch; writes only at the newest claimed epoch
  const claims = new Map<string, Array<History.QueueEvent>>()
  for (const event of events) {
    if (event.type !== "claim") continue
    const line = claims.get(event.queue)
    if (line === undefined) claims.set(event.queue, [event])
    else line.push(event)
  }
  for (const [queue, line] of claims) {
    const byEpoch = new Map<number, History.QueueEvent>()
    for (const claim of line) {
      const other = byEpoch.get(claim.epoch)
      if (other !== undefined && other.broker !== claim.broker) {
        violations.push({ rule: "fencing", message: `${other.broker} and ${claim.broker} both claimed ${queue} at epoch ${claim.epoch}`, excerpt: [other, claim] })
      }
      byEpoch.set(claim.epoch, claim)
    }
  }
  const reported = new Set<string>()
  for (const event of events) {
    if (event.type !== "store") continue
    const newer = claims.get(event.queue)?.find((claim) => claim.epoch > event.epoch && claim.at < event.at && claim.broker !== event.broker)
    if (newer !== undefined && !reported.has(`${event.broker}\u0000${event.queue}\u0000${event.epoch}`)) {
      reported.add(`${event.broker}\u0000${event.queue}\u0000${event.epoch}`)
      violations.push({
        rule: "fencing",
        message: `${event.broker} wrote to ${event.queue} at epoch ${event.epoch} at ${t(event.at)}, after ${newer.broker} claimed epoch ${newer.epoch} at ${t(newer.at)}`,
        excerpt: [newer, ...faultsBetween(newer.at - 30_000, event.at), event].sort((a, b) => a.at - b.at)
      })
    }
  }

  return { violations, summary: { sends: sends.size, deliveries, redeliveries, acks, faults: faults.length } }
}

/**
 * The acknowledged sends (committed, without a time to live) that have not reached a group of their
 * topic, or its dead-letter topic, so far.
 *
 * @since 0.1.0
 */
export const undelivered = (history: History.History, expect: Expectations): ReadonlyArray<{ readonly group: string; readonly sent: History.Sent }> => {
  const sends = new Map<string, History.Sent>()
  const reached = new Set<string>()
  for (const event of history.events) {
    if (event.type === "send" && event.outcome === "ok" && event.resolution !== "ROLLBACK" && event.ttlMillis === undefined) sends.set(event.key, event)
    // a recall that was made may have cancelled it, whatever its answer said
    if (event.type === "recall") sends.delete(event.key)
    if (event.type === "deliver") {
      const group = event.topic.startsWith("%DLQ%") ? event.topic.slice("%DLQ%".length) : event.group
      reached.add(`${group}\u0000${event.key}`)
    }
    if (event.type === "pull") reached.add(`${event.group}\u0000${event.key}`)
  }
  const missing: Array<{ readonly group: string; readonly sent: History.Sent }> = []
  for (const sent of sends.values()) {
    for (const group of expect.consumers.get(sent.topic) ?? []) {
      if (!reached.has(`${group}\u0000${sent.key}`)) missing.push({ group, sent })
    }
  }
  return missing
}

/**
 * A violation as people read it: the rule, what broke, and the excerpt.
 *
 * @since 0.1.0
 */
export const format = (violation: Violation, origin = 0): string =>
  [`rule ${violation.rule}: ${violation.message}`, ...violation.excerpt.map((event) => `  ${History.format(event, origin)}`)].join("\n")
