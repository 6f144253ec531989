/**
 * The V8 settings a Strait process runs with, and the re-execution that applies them.
 *
 * A node allocates at a steady, high rate (requests, records, replies) and keeps a bounded set of
 * recent records. V8's young generation normally starts small and grows and shrinks with the load;
 * fixed at 16 MiB semi-spaces it scavenges less often with fewer survivors, and never gives pages
 * back only to fault them in again. Measured on this project's benches: CPU per 1 KiB append through
 * the store 4.5–5.2 µs → 2.6–3.2 µs; broker CPU per message at 256 in flight about 9% lower. (The
 * same reason RocketMQ's start scripts size the JVM's young generation with `-Xmn`.)
 *
 * The settings exist only at process start, so `strait` applies them by re-executing itself once
 * (`process.execve`: the same process id, nothing forked) before it loads anything. A process whose
 * command line or `NODE_OPTIONS` already sizes the young generation is left as its owner set it, and
 * `STRAIT_NODE_FLAGS=off` turns the re-execution off. Where `process.execve` is missing (Windows),
 * the process runs with V8's defaults.
 *
 * @since 0.1.0
 */

/**
 * The V8 options a Strait process runs with.
 *
 * @since 0.1.0
 */
export const straitNodeFlags: ReadonlyArray<string> = ["--min-semi-space-size=16", "--max-semi-space-size=16"]

/**
 * The options to add to a process started with `execArgv` and `nodeOptions` (`NODE_OPTIONS`):
 * {@link straitNodeFlags}, or none when either already sizes the young generation.
 *
 * @since 0.1.0
 */
export const flagsToAdd = (execArgv: ReadonlyArray<string>, nodeOptions: string | undefined): ReadonlyArray<string> =>
  [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((option) => /^--(min|max)[-_]semi[-_]space[-_]size\b/.test(option))
    ? []
    : straitNodeFlags

/**
 * Re-executes the current script with {@link straitNodeFlags} when it lacks them (see the module
 * documentation for when it does not). Returns only when no re-execution happens. Call it first, at
 * an entry point, before anything else is loaded or started.
 *
 * @since 0.1.0
 */
export const applyStraitNodeFlags = (): void => {
  if (process.env.STRAIT_NODE_FLAGS === "off" || process.execve === undefined) return
  const flags = flagsToAdd(process.execArgv, process.env.NODE_OPTIONS)
  if (flags.length === 0) return
  try {
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], process.env)
  } catch {
    // Node versions whose execve throws on failure leave the process as it was: it runs on with V8's
    // defaults (Node 22 and 24 end the process instead; STRAIT_NODE_FLAGS=off avoids the call)
  }
}
