// The reader's adaptive spin: off by default on machines with 2 CPUs or fewer; where on, it spins
// only while spins usually see data and spinning stays under 5 % of a CPU. The policy is run with
// made-up times; the shared-memory contract also runs with spinning forced on.
import { assert, describe, it } from "@effect/vitest"
import { transportContract } from "@strait/transport/test/contract"
import { Effect, Layer } from "effect"
import { tmpdir } from "node:os"
import * as Addon from "../src/adapters/Addon.ts"
import * as ShmNet from "../src/adapters/ShmNet.ts"
import { ShmTransport } from "../src/index.ts"

const loaded = Addon.addon()
const us = 1_000
const ms = 1_000_000

describe("the spin setting", () => {
  it("is off by default with 2 CPUs or fewer and adaptive (20 µs) with more; an explicit setting wins", () => {
    assert.strictEqual(ShmTransport.spinMicros(undefined, 1), 0)
    assert.strictEqual(ShmTransport.spinMicros(undefined, 2), 0)
    assert.strictEqual(ShmTransport.spinMicros(undefined, 4), 20)
    assert.strictEqual(ShmTransport.spinMicros("adaptive", 2), 20)
    assert.strictEqual(ShmTransport.spinMicros("off", 64), 0)
  })
})

if (typeof loaded === "string") {
  describe("the spin policy", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  describe("the spin policy", () => {
    it("a policy of no spin never spins", () => {
      const policy = new loaded.SpinPolicy(0)
      assert.isFalse(policy.shouldSpin(5 * ms))
    })

    it("keeps spinning while at least 13 of every 16 spins see data", () => {
      const policy = new loaded.SpinPolicy(20 * us)
      let now = 10 * ms
      for (let i = 0; i < 160; i++) {
        assert.isTrue(policy.shouldSpin(now), `spin ${i}`)
        policy.record(i % 16 >= 3, 2 * us, now)
        now += 200 * us
      }
    })

    it("stops for 100 ms after a window of 16 spins in which fewer than 13 saw data, then tries again", () => {
      const policy = new loaded.SpinPolicy(20 * us)
      let now = 10 * ms
      for (let i = 0; i < 16; i++) {
        assert.isTrue(policy.shouldSpin(now))
        policy.record(i >= 4, 20 * us, now)
        now += 100 * us
      }
      assert.isFalse(policy.shouldSpin(now))
      assert.isFalse(policy.shouldSpin(now + 99 * ms))
      assert.isTrue(policy.shouldSpin(now + 101 * ms))
    })

    it("spends at most 5 % of a CPU a second spinning (50 ms), and spins again in the next second", () => {
      const policy = new loaded.SpinPolicy(20 * us)
      const start = 10 * ms
      let spun = 0
      let now = start
      // every spin sees data, so only the budget stops it
      while (policy.shouldSpin(now) && now < start + 900 * ms) {
        policy.record(true, 20 * us, now)
        spun += 20 * us
        now += 30 * us
      }
      assert.isAtMost(spun, 50 * ms)
      assert.isAtLeast(spun, 49 * ms)
      assert.isFalse(policy.shouldSpin(start + 900 * ms))
      assert.isTrue(policy.shouldSpin(start + 1001 * ms))
    })
  })

  // the contract again, with every reader spinning before it sleeps
  const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
  transportContract({
    name: "shm, readers spinning",
    layer: ShmTransport.layer.pipe(Layer.orDie, Layer.provide(Layer.succeed(ShmTransport.ShmSettings, {
      capacity: 64 * 1024,
      connectTimeout: "5 seconds",
      acceptBacklog: 1024,
      spin: "adaptive"
    }))),
    address: (n) => `shm://${tmpdir()}/strait-spin-${process.pid}-${n}.sock`,
    unreachable: `shm://${tmpdir()}/strait-spin-${process.pid}-nobody.sock`,
    rawPipe: (address) =>
      Effect.acquireRelease(ShmNet.connect(loaded, address.slice("shm://".length), 64 * 1024, 20), (pipe) => pipe.destroy),
    settle: turn
  })
}
