/**
 * `@strait/proxy`: the stateless proxy core every client protocol is translated onto.
 *
 * @since 0.1.0
 */
export * as AccessControl from "./AccessControl.ts"
export * as BrokerLink from "./BrokerLink.ts"
export * as Namespaces from "./Namespaces.ts"
export * as Quotas from "./Quotas.ts"
export * as Proxy from "./Proxy.ts"
export * as Routing from "./Routing.ts"
