// Reads vitest's JSON report and prints the one closing line CI reads: `tests: N passed, N failed`.
// Usage: node .ci/summary.mjs REPORT EXIT_STATUS. A run that failed before or outside the tests
// (install, typecheck, lint, a file that does not load) still counts as at least one failure.
import { existsSync, readFileSync } from "node:fs"

const [report, statusText] = process.argv.slice(2)
const status = Number(statusText ?? "1")
let passed = 0
let failed = 0
if (report !== undefined && existsSync(report)) {
  const json = JSON.parse(readFileSync(report, "utf8"))
  passed = json.numPassedTests ?? 0
  failed = json.numFailedTests ?? 0
  const brokenFiles = (json.testResults ?? []).filter((file) => file.status === "failed" && (file.assertionResults ?? []).length === 0)
  failed += brokenFiles.length
}
if (status !== 0 && failed === 0) failed = 1
if (status === 0 && passed === 0) failed = Math.max(failed, 1)
console.log(`tests: ${passed} passed, ${failed} failed`)
process.exit(status !== 0 || failed > 0 ? 1 : 0)
