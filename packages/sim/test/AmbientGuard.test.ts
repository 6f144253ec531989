import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import * as AmbientGuard from "../src/adapters/AmbientGuard.ts"
import * as Sim from "../src/Sim.ts"

const defectOf = <A, E>(exit: Exit.Exit<A, E>): unknown => {
  const defect = Exit.isFailure(exit) ? Cause.findDefect(exit.cause) : undefined
  assert.isTrue(defect !== undefined && defect._tag === "Success", "the run died")
  return defect?._tag === "Success" ? defect.success : undefined
}

const ambientCalls: ReadonlyArray<readonly [string, () => unknown]> = [
  ["Math.random", () => Math.random()],
  ["Date.now", () => Date.now()],
  ["performance.now", () => performance.now()],
  ["setTimeout", () => setTimeout(() => {}, 1)],
  ["setInterval", () => setInterval(() => {}, 1)],
  ["setImmediate", () => setImmediate(() => {})]
]

describe("AmbientGuard", () => {
  it.each(ambientCalls)("%s inside a run throws AmbientNondeterminism naming it", (api, call) => {
    const result = Sim.run(Effect.sync(call), { seed: 1 })
    const defect = defectOf(result.exit)
    assert.instanceOf(defect, AmbientGuard.AmbientNondeterminism)
    assert.strictEqual((defect as AmbientGuard.AmbientNondeterminism).api, api)
    assert.include((defect as Error).message, api)
  })

  it("the real globals are back after a run, even one that died of a leak", () => {
    const originals = [Math.random, Date.now, performance.now, globalThis.setTimeout, globalThis.setInterval, globalThis.setImmediate]
    Sim.run(Effect.sync(() => Math.random()), { seed: 1 })
    assert.deepStrictEqual(
      [Math.random, Date.now, performance.now, globalThis.setTimeout, globalThis.setInterval, globalThis.setImmediate],
      originals
    )
    assert.isFalse(Object.hasOwn(performance, "now"), "the shadow of an inherited function is gone")
    assert.isNumber(Math.random())
  })

  it("the guard comes down when its body throws", () => {
    const original = Date.now
    assert.throws(() => AmbientGuard.guard(() => Date.now()), /Date.now was called inside a simulated run/)
    assert.strictEqual(Date.now, original)
  })

  it("nested guards restore the outer guard, then the originals", () => {
    const original = Math.random
    AmbientGuard.guard(() => {
      const outer = Math.random
      AmbientGuard.guard(() => assert.throws(() => Math.random()))
      assert.strictEqual(Math.random, outer)
      assert.notStrictEqual(Math.random, original)
    })
    assert.strictEqual(Math.random, original)
  })

  it("guardAmbient: false leaves the globals alone", () => {
    const result = Sim.run(Effect.sync(() => Date.now()), { seed: 1, guardAmbient: false })
    assert.isTrue(Exit.isSuccess(result.exit))
    assert.isTrue(Option.isSome(Exit.getSuccess(result.exit)))
  })
})
