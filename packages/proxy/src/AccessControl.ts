/**
 * Access control: who a request comes from (an access key whose secret signed the request) and what
 * that account may do (publish to a topic, subscribe as a group, administer), per namespace.
 *
 * **Details**
 *
 * A request is signed as RocketMQ 5 clients sign it: HMAC-SHA1, keyed by the account's secret, over
 * the request's date-time header, in upper-case hex, sent as
 * `MQv2-HMAC-SHA1 Credential=<access key>, SignedHeaders=x-mq-date-time, Signature=<hex>`.
 * Without accounts configured every request is allowed (the embedded default). With accounts, an
 * unsigned request is allowed only if `anonymous` grants are configured.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { timingSafeEqual } from "node:crypto"
import { Signature } from "@strait/core"
import { Effect, Redacted, Schema } from "effect"

/**
 * What an account may do with a resource.
 *
 * @since 0.1.0
 */
export const Action = Schema.Literals(["pub", "sub", "admin"])

/**
 * An action.
 *
 * @since 0.1.0
 */
export type Action = typeof Action.Type

/**
 * A permission: `actions` on the resources `resource` names (`topic:NAME`, `group:NAME`, `topic:*`,
 * `group:*`, or `*` for everything), in the namespaces `namespaces` names (`*` for all, the default).
 *
 * @since 0.1.0
 */
export const Grant = Schema.Struct({
  resource: Schema.String,
  actions: Schema.Array(Action),
  namespaces: Schema.optionalKey(Schema.Array(Schema.String))
})

/**
 * A permission.
 *
 * @since 0.1.0
 */
export type Grant = typeof Grant.Type

/**
 * An account: its access key, its secret, and its grants.
 *
 * @since 0.1.0
 */
export const Account = Schema.Struct({
  accessKey: Schema.String,
  secretKey: Schema.Redacted(Schema.String),
  grants: Schema.Array(Grant)
})

/**
 * An account.
 *
 * @since 0.1.0
 */
export type Account = typeof Account.Type

/**
 * Access control settings: the accounts, and the grants of unsigned requests when accounts exist.
 *
 * @since 0.1.0
 */
export const AccessSettings = Schema.Struct({
  accounts: Schema.Array(Account),
  anonymous: Schema.optionalKey(Schema.Array(Grant))
})

/**
 * Access control settings.
 *
 * @since 0.1.0
 */
export type AccessSettings = typeof AccessSettings.Type

/**
 * Access settings in their JSON form (secret keys as plain strings): how the control plane stores
 * them and the admin service takes them.
 *
 * @since 0.1.0
 */
export const AccessSettingsJson = Schema.toCodecJson(AccessSettings)

/**
 * The request carries no usable credentials where they are required (RocketMQ `UNAUTHORIZED`).
 *
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/**
 * The credentials do not check out, or the account may not do this (RocketMQ `FORBIDDEN`).
 *
 * @since 0.1.0
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/**
 * Who a request comes from: an account, or nobody (unsigned).
 *
 * @since 0.1.0
 */
export interface Principal {
  readonly account: Account | undefined
}

/**
 * The signature of `dateTime` under `secret` (`Signature.sign`).
 *
 * @since 0.1.0
 */
export const sign = Signature.sign

/**
 * The `authorization` header a RocketMQ 5 client sends (`Signature.authorization`).
 *
 * @since 0.1.0
 */
export const authorization = Signature.authorization

const parseAuthorization = (header: string) => {
  const space = header.indexOf(" ")
  if (space < 0) return undefined
  const fields = new Map<string, string>()
  for (const part of header.slice(space + 1).split(",")) {
    const equals = part.indexOf("=")
    if (equals > 0) fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim())
  }
  const credential = fields.get("Credential")
  const signature = fields.get("Signature")
  if (credential === undefined || signature === undefined) return undefined
  const slash = credential.indexOf("/")
  return { accessKey: slash < 0 ? credential : credential.slice(0, slash), signature }
}

const sameText = (a: string, b: string) => {
  const left = Buffer.from(a.toUpperCase(), "utf8")
  const right = Buffer.from(b.toUpperCase(), "utf8")
  return left.length === right.length && timingSafeEqual(left, right)
}

const matches = (grant: Grant, namespace: string, resource: string) =>
  (grant.namespaces === undefined || grant.namespaces.includes("*") || grant.namespaces.includes(namespace)) &&
  (grant.resource === "*" || grant.resource === resource || (grant.resource.endsWith(":*") && resource.startsWith(grant.resource.slice(0, -1))))

/**
 * The access control of one proxy.
 *
 * @since 0.1.0
 */
export interface AccessControl {
  /** Who signed a request with these headers. */
  readonly authenticate: (headers: { readonly authorization?: string | undefined; readonly dateTime?: string | undefined }) => Effect.Effect<Principal, Unauthorized | Forbidden>
  /** Allows `action` on `resource` (`topic:NAME` or `group:NAME`, the client's own name) in `namespace`, or fails. */
  readonly authorize: (principal: Principal, namespace: string, action: Action, resource: string) => Effect.Effect<void, Forbidden>
}

/**
 * Access control from settings; without settings (or without accounts) everything is allowed.
 *
 * @since 0.1.0
 */
export const make = (settings: AccessSettings | undefined): AccessControl => {
  const open = settings === undefined || settings.accounts.length === 0
  const accounts = new Map((settings?.accounts ?? []).map((account) => [account.accessKey, account]))
  const anonymous = settings?.anonymous ?? []
  const nobody: Principal = { account: undefined }
  return {
    authenticate: ({ authorization: header, dateTime }) => {
      if (header === undefined || header === "") {
        return open || anonymous.length > 0
          ? Effect.succeed(nobody)
          : Effect.fail(new Unauthorized({ reason: "this proxy requires signed requests: configure an access key and secret" }))
      }
      if (open) return Effect.succeed(nobody)
      const parsed = parseAuthorization(header)
      if (parsed === undefined) return Effect.fail(new Unauthorized({ reason: "the authorization header is malformed" }))
      if (dateTime === undefined) return Effect.fail(new Unauthorized({ reason: "the x-mq-date-time header is missing" }))
      const account = accounts.get(parsed.accessKey)
      if (account === undefined) return Effect.fail(new Forbidden({ reason: `access key ${parsed.accessKey} is not known` }))
      return sameText(sign(Redacted.value(account.secretKey), dateTime), parsed.signature)
        ? Effect.succeed({ account })
        : Effect.fail(new Forbidden({ reason: "the request signature does not match the access key's secret" }))
    },
    authorize: (principal, namespace, action, resource) => {
      if (open) return Effect.void
      const grants = principal.account?.grants ?? anonymous
      return grants.some((grant) => grant.actions.includes(action) && matches(grant, namespace, resource))
        ? Effect.void
        : Effect.fail(new Forbidden({
          reason: `${principal.account === undefined ? "an unsigned request" : `access key ${principal.account.accessKey}`} may not ${action} ${resource}${namespace === "" ? "" : ` in namespace ${namespace}`}`
        }))
    }
  }
}
