// The official client over TLS: sends one message and receives it. Run with
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH naming the node's certificate (grpc-js reads it when it loads, and
// the client has no other way to trust a certificate). Usage: node tlsclient.ts ENDPOINTS TOPIC.
// Prints "received <body>" and exits 0.
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs"

const [endpoints, topic] = process.argv.slice(2)
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} }
const producer = new Producer({ endpoints: endpoints!, topics: [topic!], sslEnabled: true, logger: quiet } as any)
await producer.startup()
await producer.send({ topic: topic!, body: Buffer.from("over tls") })
const consumer = new SimpleConsumer({
  endpoints: endpoints!,
  consumerGroup: "g-tls",
  subscriptions: new Map([[topic!, "*"]]),
  sslEnabled: true,
  awaitDuration: 3000,
  logger: quiet
} as any)
await consumer.startup()
for (const message of await consumer.receive(1, 20_000)) {
  console.log(`received ${message.body.toString()}`)
  await consumer.ack(message)
}
await consumer.shutdown()
await producer.shutdown()
process.exit(0)
