// The root test configuration. vitest 5 has no workspace file, so this file is the config itself:
// one project per package under packages/, each running that package's test/ folder.
import { readdirSync, existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

const packages = readdirSync(new URL("./packages/", import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(new URL(`./packages/${entry.name}/test`, import.meta.url)))
  .map((entry) => entry.name)
  .sort()

export default defineConfig({
  test: {
    // the JSON report is what .ci/run counts; the default reporter is for people
    reporters: ["default", "json"],
    // at least two files at a time: on two cores vitest's default is one, and the conformance files
    // mostly wait on their processes while the simulation files compute (816 s → 493 s here)
    maxWorkers: Math.max(2, availableParallelism()),
    outputFile: { json: "test-results/vitest.json" },
    projects: [
      ...packages.map((name) => ({
        test: {
          name,
          root: `./packages/${name}`,
          include: ["test/**/*.test.ts"],
          testTimeout: 30_000
        }
      })),
      {
        // the official RocketMQ Node client against a real `strait dev` process (real time: the
        // client's own timers); scenarios run at the same time
        test: {
          name: "conformance-rocketmq",
          root: "./scripts/conformance/rocketmq",
          include: ["*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          name: "lint-rules",
          root: "./scripts",
          include: ["test/**/*.test.ts"],
          testTimeout: 60_000
        }
      }
    ]
  }
})
