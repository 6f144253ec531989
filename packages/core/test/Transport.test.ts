// Addresses: `scheme://host:port` parsed and written back the same way for every host-and-port
// transport (TCP, RDMA), IPv6 hosts in brackets.
import { assert, describe, it } from "@effect/vitest"
import { Transport } from "../src/index.ts"

describe("transport addresses", () => {
  it("a host and port are read from their scheme's address, an IPv6 host without its brackets", () => {
    assert.deepStrictEqual(Transport.parseHostPort("tcp://127.0.0.1:7001", "tcp"), { host: "127.0.0.1", port: 7001 })
    assert.deepStrictEqual(Transport.parseHostPort("rdma://[fe80::1]:7002", "rdma"), { host: "fe80::1", port: 7002 })
    assert.deepStrictEqual(Transport.parseHostPort("tcp://broker-0.strait:0", "tcp"), { host: "broker-0.strait", port: 0 })
  })

  it("another scheme, no port, or a port past 65535 is an invalid address saying what was expected", () => {
    const otherScheme = Transport.parseHostPort("tcp://127.0.0.1:7001", "rdma")
    assert.instanceOf(otherScheme, Transport.InvalidAddress)
    const noPort = Transport.parseHostPort("rdma://127.0.0.1", "rdma")
    assert.instanceOf(noPort, Transport.InvalidAddress)
    assert.match((noPort as Transport.InvalidAddress).reason, /expected rdma:\/\/host:port/)
    assert.instanceOf(Transport.parseHostPort("tcp://127.0.0.1:65536", "tcp"), Transport.InvalidAddress)
  })

  it("a bound host and port are written back as an address that parses to them", () => {
    assert.strictEqual(Transport.formatHostPort("tcp", "127.0.0.1", 7001), "tcp://127.0.0.1:7001")
    assert.strictEqual(Transport.formatHostPort("rdma", "::1", 7002), "rdma://[::1]:7002")
    assert.deepStrictEqual(Transport.parseHostPort(Transport.formatHostPort("rdma", "::1", 7002), "rdma"), { host: "::1", port: 7002 })
  })
})
