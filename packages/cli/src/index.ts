/**
 * `@strait/cli`: the `strait` command.
 *
 * @since 0.1.0
 */
export * as Cli from "./cli.ts"
