#!/usr/bin/env node
// The `strait` executable. It first re-executes itself once with the V8 settings a node runs with
// (nodeFlags.ts: a fixed young generation). Node's compile cache is on before anything else loads,
// so a process started again (a standby proxy, a restart) compiles its modules from the cache: about
// a third less CPU to start. The command line itself is main.ts: SIGINT and SIGTERM interrupt the
// command, which drains what it runs; a clean drain exits 0.
import { enableCompileCache } from "node:module"
import { applyStraitNodeFlags } from "./nodeFlags.ts"

applyStraitNodeFlags()
enableCompileCache()
await import("./main.ts")
