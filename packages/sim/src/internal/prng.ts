// The simulator's own seeded generator: sfc32 (Chris Doty-Humphrey's Small Fast Counter), seeded
// through splitmix32. Small, fast, passes PractRand to 2^40+, and independent of Effect's `Random`
// (ISAAC), so scheduling choices never shift the program's own random draws.

/** A generator of uniformly distributed unsigned 32-bit integers. */
export type Prng = () => number

/** Folds a seed (a number, or a string such as `"run-7"`) into 32 bits. */
export const seedBits = (seed: number | string): number => {
  if (typeof seed === "number") {
    // keep the high bits of large integer seeds instead of truncating them away
    const high = Math.floor(seed / 0x1_0000_0000) | 0
    return (seed ^ Math.imul(high, 0x9e3779b1)) >>> 0
  }
  let hash = 0x811c9dc5 // FNV-1a 32
  for (let i = 0; i < seed.length; i++) {
    hash = Math.imul(hash ^ seed.charCodeAt(i), 0x01000193)
  }
  return hash >>> 0
}

const splitmix32 = (state: number) => () => {
  state = (state + 0x9e3779b9) | 0
  let z = state
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/** An sfc32 generator whose state is derived from `seed`; the same seed gives the same stream. */
export const make = (seed: number | string): Prng => {
  const init = splitmix32(seedBits(seed))
  let a = init()
  let b = init()
  let c = init()
  let d = init()
  const next: Prng = () => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  // sfc32's first outputs are weakly mixed: discard a few, as its author recommends
  for (let i = 0; i < 12; i++) next()
  return next
}
