// The addon's rings alone (both sides in this process, over one memfd): bytes pass in order through
// wrap-arounds and full rings, an end is seen after the last byte, and whatever a hostile peer
// writes into the shared pages (the memfd is a file: this test writes it directly) poisons the link
// with an error instead of crashing the process or handing out bytes past the ring.
import { assert, describe, it } from "@effect/vitest"
import { writeSync } from "node:fs"
import * as Addon from "../src/adapters/Addon.ts"

const loaded = Addon.addon()
const capacity = 4096
// where ring 0's fields are in the file: its header, then its data
const tailAt = 128
const dataAt = 4096

// a seeded generator (mulberry32): the same cases every run
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

if (typeof loaded === "string") {
  describe("shared-memory rings", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  const addon = loaded
  const link = () => {
    const fd = addon.createMemfd(capacity)
    return { fd, writer: new addon.Link(fd, 0, capacity), reader: new addon.Link(fd, 1, capacity) }
  }

  describe("shared-memory rings", () => {
    it("bytes pass in order through many wrap-arounds, whatever the sizes of the writes and of the ring's free space", () => {
      const { fd, reader, writer } = link()
      const next = random(7)
      let sent = 0
      let received = 0
      let failures = 0
      for (let round = 0; round < 2000; round++) {
        const length = 1 + Math.floor(next() * 1500)
        const chunk = new Uint8Array(length).map((_, i) => (sent + i) & 0xff)
        let skip = 0
        while (skip < length) {
          const taken = writer.write([chunk], skip)
          skip += taken
          if (taken === 0 || next() < 0.3) {
            for (let bytes = reader.read(1 << 20); bytes !== null; bytes = reader.read(1 << 20)) {
              for (const byte of bytes) if (byte !== (received++ & 0xff)) failures++
            }
          }
        }
        sent += length
      }
      for (let bytes = reader.read(1 << 20); bytes !== null; bytes = reader.read(1 << 20)) {
        for (const byte of bytes) if (byte !== (received++ & 0xff)) failures++
      }
      assert.strictEqual(received, sent)
      assert.strictEqual(failures, 0)
      writer.endWrite()
      assert.isTrue(reader.ended())
      writer.unmap()
      reader.unmap()
      addon.closeFd(fd)
    })

    it("the doorbell flags: a reader that armed on an empty ring is woken by the next write, a writer that armed on a full one by the next read", () => {
      const { fd, reader, writer } = link()
      assert.isFalse(reader.armReadable())
      writer.write([new Uint8Array(10)], 0)
      assert.isTrue(writer.wakeReader())
      // taken once: the next write does not ring again
      writer.write([new Uint8Array(10)], 0)
      assert.isFalse(writer.wakeReader())
      while (writer.write([new Uint8Array(1000)], 0) > 0);
      assert.isFalse(writer.armWritable(1000))
      reader.read(1 << 20)
      assert.isTrue(reader.wakeWriter())
      assert.isTrue(writer.armWritable(1000))
      writer.unmap()
      reader.unmap()
      addon.closeFd(fd)
    })

    it("a memfd that is not sealed, or not of the size announced, is refused", () => {
      const fd = addon.createMemfd(capacity)
      assert.isFalse(addon.checkMemfd(fd, capacity * 2))
      assert.throws(() => new addon.Link(fd, 1, capacity * 2), /not sealed, or not of the size/)
      addon.closeFd(fd)
    })

    it("garbage a peer writes into the ring's headers and data poisons the link with an error, 500 seeded cases, and the process goes on", () => {
      const next = random(42)
      let poisoned = 0
      let served = 0
      for (let i = 0; i < 500; i++) {
        const { fd, reader, writer } = link()
        writer.write([new Uint8Array(64 + Math.floor(next() * 512)).fill(7)], 0)
        // a hostile peer: random bytes at a random place of the first record, or a random tail
        const garbage = new Uint8Array(8).map(() => Math.floor(next() * 256))
        const at = next() < 0.5 ? dataAt + Math.floor(next() * 16) : tailAt
        writeSync(fd, garbage, 0, garbage.length, at)
        try {
          const bytes = reader.read(1 << 20)
          // what is handed out never exceeds what a ring holds
          if (bytes !== null) assert.isAtMost(bytes.length, capacity)
          served++
        } catch (error) {
          assert.match(String(error), /corrupt record: the link is poisoned/)
          poisoned++
        }
        writer.unmap()
        reader.unmap()
        addon.closeFd(fd)
      }
      assert.isAbove(poisoned, 300)
      assert.strictEqual(poisoned + served, 500)
    })
  })
}
