// The message batch codec: encode + decode time per 1 KiB message next to msgpackr, measured in this
// run, in batches of 1 and of 64. The goal is at most half of msgpackr's time.
import { measureCodec } from "./lib/codec.ts"
import { emit, table } from "./lib/report.ts"

const RUNS = 7

const codec = measureCodec({ runs: RUNS })

table(`message batch codec, encode + decode of a 1 KiB message (best of ${RUNS})`, [
  {
    codec: "Strait MessageBatch",
    "ns/msg (1)": codec.ours1,
    "ns/msg (64)": codec.ours64,
    "bytes/msg": codec.oursBytes,
    "× msgpackr (1)": codec.ratio,
    "× msgpackr (64)": codec.ratio64
  },
  {
    codec: "msgpackr pack/unpack",
    "ns/msg (1)": codec.msgpackr1,
    "ns/msg (64)": codec.msgpackr64,
    "bytes/msg": codec.msgpackrBytes,
    "× msgpackr (1)": 1,
    "× msgpackr (64)": 1
  },
  {
    codec: "msgpackr new Packr() (records)",
    "ns/msg (1)": codec.records1,
    "ns/msg (64)": codec.records64,
    "bytes/msg": "",
    "× msgpackr (1)": codec.records1 / codec.msgpackr1,
    "× msgpackr (64)": codec.records64 / codec.msgpackr64
  }
])

emit("codec", {
  codec_vs_msgpackr: codec.ratio,
  codec_vs_msgpackr_batch64: codec.ratio64,
  codec_vs_msgpackr_records: codec.ours1 / codec.records1,
  codec_vs_msgpackr_records_batch64: codec.ours64 / codec.records64
}, {
  node: process.version,
  ns_per_msg_ours_1: codec.ours1,
  ns_per_msg_msgpackr_1: codec.msgpackr1,
  ns_per_msg_msgpackr_records_1: codec.records1,
  ns_per_msg_ours_64: codec.ours64,
  ns_per_msg_msgpackr_64: codec.msgpackr64,
  ns_per_msg_msgpackr_records_64: codec.records64,
  bytes_per_msg_ours: codec.oursBytes,
  bytes_per_msg_msgpackr: codec.msgpackrBytes
})
