// The message batch codec against msgpackr on the same messages, measured in the same run: the time to
// encode and decode one realistic 1 KiB message, in batches of 1 and of 64.
import { Message, MessageBatch } from "@strait/core"
import { Result } from "effect"
import { pack, Packr, unpack } from "msgpackr"

/** How {@link measureCodec} measures. */
export interface CodecOptions {
  /** Timed runs per codec and batch size; the fastest counts (default 7). */
  readonly runs?: number
  /** Messages encoded and decoded per run (default 20,000, rounded up to whole batches). */
  readonly messagesPerRun?: number
}

/**
 * What {@link measureCodec} found, in nanoseconds per message for one encode and one decode.
 *
 * `oursNanos`, `msgpackrNanos` and `ratio` are the batch of 1; the `…1` and `…64` fields name the
 * batch size.
 */
export interface CodecFigures {
  /** Ours, batch of 1: `MessageBatch.encode` then `MessageBatch.decode` into `Message` instances. */
  readonly oursNanos: number
  /** msgpackr's default `pack` / `unpack` on the same messages as plain objects, batch of 1. */
  readonly msgpackrNanos: number
  /** `oursNanos / msgpackrNanos`: below 1 is faster than msgpackr. */
  readonly ratio: number
  readonly ours1: number
  readonly msgpackr1: number
  readonly ours64: number
  readonly msgpackr64: number
  /** `ours64 / msgpackr64`. */
  readonly ratio64: number
  /** msgpackr with records (`new Packr()` with its default options), for reference. */
  readonly records1: number
  readonly records64: number
  /** Encoded bytes per message in a batch of 1, ours and msgpackr's default. */
  readonly oursBytes: number
  readonly msgpackrBytes: number
}

const bodyBytes = 1024

/** A produced message as a RocketMQ client sends it: topic, tag, two keys, three properties, 1 KiB. */
const realisticFields = (index: number) => {
  const body = new Uint8Array(bodyBytes)
  for (let i = 0; i < bodyBytes; i++) body[i] = (index * 31 + i * 7) & 0xff
  const serial = String(100_000 + index)
  return {
    topic: "orders-eu-west",
    body,
    tag: "OrderCreated",
    keys: [`order-${serial}`, `customer-${serial.slice(1)}`],
    userProperties: { region: "eu-west-1", source: "checkout-service", tenant: "acme-corp" },
    bornTimestamp: 1_700_000_000_000 + index,
    bornHost: "10.0.3.17:52144",
    messageId: `0A000311CE4418B4AAC2${serial.padStart(12, "0")}`
  }
}

// Keeps every decoded value observable, so the JIT cannot drop the work.
let sink = 0

const nanosPerMessage = (messageCount: number, body: () => void): number => {
  const start = performance.now()
  body()
  return ((performance.now() - start) * 1e6) / messageCount
}

const measureBatchSize = (batchSize: number, runs: number, messagesPerRun: number) => {
  const batchCount = Math.ceil(messagesPerRun / batchSize)
  const messageCount = batchCount * batchSize
  // A few distinct batches with distinct ids and bodies, so no codec decodes the very same bytes each time.
  const plainBatches = Array.from({ length: Math.min(batchCount, 16) }, (_, b) =>
    Array.from({ length: batchSize }, (_, i) => realisticFields(b * batchSize + i)))
  const messageBatches = plainBatches.map((batch) => batch.map((fields) => new Message.Message(fields)))
  const packr = new Packr()

  const ours = () => {
    for (let b = 0; b < batchCount; b++) {
      const decoded = MessageBatch.decode(MessageBatch.encode(messageBatches[b % messageBatches.length]!))
      if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
      sink += decoded.success[batchSize - 1]!.body.length
    }
  }
  const msgpackr = () => {
    for (let b = 0; b < batchCount; b++) {
      const decoded = unpack(pack(plainBatches[b % plainBatches.length]!)) as Array<{ body: Uint8Array }>
      sink += decoded[batchSize - 1]!.body.length
    }
  }
  const records = () => {
    for (let b = 0; b < batchCount; b++) {
      const decoded = packr.unpack(packr.pack(plainBatches[b % plainBatches.length]!)) as Array<{ body: Uint8Array }>
      sink += decoded[batchSize - 1]!.body.length
    }
  }

  // Warm-up: every codec reaches its optimised code before anything is timed.
  for (let i = 0; i < 3; i++) {
    ours()
    msgpackr()
    records()
  }
  // Alternating, so a noisy moment on the machine hits every codec alike; the fastest run counts.
  let oursNanos = Infinity
  let msgpackrNanos = Infinity
  let recordsNanos = Infinity
  for (let run = 0; run < runs; run++) {
    oursNanos = Math.min(oursNanos, nanosPerMessage(messageCount, ours))
    msgpackrNanos = Math.min(msgpackrNanos, nanosPerMessage(messageCount, msgpackr))
    recordsNanos = Math.min(recordsNanos, nanosPerMessage(messageCount, records))
  }
  return {
    oursNanos,
    msgpackrNanos,
    recordsNanos,
    oursBytes: MessageBatch.encode(messageBatches[0]!).length / batchSize,
    msgpackrBytes: pack(plainBatches[0]!).length / batchSize
  }
}

/**
 * Measures encode + decode time per message for our codec, msgpackr's default `pack`/`unpack` and
 * msgpackr with records, in batches of 1 and of 64, each after a warm-up and as the best of `runs`.
 */
export const measureCodec = (options?: CodecOptions): CodecFigures => {
  const runs = options?.runs ?? 7
  const messagesPerRun = options?.messagesPerRun ?? 20_000
  const single = measureBatchSize(1, runs, messagesPerRun)
  const batch64 = measureBatchSize(64, runs, messagesPerRun)
  if (sink === 0) throw new Error("nothing was decoded")
  return {
    oursNanos: single.oursNanos,
    msgpackrNanos: single.msgpackrNanos,
    ratio: single.oursNanos / single.msgpackrNanos,
    ours1: single.oursNanos,
    msgpackr1: single.msgpackrNanos,
    ours64: batch64.oursNanos,
    msgpackr64: batch64.msgpackrNanos,
    ratio64: batch64.oursNanos / batch64.msgpackrNanos,
    records1: single.recordsNanos,
    records64: batch64.recordsNanos,
    oursBytes: single.oursBytes,
    msgpackrBytes: single.msgpackrBytes
  }
}
