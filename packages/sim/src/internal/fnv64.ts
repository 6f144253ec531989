// Incremental 64-bit FNV-1a over UTF-16 code units, kept in two 32-bit halves so that no BigInt is
// allocated per event. A fingerprint of a trace, not a cryptographic hash.

const OFFSET_HIGH = 0xcbf29ce4
const OFFSET_LOW = 0x84222325
// the 64-bit FNV prime is 2^40 + 0x1b3
const PRIME_LOW = 0x1b3

const float64View = new DataView(new ArrayBuffer(8))

/** A running FNV-1a 64 state. */
export class Fnv64 {
  private high = OFFSET_HIGH
  private low = OFFSET_LOW

  /** Folds one 16-bit unit into the state. */
  unit(code: number): void {
    const low = (this.low ^ code) >>> 0
    // (high·2^32 + low) · (2^40 + 0x1b3) mod 2^64, in halves: low·0x1b3 < 2^41 is exact in a double
    const lowProduct = low * PRIME_LOW
    const carry = Math.floor(lowProduct / 0x1_0000_0000)
    this.low = lowProduct >>> 0
    this.high = (Math.imul(this.high, PRIME_LOW) + carry + (low << 8)) >>> 0
  }

  /** Folds every code unit of `text` into the state. */
  string(text: string): void {
    for (let i = 0; i < text.length; i++) this.unit(text.charCodeAt(i))
  }

  /** Folds the 64 bits of a float64, little-endian whatever the platform, as four 16-bit units. */
  number(value: number): void {
    float64View.setFloat64(0, value, true)
    const low = float64View.getUint32(0, true)
    const high = float64View.getUint32(4, true)
    this.unit(low & 0xffff)
    this.unit(low >>> 16)
    this.unit(high & 0xffff)
    this.unit(high >>> 16)
  }

  /** The current value as 16 lowercase hex digits. */
  digest(): string {
    return this.high.toString(16).padStart(8, "0") + this.low.toString(16).padStart(8, "0")
  }
}
