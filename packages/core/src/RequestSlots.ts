/**
 * Slots for requests on the wire: a client lets at most so many requests be out at once, and a
 * request holds its slot until it is answered, or until its lease runs out.
 *
 * **When to use**
 *
 * A client that batches calls into requests and bounds how many are out (the broker client's
 * coalescer, the client SDK's batcher). With a lease, a request unanswered for that long gives its
 * slot up while it goes on waiting for its answer or its timeout: one lost or stuck request holds
 * the next ones up for the lease, not for the whole timeout.
 *
 * **Details**
 *
 * A plain structure: the caller counts with it and decides when to look at the leases: `expire`, or
 * `leaseWatch`, the loop of the one fiber that sleeps until the next lease runs out while calls wait
 * for a slot.
 *
 * @since 0.1.0
 */

import { Clock, Duration, Effect } from "effect"

/**
 * A request out: when it left, and whether its slot is free again (answered, or its lease ran out).
 *
 * @since 0.1.0
 */
export interface Flight {
  readonly startedAt: number
  released: boolean
}

/**
 * The requests out, and how many of them hold a slot.
 *
 * @since 0.1.0
 */
export class RequestSlots {
  readonly #flights = new Set<Flight>()
  readonly #max: number
  readonly #lease: number | undefined
  #holding = 0

  /** At most `max` requests hold a slot; with `leaseMillis`, a request holds one that long at most. */
  constructor(max: number, leaseMillis?: number) {
    this.#max = max
    this.#lease = leaseMillis
  }

  /** Whether a request may go now. */
  get free(): boolean {
    return this.#holding < this.#max
  }

  /** Requests holding a slot. */
  get holding(): number {
    return this.#holding
  }

  /** Requests out, holding a slot or not. */
  get out(): number {
    return this.#flights.size
  }

  /** Whether slots have a lease. */
  get leased(): boolean {
    return this.#lease !== undefined
  }

  /** A request leaves at `now`: it takes a slot (whether one was free is the caller's to check). */
  start(now: number): Flight {
    const flight: Flight = { startedAt: now, released: false }
    this.#flights.add(flight)
    this.#holding++
    return flight
  }

  /** The request was answered; true when that freed a slot (its lease had not run out). */
  end(flight: Flight): boolean {
    this.#flights.delete(flight)
    return this.#release(flight)
  }

  /**
   * Frees the slot of every request whose lease ran out by `now`; returns when the next lease runs
   * out (`Infinity` when no slot is held, or without a lease).
   */
  expire(now: number): number {
    const lease = this.#lease
    if (lease === undefined) return Number.POSITIVE_INFINITY
    let oldest = Number.POSITIVE_INFINITY
    for (const flight of this.#flights) {
      if (flight.released) continue
      if (now - flight.startedAt >= lease) this.#release(flight)
      else if (flight.startedAt < oldest) oldest = flight.startedAt
    }
    return oldest + lease
  }

  #release(flight: Flight): boolean {
    if (flight.released) return false
    flight.released = true
    this.#holding--
    return true
  }
}

/**
 * While `waiting()` and no slot is free: sleeps until the oldest held slot's lease runs out, frees
 * every slot whose lease has, and looks again. Completes once a slot is free, nobody waits, or no
 * lease can run out (no lease, or no slot held). One wake per lease at most, however many requests
 * go out.
 *
 * @since 0.1.0
 */
export const leaseWatch = (slots: RequestSlots, waiting: () => boolean): Effect.Effect<void> => {
  const watch: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const nextExpiry = slots.expire(now)
    return waiting() && !slots.free && nextExpiry !== Number.POSITIVE_INFINITY
      ? Effect.andThen(Effect.sleep(Duration.millis(nextExpiry - now)), watch)
      : Effect.void
  })
  return watch
}
