// kill -9 during streaming, over shared memory, from a seed: a writer killed at a random point
// leaves only whole, intact frames, in order with none missing, and its link ends as peer-dead; a
// reader killed at a random point makes the writer's link end, and the writer goes on. The processes
// are real; the kill points are counts of frames, not times.
import { assert, describe, it } from "@effect/vitest"
import { Frame, Transport } from "@strait/core"
import { Effect, Exit, Layer, Option, Stream } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"
import * as Addon from "../src/adapters/Addon.ts"
import { ShmTransport } from "../src/index.ts"
import { frameOf } from "./fixtures/peer.ts"

const loaded = Addon.addon()
const peer = fileURLToPath(new URL("./fixtures/peer.ts", import.meta.url))
const layer = ShmTransport.layer.pipe(Layer.orDie)

const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const start = (args: ReadonlyArray<string>) => spawn(process.execPath, [peer, ...args], { stdio: ["ignore", "pipe", "inherit"] })
const exited = (child: ChildProcess) => new Promise<void>((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve()))
const printed = (child: ChildProcess, text: string) =>
  new Promise<void>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk) && out.includes(text) && resolve())
    child.once("exit", () => reject(new Error("the peer exited before it was ready")))
  })

// a frame checked: its number and its checksum
const check = (frame: Frame.Frame) => {
  const expected = frameOf(frame.correlation)
  return frame.payload.length === expected.payload.length && frame.payload.every((byte, i) => byte === expected.payload[i])
}

if (typeof loaded === "string") {
  describe("shared memory between processes: kill -9, and an orderly close", () => {
    it.skip(`skipped: ${loaded}`, () => undefined)
  })
} else {
  describe("shared memory between processes: kill -9, and an orderly close", () => {
    it("20 writers killed at seeded points: what arrived is whole and intact, in order, with none missing, and each link ends as peer-dead", () =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const next = random(11)
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(`shm://${tmpdir()}/strait-crash-${process.pid}.sock`)
        let expected = 0
        for (let round = 0; round < 20; round++) {
          const killAfter = 1 + Math.floor(next() * 3000)
          const child = start(["send", listener.address, String(expected)])
          const connection = yield* Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))
          let received = 0
          let bad = 0
          const ended = yield* Stream.runForEach(connection.frames, (frame) =>
            Effect.sync(() => {
              if (frame.correlation !== expected || !check(frame)) bad++
              expected = frame.correlation + 1
              if (++received === killAfter) child.kill("SIGKILL")
            })).pipe(Effect.exit)
          yield* Effect.promise(() => exited(child))
          assert.strictEqual(bad, 0, `round ${round}: a frame out of order, missing before it, or corrupt`)
          assert.isAtLeast(received, killAfter)
          assert.isTrue(Exit.isFailure(ended), `round ${round}: the link ended without an error`)
          assert.strictEqual(yield* connection.state, "peer-dead")
        }
      })).pipe(Effect.provide(layer))), 120_000)

    it("a peer that closes its connection in order exits by itself: the link lets go of the event loop once both sides ended", () =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen(`shm://${tmpdir()}/strait-close-${process.pid}.sock`)
        const child = start(["close", listener.address])
        const connection = yield* Stream.runHead(listener.connections).pipe(Effect.map(Option.getOrThrow))
        const frames = yield* Stream.runCollect(connection.frames)
        assert.deepStrictEqual(frames.map((frame) => frame.correlation), Array.from({ length: 16 }, (_, i) => i))
        yield* connection.close
        // the test's own timeout is what catches a peer that never exits
        yield* Effect.promise(() => exited(child))
        assert.strictEqual(child.exitCode, 0)
        assert.strictEqual(yield* connection.state, "closed")
      })).pipe(Effect.provide(layer))), 30_000)

    it("10 readers killed at seeded points: the writer's link ends and its sends fail, and the writer goes on to the next", () =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const next = random(23)
        const transport = yield* Transport.Transport
        for (let round = 0; round < 10; round++) {
          const address = `shm://${tmpdir()}/strait-crash-reader-${process.pid}-${round}.sock`
          const child = start(["receive", address])
          yield* Effect.promise(() => printed(child, "listening"))
          const connection = yield* transport.connect(address)
          const killAfter = 1 + Math.floor(next() * 20_000)
          let sent = 0
          const sending = yield* Effect.exit(Effect.gen(function*() {
            for (let n = 0; ; n += 16) {
              yield* connection.send(Array.from({ length: 16 }, (_, i) => frameOf(n + i)))
              sent += 16
              if (sent >= killAfter && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
            }
          }))
          yield* Effect.promise(() => exited(child))
          assert.isTrue(Exit.isFailure(sending), `round ${round}: sending went on after the reader died`)
          // the engine notes the end on its own fiber: a few turns of the event loop
          let state = yield* connection.state
          for (let turn = 0; turn < 100 && state === "open"; turn++) {
            yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
            state = yield* connection.state
          }
          assert.include(["peer-dead", "closed"], state)
        }
      })).pipe(Effect.provide(layer))), 120_000)
  })
}
