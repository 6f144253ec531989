/**
 * A guard against ambient time and randomness leaking into a simulated run.
 *
 * While the guard is up, `Math.random`, `Date.now`, `performance.now`, `setTimeout`, `setInterval`
 * and `setImmediate` throw `AmbientNondeterminism` naming the function called, so a read of the
 * real clock or of an unseeded generator fails the run loudly instead of making it irreproducible.
 * This is the one module of the package that touches those globals (hence its place in
 * `adapters/`, which the determinism lint exempts).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Code under simulation called a function that reads real time, real randomness or the real event
 * loop.
 *
 * **Details**
 *
 * Thrown synchronously by the patched global; inside a fiber it surfaces as a defect (`Die`) in the
 * run's exit. Take time from `Clock`, randomness from `Random` and delays from `Effect.sleep`.
 *
 * @since 0.1.0
 */
export class AmbientNondeterminism extends Data.TaggedError("AmbientNondeterminism")<{
  /** The function called, e.g. `"Math.random"`. */
  readonly api: string
}> {
  override get message(): string {
    return `${this.api} was called inside a simulated run: take time from Clock, randomness from Random and delays from Effect.sleep`
  }
}

interface Patch {
  readonly api: string
  readonly owner: object
  readonly key: string
}

const patches = (): ReadonlyArray<Patch> => {
  const list: Array<Patch> = [
    { api: "Math.random", owner: Math, key: "random" },
    { api: "Date.now", owner: Date, key: "now" },
    { api: "setTimeout", owner: globalThis, key: "setTimeout" },
    { api: "setInterval", owner: globalThis, key: "setInterval" },
    { api: "setImmediate", owner: globalThis, key: "setImmediate" }
  ]
  if (typeof globalThis.performance === "object") {
    list.push({ api: "performance.now", owner: globalThis.performance, key: "now" })
  }
  return list
}

/**
 * Replaces the guarded globals with throwing stand-ins and returns the function that puts the
 * originals back.
 *
 * **Gotchas**
 *
 * Call the returned function exactly once, in a `finally`. Guards nest: an inner guard restores
 * the stand-ins of the outer one.
 *
 * @since 0.1.0
 */
export const install = (): () => void => {
  // an inherited function (performance.now lives on Performance.prototype) is shadowed by an own
  // property, and the shadow deleted afterwards
  const saved: Array<readonly [Patch, PropertyDescriptor | undefined]> = []
  for (const patch of patches()) {
    const descriptor = Object.getOwnPropertyDescriptor(patch.owner, patch.key)
    // a missing or frozen global (another runtime) is left alone
    if (descriptor === undefined ? !(patch.key in patch.owner) : descriptor.configurable !== true) continue
    const api = patch.api
    Object.defineProperty(patch.owner, patch.key, {
      configurable: true,
      enumerable: descriptor?.enumerable ?? false,
      writable: true,
      value: function ambientNondeterminism(): never {
        throw new AmbientNondeterminism({ api })
      }
    })
    saved.push([patch, descriptor])
  }
  return () => {
    for (let i = saved.length - 1; i >= 0; i--) {
      const [patch, descriptor] = saved[i]!
      if (descriptor === undefined) Reflect.deleteProperty(patch.owner, patch.key)
      else Object.defineProperty(patch.owner, patch.key, descriptor)
    }
  }
}

/**
 * Runs `body` with the guard up and takes it down afterwards, however `body` ends.
 *
 * @since 0.1.0
 */
export const guard = <A>(body: () => A): A => {
  const restore = install()
  try {
    return body()
  } finally {
    restore()
  }
}
