/**
 * Where each queue's writes go: the plan that spreads every topic's queues over the brokers by their
 * weights, and moves the queues of leaving brokers away, without copying data.
 *
 * **Details**
 *
 * A queue's home is the broker that writes it. Moving a queue changes its home only: the old home
 * stops writing it and keeps what it stored, which consumers go on reading there; the new home claims
 * it at the next epoch and stores what comes next. So a move costs one claim, whatever the backlog.
 *
 * The plan works per topic, so each topic's write traffic spreads: a broker's share of a topic's
 * queues is its weight over the sum (largest remainder, ties to the brokers holding more already, so
 * as few queues move as can, then to those with fewer queues in all). A topic spreads over at most
 * as many brokers as it has queues (as a Kafka topic over its partitions): add queues to a topic to
 * spread it wider. Queues whose home is a leaving broker all move; queues whose home is
 * down (not live, not leaving) stay, since their data comes back with their home; queues still in a
 * move (`frozen`) stay until that move is done.
 *
 * @since 0.1.0
 */

/**
 * A queue and its home (none: never claimed yet).
 *
 * @since 0.1.0
 */
export interface QueuePlace {
  readonly topic: string
  readonly queueId: number
  readonly home: string | undefined
}

/**
 * A change of home.
 *
 * @since 0.1.0
 */
export interface Move {
  readonly topic: string
  readonly queueId: number
  readonly from: string
  readonly to: string
}

/**
 * What the plan starts from.
 *
 * @since 0.1.0
 */
export interface PlanInput {
  readonly queues: ReadonlyArray<QueuePlace>
  /** The brokers that take writes: live and not leaving. */
  readonly active: ReadonlyArray<string>
  /** Live brokers that are leaving: every queue homed there moves. */
  readonly leaving?: ReadonlySet<string>
  /** A broker's share of each topic relative to the others' (default 1; 0 takes none). */
  readonly weights?: Readonly<Record<string, number>>
  /** Queues (`<topic>/<queue>`) that must not move now. */
  readonly frozen?: ReadonlySet<string>
  /** At most this many moves (default: all that balance needs). */
  readonly maxMoves?: number
}

/**
 * Each broker's number of queues out of `total`, by weight: largest remainder, ties to those that
 * hold more now (fewer moves), then to those with fewer queues of any topic (`load`), then by id.
 *
 * @since 0.1.0
 */
export const shares = (
  total: number,
  brokers: ReadonlyArray<string>,
  weight: (broker: string) => number,
  holding: (broker: string) => number,
  load: (broker: string) => number = () => 0
): ReadonlyMap<string, number> => {
  const sum = brokers.reduce((acc, broker) => acc + Math.max(0, weight(broker)), 0)
  const result = new Map<string, number>()
  if (sum <= 0) return result
  const exact = brokers.map((broker) => ({ broker, exact: (total * Math.max(0, weight(broker))) / sum }))
  let given = 0
  for (const { broker, exact: share } of exact) {
    result.set(broker, Math.floor(share))
    given += Math.floor(share)
  }
  const order = [...exact].sort((a, b) =>
    (b.exact - Math.floor(b.exact)) - (a.exact - Math.floor(a.exact)) || holding(b.broker) - holding(a.broker) || load(a.broker) - load(b.broker) ||
    (a.broker < b.broker ? -1 : 1)
  )
  for (let i = 0; given < total && i < order.length; i++, given++) result.set(order[i]!.broker, result.get(order[i]!.broker)! + 1)
  return result
}

/**
 * The moves that bring every topic to its brokers' shares, leaving brokers' queues first.
 *
 * @since 0.1.0
 */
export const plan = (input: PlanInput): ReadonlyArray<Move> => {
  const active = [...new Set(input.active)].sort()
  if (active.length === 0) return []
  const leaving = input.leaving ?? new Set<string>()
  const weight = (broker: string) => input.weights?.[broker] ?? 1
  const byTopic = new Map<string, Array<QueuePlace>>()
  for (const queue of input.queues) {
    const list = byTopic.get(queue.topic)
    if (list === undefined) byTopic.set(queue.topic, [queue])
    else list.push(queue)
  }
  const moves: Array<Move> = []
  const limit = input.maxMoves ?? Number.POSITIVE_INFINITY
  // queues of every topic per broker, kept current as queues move: a topic's spare queue goes to
  // the broker with the fewest, so that small topics spread too
  const load = new Map<string, number>(active.map((broker) => [broker, 0]))
  for (const queue of input.queues) if (queue.home !== undefined && load.has(queue.home)) load.set(queue.home, load.get(queue.home)! + 1)
  const loadOf = (broker: string) => load.get(broker) ?? 0
  for (const topic of [...byTopic.keys()].sort()) {
    const queues = byTopic.get(topic)!.filter((queue) =>
      queue.home !== undefined && (active.includes(queue.home) || leaving.has(queue.home))
    ).sort((a, b) => a.queueId - b.queueId)
    const held = new Map<string, Array<QueuePlace>>(active.map((broker) => [broker, []]))
    const out: Array<QueuePlace> = []
    for (const queue of queues) {
      const list = held.get(queue.home!)
      if (list === undefined) out.push(queue) // a leaving broker's
      else list.push(queue)
    }
    const target = shares(queues.length, active, weight, (broker) => held.get(broker)!.length, loadOf)
    // over their share: give up their highest queues (a frozen queue stays, and counts)
    for (const broker of active) {
      const list = held.get(broker)!
      let excess = list.length - (target.get(broker) ?? 0)
      for (let i = list.length - 1; i >= 0 && excess > 0; i--) {
        if (input.frozen?.has(`${topic}/${list[i]!.queueId}`) === true) continue
        out.push(list[i]!)
        list.splice(i, 1)
        excess--
      }
    }
    const short = [...active].sort((a, b) => loadOf(a) - loadOf(b) || (a < b ? -1 : 1))
      .flatMap((broker) => Array.from({ length: Math.max(0, (target.get(broker) ?? 0) - held.get(broker)!.length) }, () => broker))
    for (const queue of out.sort((a, b) => a.queueId - b.queueId)) {
      if (moves.length >= limit) return moves
      if (input.frozen?.has(`${topic}/${queue.queueId}`) === true) continue
      // a leaving broker's queue goes somewhere even when every share is full (weights of 0)
      const to = short.shift() ?? (leaving.has(queue.home!) ? active.find((broker) => weight(broker) > 0) ?? active[0]! : undefined)
      if (to === undefined) continue
      moves.push({ topic, queueId: queue.queueId, from: queue.home!, to })
      if (load.has(queue.home!)) load.set(queue.home!, loadOf(queue.home!) - 1)
      load.set(to, loadOf(to) + 1)
    }
  }
  return moves
}
