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

/** Calls `onFrame` for every whole length-prefixed frame; the minimal parser any TCP protocol needs. */
export const framer = (onFrame: (frame: Buffer) => void) => {
  let pending: Buffer | undefined
  return (chunk: Buffer) => {
    let buffer = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    pending = undefined
    let offset = 0
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset)
      if (buffer.length - offset - 4 < length) break
      onFrame(buffer.subarray(offset + 4, offset + 4 + length))
      offset += 4 + length
    }
    if (offset < buffer.length) pending = buffer.subarray(offset)
    buffer = Buffer.alloc(0)
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
  serverSocket.on("data", framer((frame) => serverSocket.write(frameOf(frame))))
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
