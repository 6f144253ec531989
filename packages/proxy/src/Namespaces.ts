/**
 * Namespaces: one tenant's topics and groups kept apart from another's on the same brokers. A name
 * as a client writes it is qualified with the client's namespace before it reaches a broker, and
 * made plain again on the way back.
 *
 * **Details**
 *
 * `orders` in namespace `shop` is the broker topic `shop%orders`; the system prefixes stay in front,
 * so the dead-letter topic of group `billing` in `shop` is `%DLQ%shop%billing` (RocketMQ's
 * `NamespaceUtil` does the same). The default namespace (`""`) leaves names as they are.
 *
 * @since 0.1.0
 */

const systemPrefixes = ["%DLQ%", "%RETRY%"] as const

const separator = "%"

/**
 * The broker's name for `name` in `namespace`.
 *
 * @since 0.1.0
 */
export const qualify = (namespace: string, name: string): string => {
  if (namespace === "") return name
  for (const prefix of systemPrefixes) {
    if (name.startsWith(prefix)) return `${prefix}${namespace}${separator}${name.slice(prefix.length)}`
  }
  return `${namespace}${separator}${name}`
}

/**
 * The client's name for the broker's `qualified` name, seen from `namespace`; `undefined` when the
 * name belongs to another namespace.
 *
 * @since 0.1.0
 */
export const unqualify = (namespace: string, qualified: string): string | undefined => {
  if (namespace === "") {
    const prefix = systemPrefixes.find((p) => qualified.startsWith(p)) ?? ""
    return qualified.slice(prefix.length).includes(separator) ? undefined : qualified
  }
  const own = `${namespace}${separator}`
  for (const prefix of systemPrefixes) {
    if (qualified.startsWith(prefix)) {
      const rest = qualified.slice(prefix.length)
      return rest.startsWith(own) ? `${prefix}${rest.slice(own.length)}` : undefined
    }
  }
  return qualified.startsWith(own) ? qualified.slice(own.length) : undefined
}
