import { assert, describe, it } from "@effect/vitest"
import { Wire } from "@strait/core"
import { Effect, Exit } from "effect"
import * as Protocol from "../src/Protocol.ts"

const bytes = (...values: Array<number>) => Uint8Array.from(values)

const requests: ReadonlyArray<Protocol.Request> = [
  { _tag: "Send", messages: bytes(1, 2, 3, 4), transactional: false },
  { _tag: "Send", messages: bytes(), transactional: true },
  { _tag: "Ack", group: "g", topic: "orders", receiptHandles: ["h-1", "h-ü", ""] },
  { _tag: "Ack", group: "g", topic: "t", receiptHandles: [] },
  { _tag: "Hello", clientId: "c", namespace: "", producerTopics: ["t"] },
  { _tag: "Receive", group: "g", topic: "t", maxMessages: 32, pollMillis: 1_000 },
  { _tag: "Receive", group: "g", topic: "t-ü", maxMessages: 8, invisibleMillis: 30_000, pollMillis: 0, filter: { type: "SQL92", expression: "a > 1" }, attemptId: "at" }
]

const responses: ReadonlyArray<Protocol.Response> = [
  {
    _tag: "Sent",
    results: [
      { _tag: "Stored", receipt: { messageId: "01AB", queueId: 3, offset: 2 ** 40 } },
      { _tag: "Refused", error: new Protocol.TopicNotFound({ reason: "no topic t", cause: "TopicNotFound" }) },
      { _tag: "Stored", receipt: { messageId: "01CD", queueId: 0, offset: 0, recallHandle: "r" } }
    ]
  },
  { _tag: "Received", handles: [{ receiptHandle: "h", invisibleUntil: 1_735_689_630_000 }], messages: bytes(9, 8, 7) },
  { _tag: "Received", handles: [], messages: bytes() },
  { _tag: "Acked", failures: [{ index: 1, error: new Protocol.Throttled({ reason: "slow down", cause: "Throttled" }) }] },
  { _tag: "Acked", failures: [] },
  { _tag: "Done" },
  { _tag: "Changed", receiptHandle: "h2" }
]

// plain data for comparison: error instances as their tag and fields
const plain = (value: unknown): unknown =>
  value instanceof Uint8Array ? [...value]
  : Array.isArray(value) ? value.map(plain)
  : typeof value === "object" && value !== null ? Object.fromEntries(Object.entries({ ...value, ...("_tag" in value ? { _tag: value._tag } : {}) }).map(([k, v]) => [k, plain(v)]))
  : value

describe("the native protocol's codec", () => {
  it.effect("every request decodes to what was encoded, hand-written forms and schema-derived ones alike", () =>
    Effect.gen(function*() {
      for (const request of requests) {
        assert.deepStrictEqual(plain(yield* Protocol.decodeRequest(Protocol.encodeRequest(request))), plain(request), request._tag)
      }
    }))

  it.effect("every response decodes to what was encoded; refusals and failures arrive as the same error classes", () =>
    Effect.gen(function*() {
      for (const response of responses) {
        assert.deepStrictEqual(plain(yield* Protocol.decodeResponse(Protocol.encodeResponse(response))), plain(response), response._tag)
      }
      const sent = yield* Protocol.decodeResponse(Protocol.encodeResponse(responses[0]!))
      assert.isTrue(sent._tag === "Sent" && sent.results[1]!._tag === "Refused" && sent.results[1]!.error instanceof Protocol.TopicNotFound)
      const acked = yield* Protocol.decodeResponse(Protocol.encodeResponse(responses[3]!))
      assert.isTrue(acked._tag === "Acked" && acked.failures[0]!.error instanceof Protocol.Throttled)
    }))

  it.effect("truncated, overlong and unknown payloads fail to decode with an error, never a throw", () =>
    Effect.gen(function*() {
      const encoded = [...requests.map(Protocol.encodeRequest)]
      for (const whole of encoded) {
        for (let cut = 0; cut < whole.length; cut++) {
          const exit = yield* Effect.exit(Protocol.decodeRequest(whole.subarray(0, cut)))
          assert.isTrue(Exit.isFailure(exit), `a request cut to ${cut} of ${whole.length} bytes decoded`)
        }
      }
      for (const response of responses) {
        const whole = Protocol.encodeResponse(response)
        const longer = new Uint8Array(whole.length + 1)
        longer.set(whole)
        assert.isTrue(Exit.isFailure(yield* Effect.exit(Protocol.decodeResponse(longer))), `${response._tag} with a byte after it decoded`)
      }
      // a receipt whose offset is not a whole number is malformed, as the broker's own answer would be
      for (const offset of [0.5, Number.NaN, 2 ** 60]) {
        const stored = Protocol.encodeResponse({ _tag: "Sent", results: [{ _tag: "Stored", receipt: { messageId: "01AB", queueId: 0, offset } }] })
        assert.instanceOf(yield* Effect.flip(Protocol.decodeResponse(stored)), Wire.Malformed, String(offset))
      }
      // a poll in the Receive's form without its wait is malformed
      const receiveForm = encoded[5]![0]!
      assert.instanceOf(yield* Effect.flip(Protocol.decodeRequest(Wire.writePoll(receiveForm, { group: "g", topic: "t", maxMessages: 1 }))), Wire.Malformed)
      const unknown = yield* Effect.flip(Protocol.decodeRequest(bytes(200, 0, 0)))
      assert.instanceOf(unknown, Wire.Malformed)
      // a count the payload cannot hold is refused before anything is allocated for it
      const huge = yield* Effect.flip(Protocol.decodeResponse(bytes(2, 0xff, 0xff, 0xff, 0x7f)))
      assert.instanceOf(huge, Wire.Malformed)
    }))
})
