// `strait sim`: whole simulated clusters from seeds (see @strait/sim): one seed replayed exactly, or
// a sweep of seeds, each checked against the queue-semantics rules. A failing seed prints its
// violations and the command that replays it; the command then exits 1.
import { Scenario, Sweep } from "@strait/sim"
import { Clock, Console, Data, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"

/**
 * A seed broke a rule, or its run failed.
 *
 * @since 0.1.0
 */
export class SimulationFailed extends Data.TaggedError("SimulationFailed")<{ readonly message: string }> {}

const flags = {
  seed: Flag.Int("seed").pipe(Flag.optional, Flag.withDescription("run one seed (and print its history with --history)")),
  seeds: Flag.String("seeds").pipe(Flag.optional, Flag.withDescription("run a range of seeds, as 1..50")),
  minutes: Flag.Int("minutes").pipe(Flag.withDefault(2), Flag.withDescription("simulated minutes of traffic and faults per seed (default 2)")),
  rate: Flag.Int("rate").pipe(Flag.withDefault(50), Flag.withDescription("messages per simulated second (default 50)")),
  noFaults: Flag.Boolean("no-faults").pipe(Flag.withDefault(false), Flag.withDescription("run without faults")),
  clockFaults: Flag.Boolean("clock-faults").pipe(
    Flag.withDefault(false),
    Flag.withDescription("give each node its own clock, and let clocks drift (up to 1 %), step (up to 1 s) and whole nodes pause (up to 25 s)")
  ),
  history: Flag.Boolean("history").pipe(Flag.withDefault(false), Flag.withDescription("print the whole history of each seed"))
}

/**
 * The `sim` command.
 *
 * @since 0.1.0
 */
export const sim = Command.make("sim", flags, (flags) =>
  Effect.gen(function*() {
    const given = Option.isSome(flags.seeds) ? Sweep.parseSeeds(flags.seeds.value) : Option.isSome(flags.seed) ? [flags.seed.value] : [1]
    if (given === undefined) return yield* new SimulationFailed({ message: `--seeds takes a seed or a range such as 1..50, not ${Option.getOrElse(flags.seeds, () => "")}` })
    const settings = { minutes: flags.minutes, rate: flags.rate, faults: !flags.noFaults, clockFaults: flags.clockFaults }
    const failing: Array<number> = []
    for (const seed of given) {
      const began = yield* Clock.currentTimeMillis
      const outcome = Scenario.run({ seed, duration: `${settings.minutes} minutes`, rate: settings.rate, faults: settings.faults, clockFaults: settings.clockFaults })
      const ended = yield* Clock.currentTimeMillis
      yield* Console.log(Sweep.summaryLine(outcome, ended - began))
      if (flags.history) yield* Console.log(Sweep.historyReport(outcome))
      if (outcome.failure !== undefined || outcome.violations.length > 0) {
        failing.push(seed)
        yield* Console.log(Sweep.failureReport(outcome, Sweep.replayCommand(seed, settings)))
      }
    }
    if (failing.length > 0) {
      return yield* new SimulationFailed({ message: `${failing.length} of ${given.length} seeds broke a rule: ${failing.join(", ")}` })
    }
    if (given.length > 1) yield* Console.log(`all ${given.length} seeds kept every rule`)
  })).pipe(Command.withDescription("simulate a whole cluster (3 brokers and a spare, 3 proxies, 9 clients) under faults drawn from a seed, and check its history"))
