import * as Addon from "./src/adapters/Addon.ts"
const addon = Addon.addon() as Addon.Addon
const fd = addon.createMemfd(4 * 1024 * 1024)
const a = new addon.Link(fd, 0, 4 * 1024 * 1024)
const b = new addon.Link(fd, 1, 4 * 1024 * 1024)
const frame = new Uint8Array(1028)
const batch = Array.from({ length: 64 }, () => frame)
const state = new Int32Array(2)
for (const limit of [64 * 1024, 256 * 1024, 1024 * 1024]) {
  const t0 = process.hrtime.bigint(); const c0 = process.cpuUsage()
  let msgs = 0
  for (let i = 0; i < 5000; i++) {
    const per = limit / 65792 | 0 || 1
    for (let j = 0; j < per; j++) { a.send(batch, 0); msgs += 64 }
    let got
    while ((got = b.take(limit, state)) !== null) { if (got.length === 0) break }
  }
  const ns = Number(process.hrtime.bigint() - t0); const c = process.cpuUsage(c0)
  console.log(`limit ${limit}: ${(ns / msgs).toFixed(0)} ns/msg wall, cpu ${((c.user + c.system) * 1000 / msgs).toFixed(0)} ns/msg`)
}
// send only
{
  const t0 = process.hrtime.bigint(); let msgs = 0
  for (let i = 0; i < 5000; i++) { a.send(batch, 0); msgs += 64; b.read(0x7fffffff) }
  console.log(`send+read: ${(Number(process.hrtime.bigint() - t0) / msgs).toFixed(0)} ns/msg`)
}
