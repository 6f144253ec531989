// Which link a proxy opens to a broker: shared memory on the same host, RDMA where both sides have
// it, and always TCP after the native address, so a failed native link falls back for that broker.
import { assert, describe, it } from "@effect/vitest"
import { Routing } from "../src/index.ts"

const tcp = "tcp://10.0.0.1:7001"
const shm = { address: "shm:///data/broker/shm.sock", host: "boot-1/net-1" }
const rdma = "rdma://10.0.0.1:7002"

describe("a proxy's links to brokers", () => {
  it("a broker serving shared memory on this host is linked through it, then TCP", () => {
    assert.deepStrictEqual(Routing.linkAddresses({ id: "b", address: tcp, shm, rdma }, { hostId: "boot-1/net-1", schemes: ["tcp", "shm", "rdma"] }), [shm.address, tcp])
  })

  it("on another host (or a host id this proxy does not have), a broker serving RDMA is linked through RDMA when this process can use it, then TCP", () => {
    assert.deepStrictEqual(Routing.linkAddresses({ id: "b", address: tcp, shm, rdma }, { hostId: "boot-2/net-1", schemes: ["tcp", "shm", "rdma"] }), [rdma, tcp])
    assert.deepStrictEqual(Routing.linkAddresses({ id: "b", address: tcp, shm, rdma }, { schemes: ["tcp", "rdma"] }), [rdma, tcp])
  })

  it("without the scheme here (no addon, no RDMA device), or a broker serving neither, the link is TCP alone", () => {
    assert.deepStrictEqual(Routing.linkAddresses({ id: "b", address: tcp, shm, rdma }, { hostId: "boot-1/net-1", schemes: ["tcp"] }), [tcp])
    assert.deepStrictEqual(Routing.linkAddresses({ id: "b", address: tcp }, { hostId: "boot-1/net-1", schemes: ["tcp", "shm", "rdma"] }), [tcp])
  })
})
