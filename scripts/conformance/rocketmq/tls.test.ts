// Conformance: RocketMQ gRPC over TLS, with the official client (`sslEnabled`) and the admin command.
// The certificate in fixtures/ is self-signed for 127.0.0.1 and localhost, valid until 2126.
import { spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, test } from "vitest"
import { type RunningNode, startNode, strait } from "./harness.ts"

const nodes: Array<RunningNode> = []
afterAll(async () => {
  for (const code of await Promise.all(nodes.map((node) => node.stop("SIGTERM")))) expect(code).toBe(0)
}, 60_000)

describe("TLS", () => {
  test("TLS: a node with a certificate serves the client with sslEnabled, and the admin command with --tls-ca", async () => {
    const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url))
    const node = await startNode({ tls: { certFile: join(fixtures, "tls-cert.pem"), keyFile: join(fixtures, "tls-key.pem") } })
    nodes.push(node)
    await strait(["topic", "create", "secure", "--server", node.endpoints, "--tls-ca", join(fixtures, "tls-cert.pem")])
    // plaintext is refused
    await expect(strait(["topic", "list", "--server", node.endpoints])).rejects.toThrow()
    const client = spawn(process.execPath, [fileURLToPath(new URL("./tlsclient.ts", import.meta.url)), node.endpoints, "secure"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: join(fixtures, "tls-cert.pem") }
    })
    let out = ""
    client.stdout.on("data", (chunk) => (out += chunk))
    const code = await new Promise<number | null>((resolve) => client.on("exit", resolve))
    expect(out.trim()).toBe("received over tls")
    expect(code).toBe(0)
  }, 60_000)
})
