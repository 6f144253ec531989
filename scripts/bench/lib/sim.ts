// The simulator's speed next to a plain-JS discrete-event loop doing the same work in the same run:
// pairs of actors ping-pong a message, each hop waiting a seeded 1–3 ms of simulated latency.
import { Sim } from "@strait/sim"
import { Effect, Queue, Random } from "effect"

const PAIRS = 100
const ROUNDS = 300
const HOPS = PAIRS * ROUNDS * 2

/** Each hop is one event: a message taken from a queue after a simulated delay. */
const simulated = Effect.gen(function*() {
  const pair = Effect.gen(function*() {
    const ping = yield* Queue.unbounded<number>()
    const pong = yield* Queue.unbounded<number>()
    yield* Effect.forkChild(Effect.gen(function*() {
      for (let i = 0; i < ROUNDS; i++) {
        const m = yield* Queue.take(ping)
        yield* Effect.sleep(`${yield* Random.nextIntBetween(1, 3)} millis`)
        yield* Queue.offer(pong, m)
      }
    }))
    for (let i = 0; i < ROUNDS; i++) {
      yield* Queue.offer(ping, i)
      yield* Queue.take(pong)
      yield* Effect.sleep(`${yield* Random.nextIntBetween(1, 3)} millis`)
    }
  })
  yield* Effect.all(Array.from({ length: PAIRS }, () => pair), { concurrency: "unbounded", discard: true })
})

/** The same hops as a hand-written event loop: a binary heap of (time, pair, side) and a seeded PRNG. */
const plainLoop = () => {
  let seed = 42
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const times: Array<number> = []
  const items: Array<number> = []
  const push = (time: number, item: number) => {
    let i = times.length
    times.push(time)
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (times[parent]! <= time) break
      times[i] = times[parent]!
      items[i] = items[parent]!
      i = parent
    }
    times[i] = time
    items[i] = item
  }
  const pop = () => {
    const time = times[0]!
    const item = items[0]!
    const lastTime = times.pop()!
    const lastItem = items.pop()!
    const n = times.length
    if (n > 0) {
      let i = 0
      while (true) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && times[child + 1]! < times[child]!) child++
        if (times[child]! >= lastTime) break
        times[i] = times[child]!
        items[i] = items[child]!
        i = child
      }
      times[i] = lastTime
      items[i] = lastItem
    }
    return { time, item }
  }
  const hops = new Int32Array(PAIRS)
  for (let p = 0; p < PAIRS; p++) push(0, p)
  let events = 0
  while (times.length > 0) {
    const { time, item } = pop()
    events++
    if (++hops[item]! < ROUNDS * 2) push(time + 1 + Math.floor(random() * 3), item)
  }
  return events
}

const perSecond = (count: number, run: () => unknown) => {
  run()
  let best = 0
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    run()
    best = Math.max(best, count / ((performance.now() - start) / 1000))
  }
  return best
}

/** Events per second of the simulator and of the plain loop, best of three each. */
export const measureSim = () => {
  const check = Sim.run(simulated, { seed: 1 })
  if (check.exit._tag !== "Success") throw new Error(`simulation failed: ${String(check.exit)}`)
  return {
    simEventsPerSecond: perSecond(HOPS, () => Sim.run(simulated, { seed: 1 })),
    plainEventsPerSecond: perSecond(HOPS, plainLoop)
  }
}
