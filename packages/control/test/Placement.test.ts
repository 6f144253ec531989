import { describe, expect, it } from "@effect/vitest"
import { Placement } from "../src/index.ts"

const topic = (name: string, homes: ReadonlyArray<string | undefined>) => homes.map((home, queueId) => ({ topic: name, queueId, home }))
const countBy = (homes: ReadonlyArray<string | undefined>) => {
  const counts: Record<string, number> = {}
  for (const home of homes) if (home !== undefined) counts[home] = (counts[home] ?? 0) + 1
  return counts
}
// the homes after the moves
const apply = (queues: ReadonlyArray<Placement.QueuePlace>, moves: ReadonlyArray<Placement.Move>) =>
  queues.map((queue) => moves.find((move) => move.topic === queue.topic && move.queueId === queue.queueId)?.to ?? queue.home)

describe("Placement", () => {
  it("shares split by weight with the largest remainders, ties to who holds more", () => {
    expect(Object.fromEntries(Placement.shares(8, ["a", "b", "c"], () => 1, (b) => (b === "c" ? 5 : 0)))).toEqual({ a: 3, b: 2, c: 3 })
    expect(Object.fromEntries(Placement.shares(8, ["a", "b"], (b) => (b === "a" ? 3 : 1), () => 0))).toEqual({ a: 6, b: 2 })
    expect(Placement.shares(4, ["a"], () => 0, () => 0).size).toBe(0)
  })

  it("a new broker gets its share of every topic, and only that many queues move", () => {
    const queues = [...topic("orders", Array(8).fill("a").map((home, i) => (i % 2 === 0 ? home : "b"))), ...topic("events", ["a", "b", "a", "b"])]
    const moves = Placement.plan({ queues, active: ["a", "b", "c"] })
    const after = apply(queues, moves)
    expect(countBy(after.slice(0, 8))).toEqual({ a: 3, b: 3, c: 2 })
    expect(Object.values(countBy(after.slice(8))).sort()).toEqual([1, 1, 2])
    expect(moves.length).toBe(2 + 1)
    expect(moves.every((move) => move.to === "c")).toBe(true)
  })

  it("a leaving broker's queues all move, to the brokers with room; a down broker's stay; a balanced topic does not move", () => {
    const queues = topic("orders", ["a", "b", "c", "a", "b", "c", "down", undefined])
    const moves = Placement.plan({ queues, active: ["a", "b"], leaving: new Set(["c"]) })
    expect(moves.map((move) => [move.queueId, move.from, move.to])).toEqual([[2, "c", "a"], [5, "c", "b"]])
    expect(Placement.plan({ queues: apply(queues, moves).map((home, queueId) => ({ topic: "orders", queueId, home })), active: ["a", "b"] })).toEqual([])
  })

  it("a frozen queue stays where it is, and the moves stop at the limit", () => {
    const queues = topic("orders", ["a", "a", "a", "a"])
    expect(Placement.plan({ queues, active: ["a", "b"], frozen: new Set(["orders/3"]) }).map((move) => move.queueId)).toEqual([1, 2])
    expect(Placement.plan({ queues, active: ["a", "b", "c", "d"], maxMoves: 2 }).length).toBe(2)
  })

  it("weights steer the shares; a weight of 0 takes none, and a leaving broker's queues still go somewhere", () => {
    const queues = topic("orders", ["a", "a", "a", "a", "a", "a"])
    const moves = Placement.plan({ queues, active: ["a", "b"], weights: { a: 1, b: 2 } })
    expect(countBy(apply(queues, moves))).toEqual({ a: 2, b: 4 })
    const leaving = Placement.plan({ queues: topic("orders", ["c", "c"]), active: ["a", "b"], leaving: new Set(["c"]), weights: { a: 0, b: 0 } })
    expect(leaving.map((move) => move.to)).toEqual(["a", "a"])
  })
})
