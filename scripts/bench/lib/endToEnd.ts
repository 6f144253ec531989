// End to end through any client: `window` producers each keep one message in flight until it was
// consumed, until the time is up; consumers note each message's latency and acknowledge it.
// What the rocketmq and client benches share.
import { cpuSeconds } from "./peers.ts"
import { percentile } from "./report.ts"

export const SIZE = 1024
export const CONSUMERS = 4

/** A client driving 1 KiB messages end to end through `endpoint` for `seconds`, `window` in flight. */
export type EndToEnd = (
  endpoint: string,
  topic: string,
  seconds: number,
  pids: { readonly broker: number; readonly proxy?: number },
  window: number
) => Promise<RunResult>

export interface RunResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly brokerCpu: number
  readonly proxyCpu: number
  readonly clientCpu: number
}

// A message's body carries its sequence number and when it was sent. Made as the peers' driver
// (peer_bench.js) makes its payloads, from Node's buffer pool: `Buffer.alloc` is a fresh zero-filled
// allocation per message, which cost the client measured here ~7% of its CPU and the peers nothing.
let seq = 0
export const body = () => {
  const bytes = Buffer.allocUnsafe(SIZE).fill(0x61, 16)
  bytes.writeUInt32LE(seq++, 0)
  bytes.writeUInt32LE(0, 4)
  bytes.writeDoubleLE(performance.now(), 8)
  return bytes
}
export const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset)

/**
 * Consumers that hand each message's body to `onBody` until the returned stop is called (which
 * resolves once they have stopped).
 */
export type Consume = (onBody: (bytes: Uint8Array) => void) => () => Promise<void>

/** `CONSUMERS` loops, each receiving a batch at a time with `receive`. */
export const pulling = (receive: () => Promise<ReadonlyArray<Uint8Array>>): Consume => (onBody) => {
  let stopped = false
  const loops = Array.from({ length: CONSUMERS }, async () => {
    while (!stopped) for (const bytes of await receive()) onBody(bytes)
  })
  return async () => {
    stopped = true
    await Promise.all(loops)
  }
}

/** The next message to send and when it has been consumed, or undefined once the time is up. */
export type NextMessage = () => { readonly bytes: Buffer; readonly consumed: Promise<void> } | undefined

/**
 * Producers that send messages from `next` until it gives none, each waiting until its message was
 * consumed before it sends the next; resolves once all have stopped.
 */
export type Produce = (window: number, next: NextMessage) => Promise<void>

/** `window` async loops, each sending with `send`. */
export const sending = (send: (bytes: Buffer) => Promise<void>): Produce => (window, next) =>
  Promise.all(Array.from({ length: window }, async () => {
    for (let message = next(); message !== undefined; message = next()) {
      await send(message.bytes)
      await message.consumed
    }
  })).then(() => undefined)

/**
 * `window` producers each keep one message in flight until it was consumed (as the broker bench does),
 * until the time is up; consumers note each message's latency (and acknowledge it).
 */
export const measure = async (
  seconds_: number,
  pids: { readonly broker: number; readonly proxy?: number },
  window: number,
  produce: Produce,
  consume: Consume
): Promise<RunResult> => {
  const latencies: Array<number> = []
  const waiting = new Map<number, () => void>()
  let consumed = 0
  const stopConsumers = consume((bytes) => {
    latencies.push((performance.now() - view(bytes).getFloat64(8, true)) * 1000)
    consumed++
    const n = view(bytes).getUint32(0, true)
    waiting.get(n)?.()
    waiting.delete(n)
  })
  const brokerBefore = cpuSeconds(pids.broker)
  const proxyBefore = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy)
  const clientBefore = process.cpuUsage()
  const began = performance.now()
  const deadline = began + seconds_ * 1000
  await produce(window, () => {
    if (performance.now() >= deadline) return undefined
    const bytes = body()
    const n = view(bytes).getUint32(0, true)
    return { bytes, consumed: new Promise<void>((resolve) => waiting.set(n, resolve)) }
  })
  const seconds = (performance.now() - began) / 1000
  const brokerCpu = cpuSeconds(pids.broker) - brokerBefore
  const proxyCpu = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy) - proxyBefore
  const client = process.cpuUsage(clientBefore)
  const perSecond = consumed / seconds
  await stopConsumers()
  const perMessage = (cpu: number) => (cpu * 1e6) / Math.max(1, consumed)
  return {
    perSecond,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    brokerCpu: perMessage(brokerCpu),
    proxyCpu: perMessage(proxyCpu),
    clientCpu: (client.user + client.system) / Math.max(1, consumed)
  }
}

