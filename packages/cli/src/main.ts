// The `strait` command line on Node's runtime (started by bin.ts). SIGINT and SIGTERM interrupt the
// command, which drains what it runs; a clean drain exits 0.
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { EventLoopScheduler } from "@strait/core"
import { Cause, Console, Effect, Exit, Scheduler } from "effect"
import { Command } from "effect/cli"
import { strait } from "./cli.ts"

// a failure is one line on stderr and exit code 1; a defect keeps its trace
// (an error with no message of its own is shown by its tag and fields)
const oneLine = (error: unknown): string => {
  if (error instanceof Error && error.message !== "") return error.message
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const { _tag, ...fields } = error as { readonly _tag: unknown }
    return `${String(_tag)} ${JSON.stringify(fields)}`
  }
  return String(error)
}
const isShowHelp = (error: unknown) => typeof error === "object" && error !== null && "_tag" in error && error._tag === "ShowHelp"

strait.pipe(
  Command.run({ version: "0.1.0" }),
  // the command line itself was wrong: its help and error are printed already
  Effect.tapError((error) => isShowHelp(error) ? Effect.void : Console.error(`strait: ${oneLine(error)}`)),
  Effect.tapDefect((defect) => Console.error(Cause.pretty(Cause.die(defect)))),
  Effect.provide(NodeServices.layer),
  Effect.provideService(Scheduler.Scheduler, EventLoopScheduler.make()),
  (program) =>
    NodeRuntime.runMain(program, {
      disableErrorReporting: true,
      teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
    })
)
