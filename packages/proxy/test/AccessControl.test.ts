import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { AccessControl, Namespaces } from "../src/index.ts"

const settings: AccessControl.AccessSettings = {
  accounts: [{
    accessKey: "app",
    secretKey: Redacted.make("app-secret"),
    grants: [
      { resource: "topic:orders", actions: ["pub", "sub"] },
      { resource: "group:*", actions: ["sub"], namespaces: ["shop"] }
    ]
  }]
}
const dateTime = "20261125T051500Z"

describe("access control", () => {
  it("signs as RocketMQ clients do: HMAC-SHA1 of the date-time header, upper-case hex", () => {
    // RFC 2202 test case 2: HMAC-SHA1 of "what do ya want for nothing?" keyed "Jefe"
    assert.strictEqual(AccessControl.sign("Jefe", "what do ya want for nothing?"), "EFFCDF6AE5EB2FA2D27416D5F184DF9C259A7C79")
  })

  it.effect("a request signed with the account's secret is that account's", () =>
    Effect.gen(function*() {
      const principal = yield* AccessControl.make(settings).authenticate({
        authorization: AccessControl.authorization("app", "app-secret", dateTime),
        dateTime
      })
      assert.strictEqual(principal.account?.accessKey, "app")
    }))

  it.effect("a wrong secret or an unknown access key is forbidden; an unsigned request is unauthorized", () =>
    Effect.gen(function*() {
      const access = AccessControl.make(settings)
      const wrongSecret = yield* Effect.flip(access.authenticate({ authorization: AccessControl.authorization("app", "guess", dateTime), dateTime }))
      assert.strictEqual(wrongSecret._tag, "Forbidden")
      const unknown = yield* Effect.flip(access.authenticate({ authorization: AccessControl.authorization("who", "app-secret", dateTime), dateTime }))
      assert.strictEqual(unknown._tag, "Forbidden")
      const unsigned = yield* Effect.flip(access.authenticate({}))
      assert.strictEqual(unsigned._tag, "Unauthorized")
    }))

  it.effect("grants allow their actions on their resources in their namespaces, and nothing else", () =>
    Effect.gen(function*() {
      const access = AccessControl.make(settings)
      const principal = { account: settings.accounts[0] }
      yield* access.authorize(principal, "", "pub", "topic:orders")
      yield* access.authorize(principal, "shop", "sub", "group:billing")
      const otherTopic = yield* Effect.flip(access.authorize(principal, "", "pub", "topic:payments"))
      assert.strictEqual(otherTopic._tag, "Forbidden")
      const otherNamespace = yield* Effect.flip(access.authorize(principal, "bank", "sub", "group:billing"))
      assert.strictEqual(otherNamespace._tag, "Forbidden")
      const admin = yield* Effect.flip(access.authorize(principal, "", "admin", "topic:orders"))
      assert.strictEqual(admin._tag, "Forbidden")
    }))

  it.effect("without accounts everything is allowed", () =>
    Effect.gen(function*() {
      const access = AccessControl.make(undefined)
      const principal = yield* access.authenticate({})
      yield* access.authorize(principal, "any", "admin", "topic:anything")
    }))
})

describe("namespaces", () => {
  it("qualify a name with the namespace, keeping the system prefixes in front", () => {
    assert.strictEqual(Namespaces.qualify("", "orders"), "orders")
    assert.strictEqual(Namespaces.qualify("shop", "orders"), "shop%orders")
    assert.strictEqual(Namespaces.qualify("shop", "%DLQ%billing"), "%DLQ%shop%billing")
  })

  it("make a broker name plain again only for its own namespace", () => {
    assert.strictEqual(Namespaces.unqualify("shop", "shop%orders"), "orders")
    assert.strictEqual(Namespaces.unqualify("shop", "%DLQ%shop%billing"), "%DLQ%billing")
    assert.isUndefined(Namespaces.unqualify("shop", "bank%orders"))
    assert.isUndefined(Namespaces.unqualify("", "bank%orders"))
    assert.strictEqual(Namespaces.unqualify("", "%DLQ%billing"), "%DLQ%billing")
  })
})
