// The raw `node:net` baseline for the transport bench: the same length-prefixed 1 KiB frames over
// loopback with no Effect and no engine, in this process, so ratios compare like with like.
import * as net from "node:net"

export interface RttResult {
  readonly samples: Float64Array
}

export interface StreamResult {
  readonly seconds: number
  readonly cpuMicros: number
}

const listen = () =>
  new Promise<{ server: net.Server; port: number; accepted: Promise<net.Socket> }>((resolve) => {
    let accept!: (socket: net.Socket) => void
    const accepted = new Promise<net.Socket>((r) => (accept = r))
    const server = net.createServer({ noDelay: true }, (socket) => accept(socket))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      resolve({ server, port: address.port, accepted })
    })
  })

const connect = (port: number) =>
  new Promise<net.Socket>((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1", noDelay: true }, () => resolve(socket))
  })

/**
 * Calls `onFrame` with every whole length-prefixed frame's payload as a position in a buffer (no
 * object per frame): the minimal parser any stream protocol needs. A frame split across chunks is
 * carried over by copying just its own bytes.
 */
export const framer = (onFrame: (bytes: Buffer, start: number, length: number) => void) => {
  let carry: Buffer | undefined
  return (chunk: Buffer) => {
    let offset = 0
    while (carry !== undefined && offset < chunk.length) {
      const want = carry.length < 4 ? 4 - carry.length : 4 + carry.readUInt32BE(0) - carry.length
      const take = Math.min(want, chunk.length - offset)
      carry = Buffer.concat([carry, chunk.subarray(offset, offset + take)])
      offset += take
      if (carry.length >= 4 && carry.length === 4 + carry.readUInt32BE(0)) {
        const whole = carry
        carry = undefined
        onFrame(whole, 4, whole.length - 4)
      }
    }
    while (chunk.length - offset >= 4) {
      const length = chunk.readUInt32BE(offset)
      if (chunk.length - offset - 4 < length) break
      onFrame(chunk, offset + 4, length)
      offset += 4 + length
    }
    if (offset < chunk.length) carry = Buffer.from(chunk.subarray(offset))
  }
}

/** A length-prefixed frame of `payload`. */
export const frameOf = (payload: Uint8Array) => {
  const frame = Buffer.allocUnsafe(4 + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  frame.set(payload, 4)
  return frame
}

/** Ping-pong: one 1 KiB frame out, the same back, `rounds` times; per-round latency in ms. */
export const rawRtt = async (rounds: number, payload: Uint8Array, now: () => number): Promise<RttResult> => {
  const { server, port, accepted } = await listen()
  const client = await connect(port)
  const serverSocket = await accepted
  serverSocket.on("data", framer((bytes, start, length) => serverSocket.write(frameOf(bytes.subarray(start, start + length)))))
  const samples = new Float64Array(rounds)
  await new Promise<void>((done) => {
    let i = 0
    let start = now()
    client.on("data", framer(() => {
      samples[i++] = now() - start
      if (i === rounds) return done()
      start = now()
      client.write(frameOf(payload))
    }))
    client.write(frameOf(payload))
  })
  client.destroy()
  serverSocket.destroy()
  server.close()
  return { samples }
}

/** One-way streaming of `count` 1 KiB frames, corked per batch of `batch`, until the reader saw all. */
export const rawStream = async (count: number, batch: number, payload: Uint8Array, now: () => number): Promise<StreamResult> => {
  const { server, port, accepted } = await listen()
  const client = await connect(port)
  const serverSocket = await accepted
  const frame = frameOf(payload)
  const cpu = process.cpuUsage()
  const start = now()
  await new Promise<void>((done) => {
    let received = 0
    serverSocket.on("data", framer(() => {
      if (++received === count) done()
    }))
    let sent = 0
    const pump = () => {
      while (sent < count) {
        client.cork()
        for (let i = 0; i < batch && sent < count; i++, sent++) client.write(frame)
        client.uncork()
        if (client.writableNeedDrain) return void client.once("drain", pump)
      }
    }
    pump()
  })
  const seconds = (now() - start) / 1000
  const used = process.cpuUsage(cpu)
  client.destroy()
  serverSocket.destroy()
  server.close()
  return { seconds, cpuMicros: used.user + used.system }
}
