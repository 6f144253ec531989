// Helpers shared by the proxy's specifications.
import { Message } from "@strait/core"
import type { Proxy } from "../src/index.ts"

let ids = 0
export const nextId = () => `01${(++ids).toString(16).toUpperCase().padStart(32, "0")}`

export const message = (topic: string, body: string, extra: Partial<ConstructorParameters<typeof Message.Message>[0]> = {}) =>
  new Message.Message({
    topic,
    body: new TextEncoder().encode(body),
    keys: [],
    userProperties: {},
    bornTimestamp: 0,
    bornHost: "test-host",
    messageId: nextId(),
    ...extra
  })

export const text = (m: Message.Message) => new TextDecoder().decode(m.body)

export const caller = (clientId: string, namespace = ""): Proxy.CallerContext => ({ clientId, namespace, principal: { account: undefined } })
