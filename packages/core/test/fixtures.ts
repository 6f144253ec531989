// Test data shared by the codec specifications.

/** Deterministic bytes that differ by position and seed, so misplaced bytes are caught. */
export const patterned = (length: number, seed: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  let state = seed | 1
  for (let i = 0; i < length; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    bytes[i] = state
  }
  return bytes
}
