// Seeds 1 to 25 of the CI sweep (the other half runs beside it).
import { describe } from "@effect/vitest"
import { sweep } from "./sweep.ts"

describe("the CI sweep, seeds 1 to 25", () => sweep(1, 25))
