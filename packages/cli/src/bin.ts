#!/usr/bin/env node
// The `strait` executable: runs the command line on Node's runtime. SIGINT and SIGTERM interrupt the
// command, which drains what it runs; a clean drain exits 0.
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { EventLoopScheduler } from "@strait/core"
import { Cause, Effect, Exit, Scheduler } from "effect"
import { Command } from "effect/cli"
import { strait } from "./cli.ts"

strait.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  Effect.provideService(Scheduler.Scheduler, EventLoopScheduler.make()),
  (program) =>
    NodeRuntime.runMain(program, {
      teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
    })
)
