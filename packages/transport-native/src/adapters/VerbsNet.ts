/**
 * RDMA links as `Pipe`s: the bytes go through the addon's `VerbsLink` (the ring format carried by
 * RDMA WRITE with immediate data), and a TCP connection between the two sides sets the link up and
 * stays open as its side channel: its end is the peer's death.
 *
 * **Setup**
 *
 * 1. The connecting side opens TCP, creates its link (queue pair, registered rings) and sends its
 *    hello (64 bytes: queue pair, port address, receive ring and credit word with their keys).
 * 2. The listening side reads it, creates its link, connects its queue pair to the hello (ready to
 *    receive, then to send) and answers with its own hello.
 * 3. The connecting side connects its queue pair and sends one byte, ready: from then on either side
 *    may write (the listener waits for that byte, so it never writes to a queue pair not yet ready).
 *
 * @since 0.1.0
 */
import { Connection } from "@strait/transport"
import { Effect } from "effect"
import type * as net from "node:net"
import type * as Addon from "./Addon.ts"
import * as RingPipe from "./RingPipe.ts"

type Pipe = Connection.Pipe

const helloMagic = 0x52444d31 // "RDM1"
const helloBytes = 64
const ready = 0x52

/**
 * Where a link is made: the device (`loopback` for the in-process test fabric), its port, the GID
 * index (RoCE), the ring capacity, and the packet sequence number this side starts at.
 *
 * @since 0.1.0
 */
export interface LinkOptions {
  readonly device: string
  readonly port: number
  readonly gidIndex: number
  readonly capacity: number
  readonly psn: number
}

/**
 * A hello in its wire form.
 *
 * @since 0.1.0
 */
export const encodeHello = (hello: Addon.VerbsHello): Uint8Array => {
  const bytes = new Uint8Array(helloBytes)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, helloMagic)
  view.setUint32(4, hello.qpn)
  view.setUint32(8, hello.psn)
  view.setUint16(12, hello.lid)
  bytes.set(hello.gid.subarray(0, 16), 16)
  view.setUint32(32, hello.mtu)
  view.setBigUint64(36, hello.ringAddr)
  view.setUint32(44, hello.ringKey)
  view.setUint32(48, hello.capacity)
  view.setBigUint64(52, hello.creditAddr)
  view.setUint32(60, hello.creditKey)
  return bytes
}

/**
 * A hello from its wire form, or why it is not one.
 *
 * @since 0.1.0
 */
export const decodeHello = (bytes: Uint8Array): Addon.VerbsHello | string => {
  if (bytes.length !== helloBytes) return `a hello is ${helloBytes} bytes, not ${bytes.length}`
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0) !== helloMagic) return "not an RDMA hello (wrong magic)"
  const qpn = view.getUint32(4)
  const psn = view.getUint32(8)
  if (qpn > 0xffffff || psn > 0xffffff) return "a queue pair number or sequence number wider than 24 bits"
  return {
    qpn,
    psn,
    lid: view.getUint16(12),
    gid: bytes.slice(16, 32),
    mtu: view.getUint32(32),
    ringAddr: view.getBigUint64(36),
    ringKey: view.getUint32(44),
    capacity: view.getUint32(48),
    creditAddr: view.getBigUint64(52),
    creditKey: view.getUint32(60)
  }
}

// reads exactly `count` bytes from a socket (nothing more may come), or fails with the reason
const readExactly = (socket: net.Socket, count: number): Effect.Effect<Uint8Array, string> =>
  Effect.callback<Uint8Array, string>((resume) => {
    const chunks: Array<Uint8Array> = []
    let length = 0
    const cleanup = () => {
      socket.off("data", onData)
      socket.off("close", onClose)
      socket.off("error", onError)
      socket.pause()
    }
    const onData = (chunk: Uint8Array) => {
      chunks.push(chunk)
      length += chunk.length
      if (length < count) return
      cleanup()
      if (length > count) return resume(Effect.fail("the peer sent more than its part of the setup"))
      const whole = new Uint8Array(count)
      let at = 0
      for (const part of chunks) {
        whole.set(part, at)
        at += part.length
      }
      resume(Effect.succeed(whole))
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail("the peer closed during the setup"))
    }
    const onError = (error: Error) => {
      cleanup()
      resume(Effect.fail(error.message))
    }
    socket.on("data", onData)
    socket.once("close", onClose)
    socket.once("error", onError)
    socket.resume()
    return Effect.sync(cleanup)
  })

const attempt = <A>(f: () => A): Effect.Effect<A, string> =>
  Effect.try({ try: f, catch: (error) => error instanceof Error ? error.message : String(error) })

// a set-up link as a pipe: completions wake it (every write carries its own); the side channel's
// liveness is kept probed
const pipeOf = (addon: Addon.Addon, link: Addon.VerbsLink, socket: net.Socket): Pipe => {
  socket.setKeepAlive(true, 1000)
  return RingPipe.ringPipe(addon, link, socket)
}

/**
 * The connecting side's setup over a connected TCP socket.
 *
 * @since 0.1.0
 */
export const connectLink = (addon: Addon.Addon, socket: net.Socket, options: LinkOptions): Effect.Effect<Pipe, string> =>
  Effect.gen(function*() {
    const link = yield* attempt(() => new addon.VerbsLink(options.device, options.capacity, options.psn, options.port, options.gidIndex))
    const set = yield* Effect.gen(function*() {
      socket.write(encodeHello(link.hello()))
      const peer = decodeHello(yield* readExactly(socket, helloBytes))
      if (typeof peer === "string") return yield* Effect.fail(peer)
      yield* attempt(() => link.connect(peer))
      socket.write(new Uint8Array([ready]))
      return pipeOf(addon, link, socket)
    }).pipe(Effect.onError(() => Effect.sync(() => link.unmap())))
    return set
  }).pipe(Effect.onError(() => Effect.sync(() => socket.destroy())))

/**
 * The listening side's setup over an accepted TCP socket.
 *
 * @since 0.1.0
 */
export const acceptLink = (addon: Addon.Addon, socket: net.Socket, options: LinkOptions): Effect.Effect<Pipe, string> =>
  Effect.gen(function*() {
    const peer = decodeHello(yield* readExactly(socket, helloBytes))
    if (typeof peer === "string") return yield* Effect.fail(peer)
    const link = yield* attempt(() => new addon.VerbsLink(options.device, options.capacity, options.psn, options.port, options.gidIndex))
    return yield* Effect.gen(function*() {
      yield* attempt(() => link.connect(peer))
      socket.write(encodeHello(link.hello()))
      const answer = yield* readExactly(socket, 1)
      if (answer[0] !== ready) return yield* Effect.fail("the peer did not say it was ready")
      return pipeOf(addon, link, socket)
    }).pipe(Effect.onError(() => Effect.sync(() => link.unmap())))
  }).pipe(Effect.onError(() => Effect.sync(() => socket.destroy())))
