// End to end through any client: `window` producers each keep one message in flight until it was
// consumed, until the time is up; consumers receive, note each message's latency, and acknowledge.
// What the rocketmq and client benches share.
import { cpuSeconds } from "./peers.ts"
import { percentile } from "./report.ts"

export const SIZE = 1024
export const CONSUMERS = 4

export interface RunResult {
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly brokerCpu: number
  readonly proxyCpu: number
  readonly clientCpu: number
}

// a message's body carries its sequence number and when it was sent
let seq = 0
export const body = () => {
  const bytes = Buffer.alloc(SIZE, 0x61)
  bytes.writeUInt32LE(seq++, 0)
  bytes.writeDoubleLE(performance.now(), 8)
  return bytes
}
export const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset)

/**
 * `window` producers each keep one message in flight until it was consumed (as the broker bench does),
 * until the time is up; consumers receive, note each message's latency, and acknowledge.
 */
export const measure = async (
  seconds_: number,
  pids: { readonly broker: number; readonly proxy?: number },
  window: number,
  send: (bytes: Buffer) => Promise<void>,
  receive: () => Promise<ReadonlyArray<Uint8Array>>
): Promise<RunResult> => {
  const latencies: Array<number> = []
  const waiting = new Map<number, () => void>()
  let consumed = 0
  let stopped = false
  const consumers = Array.from({ length: CONSUMERS }, async () => {
    while (!stopped || waiting.size > 0) {
      const bodies = await receive()
      const now = performance.now()
      for (const bytes of bodies) {
        latencies.push((now - view(bytes).getFloat64(8, true)) * 1000)
        consumed++
        waiting.get(view(bytes).getUint32(0, true))?.()
      }
    }
  })
  const brokerBefore = cpuSeconds(pids.broker)
  const proxyBefore = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy)
  const clientBefore = process.cpuUsage()
  const began = performance.now()
  const deadline = began + seconds_ * 1000
  await Promise.all(Array.from({ length: window }, async () => {
    while (performance.now() < deadline) {
      const bytes = body()
      const n = view(bytes).getUint32(0, true)
      const done = new Promise<void>((resolve) => waiting.set(n, resolve))
      await send(bytes)
      await done
      waiting.delete(n)
    }
  }))
  const seconds = (performance.now() - began) / 1000
  const brokerCpu = cpuSeconds(pids.broker) - brokerBefore
  const proxyCpu = pids.proxy === undefined ? 0 : cpuSeconds(pids.proxy) - proxyBefore
  const client = process.cpuUsage(clientBefore)
  const perSecond = consumed / seconds
  stopped = true
  await Promise.all(consumers)
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

