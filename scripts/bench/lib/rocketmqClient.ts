// The official RocketMQ Node client, end to end through a gRPC endpoint: one Producer, `CONSUMERS`
// SimpleConsumers each with one receive of up to 32 out at a time, acknowledging without holding up
// the next receive. What the rocketmq and client benches share.
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs"
import { CONSUMERS, type EndToEnd, measure, pulling, sending } from "./endToEnd.ts"

const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as any

export const rocketmqEndToEnd: EndToEnd = async (endpoints, topic, seconds, pids, window) => {
  const producer = new Producer({ endpoints, topics: [topic], logger: quiet, maxAttempts: 1 } as any)
  await producer.startup()
  const consumers = await Promise.all(Array.from({ length: CONSUMERS }, async () => {
    const consumer = new SimpleConsumer({ endpoints, consumerGroup: "bench", subscriptions: new Map([[topic, "*"]]), awaitDuration: 1000, logger: quiet } as any)
    await consumer.startup()
    return consumer
  }))
  let next = 0
  try {
    return await measure(
      seconds,
      pids,
      window,
      sending(async (bytes) => void (await producer.send({ topic, body: bytes }))),
      pulling(async () => {
        const consumer = consumers[next++ % CONSUMERS]!
        const batch = await consumer.receive(32, 30_000)
        for (const m of batch) void consumer.ack(m).catch(() => undefined)
        return batch.map((m) => m.body)
      })
    )
  } finally {
    await Promise.all(consumers.map((consumer) => consumer.shutdown()))
    await producer.shutdown()
  }
}
