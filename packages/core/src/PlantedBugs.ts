/**
 * Known bugs that tests plant on purpose, to show the simulator's checker catches each. Empty unless
 * a test provides it: production never turns one on.
 *
 * - `send-acked-before-sync`: a send to a `sync` topic is answered before its sync (an acknowledged
 *   message can be lost in a crash);
 * - `fifo-head-skipped`: a FIFO group's next message goes out while the one before is still in flight;
 * - `attempt-not-incremented`: a redelivered message keeps its delivery attempt;
 * - `fencing-removed`: a broker writes to its queues whether or not it can trust its lease;
 * - `timer-early`: a delayed message is delivered a second before its time.
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * A bug that can be planted.
 *
 * @since 0.1.0
 */
export type PlantedBug = "send-acked-before-sync" | "fifo-head-skipped" | "attempt-not-incremented" | "fencing-removed" | "timer-early"

/**
 * Every bug that can be planted.
 *
 * @since 0.1.0
 */
export const all: ReadonlyArray<PlantedBug> = ["send-acked-before-sync", "fifo-head-skipped", "attempt-not-incremented", "fencing-removed", "timer-early"]

/**
 * The bugs planted in the code that reads this: none by default.
 *
 * @since 0.1.0
 */
export const PlantedBugs = Context.Reference<ReadonlySet<PlantedBug>>("@strait/core/PlantedBugs", { defaultValue: () => new Set() })
