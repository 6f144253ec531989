/**
 * Request signatures as RocketMQ 5 clients make them (AK/SK): an HMAC-SHA1 of the request time under
 * the secret key, sent with the access key in an `authorization` header. Clients sign with it;
 * proxies check with it.
 *
 * @since 0.1.0
 */
import { createHmac } from "node:crypto"

/**
 * The signature of `dateTime` (`yyyyMMdd'T'HHmmss'Z'`) under `secret`: upper-case hex.
 *
 * @since 0.1.0
 */
export const sign = (secret: string, dateTime: string): string => createHmac("sha1", secret).update(dateTime, "utf8").digest("hex").toUpperCase()

/**
 * The `authorization` header a RocketMQ 5 client sends for `accessKey` and `secret` at `dateTime`.
 *
 * @since 0.1.0
 */
export const authorization = (accessKey: string, secret: string, dateTime: string): string =>
  `MQv2-HMAC-SHA1 Credential=${accessKey}, SignedHeaders=x-mq-date-time, Signature=${sign(secret, dateTime)}`

/**
 * A time as signatures carry it (`x-mq-date-time`): `20261125T083000Z`.
 *
 * @since 0.1.0
 */
export const dateTimeOf = (millis: number): string => new Date(millis).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")
