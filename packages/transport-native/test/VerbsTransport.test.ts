// The RDMA Layer runs the Transport contract unchanged over the addon's in-process loopback fabric
// (everything above the device: hello exchange, queue pair connection, rings written with RDMA WRITE
// with immediate data, credits, completions on the event loop, end of stream, the side channel's
// loss). The device calls themselves need an RDMA NIC and are not run here.
import { assert, describe, it } from "@effect/vitest"
import { Transport } from "@strait/core"
import * as NodeNet from "@strait/transport/adapters/NodeNet"
import { transportContract } from "@strait/transport/test/contract"
import { Effect, Layer } from "effect"
import * as Addon from "../src/adapters/Addon.ts"
import * as VerbsNet from "../src/adapters/VerbsNet.ts"
import { VerbsTransport } from "../src/index.ts"

const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
const loaded = Addon.addon()
const capacity = 64 * 1024
const loopback = Layer.succeed(VerbsTransport.VerbsSettings, {
  device: "loopback",
  port: 1,
  gidIndex: 0,
  capacity,
  connectTimeout: "5 seconds",
  acceptBacklog: 1024
})

if (typeof loaded === "string") {
  describe("Transport contract: rdma (loopback fabric)", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  transportContract({
    name: "rdma (loopback fabric)",
    layer: VerbsTransport.layer.pipe(Layer.orDie, Layer.provide(loopback)),
    address: () => "rdma://127.0.0.1:0",
    unreachable: "rdma://127.0.0.1:1",
    rawPipe: (address) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          const [host, port] = address.slice("rdma://".length).split(":")
          const socket = yield* NodeNet.connect(host!, Number(port))
          return yield* VerbsNet.connectLink(loaded, socket, { device: "loopback", port: 1, gidIndex: 0, capacity, psn: 7 })
        }),
        (pipe) => pipe.destroy
      ),
    settle: turn
  })

  describe("RDMA links", () => {
    // what the peer published, copied out (null when nothing was)
    const take = (link: Addon.VerbsLink, limit: number, state: Int32Array) => {
      const out = new Uint8Array(limit)
      const copied = link.takeInto(out, 0, limit, state)
      return copied > 0 ? out.subarray(0, copied) : null
    }
    const hello: Addon.VerbsHello = {
      qpn: 0x123456,
      psn: 0xabcdef,
      lid: 7,
      gid: Uint8Array.from({ length: 16 }, (_, i) => i + 1),
      mtu: 5,
      ringAddr: 0x7f00_1234_5000n,
      ringKey: 0xdeadbeef,
      capacity,
      creditAddr: 0x7f00_1234_6100n,
      creditKey: 42
    }

    it("a hello survives its wire form; a wrong size, magic or a 24-bit field out of range is refused with the reason", () => {
      const bytes = VerbsNet.encodeHello(hello)
      assert.strictEqual(bytes.length, 64)
      assert.deepStrictEqual(VerbsNet.decodeHello(bytes), hello)
      assert.match(VerbsNet.decodeHello(bytes.subarray(0, 63)) as string, /64 bytes/)
      const wrongMagic = bytes.slice()
      wrongMagic[0] = 0
      assert.match(VerbsNet.decodeHello(wrongMagic) as string, /magic/)
      const wideQpn = bytes.slice()
      new DataView(wideQpn.buffer).setUint32(4, 0x1000000)
      assert.match(VerbsNet.decodeHello(wideQpn) as string, /24 bits/)
    })

    it("a link refuses a peer with rings of another capacity, and one whose queue pair does not exist", () => {
      const link = new loaded.VerbsLink("loopback", capacity, 1, 1, 0)
      try {
        assert.throws(() => link.connect({ ...link.hello(), capacity: capacity * 2 }), /another capacity/)
        assert.throws(() => link.connect({ ...hello }), /no loopback queue pair/)
      } finally {
        link.unmap()
      }
    })

    it("a capacity that is not a power of two from 4 KiB to 256 MiB is refused", () => {
      assert.throws(() => new loaded.VerbsLink("loopback", 3000, 1, 1, 0), /power of two/)
      assert.throws(() => new loaded.VerbsLink("loopback", 512 * 1024 * 1024, 1, 1, 0), /256 MiB/)
    })

    it("a write to memory the peer did not open to it (a wrong key) poisons the writer's link and puts nothing in the peer's ring", () => {
      const a = new loaded.VerbsLink("loopback", capacity, 1, 1, 0)
      const b = new loaded.VerbsLink("loopback", capacity, 2, 1, 0)
      try {
        a.connect({ ...b.hello(), ringKey: b.hello().ringKey + 1000 })
        b.connect(a.hello())
        const state = new Int32Array(1)
        assert.strictEqual(a.send([new Uint8Array(100)], 0), 100)
        assert.throws(() => take(a, 1024, state), /the RDMA link failed: remote access error/)
        assert.throws(() => a.send([new Uint8Array(8)], 0), /remote access error/)
        assert.isNull(take(b, 1024, state))
        assert.strictEqual(state[0], 0)
      } finally {
        a.unmap()
        b.unmap()
      }
    })

    it("bytes written on one side are read whole and in order on the other, across the ring's end and past its capacity (credits come back)", () => {
      const a = new loaded.VerbsLink("loopback", 4096, 1, 1, 0)
      const b = new loaded.VerbsLink("loopback", 4096, 2, 1, 0)
      try {
        a.connect(b.hello())
        b.connect(a.hello())
        const state = new Int32Array(1)
        const sent: Array<number> = []
        const received: Array<number> = []
        let next = 0
        // 64 rounds of up to 300 bytes through a 4 KiB ring: 19 KiB, nearly five times around
        for (let round = 0; round < 64; round++) {
          const chunk = Uint8Array.from({ length: 1 + ((round * 97) % 300) }, () => next++ & 0xff)
          let done = 0
          while (done < chunk.length) {
            const taken = a.send([chunk.subarray(done)], 0)
            for (let i = done; i < done + taken; i++) sent.push(chunk[i]!)
            done += taken
            const got = take(b, 65536, state)
            if (got !== null) received.push(...got)
          }
        }
        for (let i = 0; i < 8; i++) {
          const got = take(b, 65536, state)
          if (got !== null) received.push(...got)
        }
        assert.strictEqual(received.length, sent.length)
        assert.deepStrictEqual(received, sent)
        a.endWrite()
        assert.isNull(take(b, 65536, state))
        assert.strictEqual(state[0], 2)
      } finally {
        a.unmap()
        b.unmap()
      }
    })

    it.effect("without a device the Layer does not build, saying why, and a link on a real device fails with the reason", () =>
      Effect.gen(function*() {
        const state = VerbsTransport.available()
        if (state.available) return
        const failed = yield* Effect.flip(Layer.build(VerbsTransport.layer))
        assert.instanceOf(failed, VerbsTransport.VerbsUnavailable)
        assert.strictEqual(failed.message, state.reason)
        assert.throws(() => new loaded.VerbsLink("", capacity, 1, 1, 0), /no verbs backend|libibverbs is not installed|ibv_get_device_list|no RDMA device/)
      }).pipe(Effect.scoped))

    it.effect("an address of another scheme, or without a port, is refused", () =>
      Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const wrong = yield* Effect.flip(transport.connect("tcp://127.0.0.1:1"))
        assert.instanceOf(wrong, Transport.InvalidAddress)
        const portless = yield* Effect.flip(transport.listen("rdma://127.0.0.1"))
        assert.instanceOf(portless, Transport.InvalidAddress)
      }).pipe(Effect.scoped, Effect.provide(VerbsTransport.layer.pipe(Layer.orDie, Layer.provide(loopback)))))
  })
}
