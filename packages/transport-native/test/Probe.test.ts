// The probe says which native transports this process can use, and why not; RDMA verbs are offered
// exactly when the Layer would build, and otherwise the reason names what the machine lacks.
import { assert, describe, it } from "@effect/vitest"
import { Probe, ShmTransport, VerbsTransport } from "../src/index.ts"

describe("the native probe", () => {
  it("shared memory and verbs are available exactly when their Layers are; an unavailable one says why (no library, no kernel support, no device, no backend)", () => {
    const found = Probe.probe()
    assert.strictEqual(found.shm.available, ShmTransport.available().available)
    assert.strictEqual(found.verbs.available, VerbsTransport.available().available)
    if (!found.verbs.available) {
      assert.match(found.verbs.reason, /libibverbs is not installed|ibv_get_device_list: |no RDMA device|no verbs backend|native addon is not available/)
    }
  })
})
