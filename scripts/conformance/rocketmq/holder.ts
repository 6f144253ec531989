// A push consumer that takes messages and never finishes them: the conformance suite kills this
// process to check that the node gives its messages back. Usage: node holder.ts ENDPOINTS GROUP TOPIC
import { PushConsumer } from "rocketmq-client-nodejs"

const [endpoints, group, topic] = process.argv.slice(2)
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} }
const consumer = new PushConsumer({
  endpoints: endpoints!,
  consumerGroup: group!,
  subscriptions: new Map([[topic!, "*"]]),
  messageListener: {
    consume: (message: { messageId: string }) => {
      console.log(`holding ${message.messageId}`)
      return new Promise(() => {})
    }
  },
  logger: quiet
} as any)
await consumer.startup()
console.log("started")
