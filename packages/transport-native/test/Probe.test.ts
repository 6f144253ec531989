// The probe says which native transports this process can use, and why not; RDMA verbs are never
// offered by this build, and the reason names what the machine lacks.
import { assert, describe, it } from "@effect/vitest"
import { Probe, ShmTransport } from "../src/index.ts"

describe("the native probe", () => {
  it("shared memory is available exactly when the Layer is; verbs never are, and say why (no library, no kernel support, no device)", () => {
    const found = Probe.probe()
    assert.strictEqual(found.shm.available, ShmTransport.available().available)
    assert.isFalse(found.verbs.available)
    if (!found.verbs.available) {
      assert.match(found.verbs.reason, /libibverbs is not installed|ibv_get_device_list: |no RDMA device|no verbs backend|native addon is not available/)
    }
  })
})
