// Seeds 26 to 50 of the CI sweep (the other half runs beside it).
import { describe } from "@effect/vitest"
import { sweep } from "./sweep.ts"

describe("the CI sweep, seeds 26 to 50", () => sweep(26, 50))
