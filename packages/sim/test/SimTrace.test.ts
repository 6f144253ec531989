import { assert, describe, it } from "@effect/vitest"
import { Fnv64 } from "../src/internal/fnv64.ts"
import * as SimTrace from "../src/SimTrace.ts"

const fnv = (text: string) => {
  const hash = new Fnv64()
  hash.string(text)
  return hash.digest()
}

const hashOf = (events: ReadonlyArray<readonly [number, string, string]>) => {
  let now = 0
  const trace = SimTrace.make({ virtualMillis: () => now })
  for (const [at, kind, detail] of events) {
    now = at
    trace.record(kind, detail)
  }
  return trace.traceHash
}

describe("SimTrace", () => {
  it("the running hash is FNV-1a 64", () => {
    assert.strictEqual(fnv(""), "cbf29ce484222325")
    assert.strictEqual(fnv("a"), "af63dc4c8601ec8c")
    assert.strictEqual(fnv("foobar"), "85944171f73967e8")
  })

  it("the same events at the same times give the same hash", () => {
    const events = [[0, "send", "p1->b1"], [5, "timer", "5"], [5, "deliver", "b1"]] as const
    assert.strictEqual(hashOf(events), hashOf(events))
  })

  it("the order, the time, the kind and the detail of an event all change the hash", () => {
    const base = hashOf([[0, "send", "a"], [1, "send", "b"]])
    assert.notStrictEqual(hashOf([[0, "send", "b"], [1, "send", "a"]]), base)
    assert.notStrictEqual(hashOf([[0, "send", "a"], [2, "send", "b"]]), base)
    assert.notStrictEqual(hashOf([[0, "send", "a"], [1, "drop", "b"]]), base)
    assert.notStrictEqual(hashOf([[0, "send", "a"], [1, "send", "c"]]), base)
    assert.notStrictEqual(hashOf([[0, "sen", "da"], [1, "send", "b"]]), base, "fields are separated")
  })

  it("events are counted, and kept only on request", () => {
    const counted = SimTrace.make({ virtualMillis: () => 7 })
    const kept = SimTrace.make({ virtualMillis: () => 7, keepEvents: true })
    for (const trace of [counted, kept]) {
      const { record } = trace
      record("kind", "detail")
    }
    assert.strictEqual(counted.events, 1)
    assert.isUndefined(counted.eventLog)
    assert.deepStrictEqual(kept.eventLog, [{ virtualMillis: 7, kind: "kind", detail: "detail" }])
    assert.strictEqual(kept.traceHash, counted.traceHash)
  })
})
