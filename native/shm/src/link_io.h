// What both links (shared memory and RDMA) do the same way at their JavaScript edge: a write's
// chunks taken from a JavaScript array, and a read of the published records into a buffer the
// caller owns (so a read allocates nothing).
#pragma once

#include <napi.h>

#include <algorithm>
#include <vector>

#include "ring.h"

namespace strait_shm {

// `info[0]`, an array of Uint8Arrays, and `info[1]`, the bytes of the first already written, written
// into `writer`'s ring (as much as fits): the bytes taken.
inline size_t writeChunks(Napi::Env env, Writer* writer, const Napi::CallbackInfo& info) {
  Napi::Array chunks = info[0].As<Napi::Array>();
  size_t skip = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  uint32_t count = chunks.Length();
  std::vector<const uint8_t*> data(count);
  std::vector<size_t> lengths(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = chunks[i];
    if (!value.IsTypedArray()) throw Napi::TypeError::New(env, "chunks are Uint8Arrays");
    auto array = value.As<Napi::Uint8Array>();
    data[i] = array.Data();
    lengths[i] = array.ByteLength();
  }
  return writer->write(data.data(), lengths.data(), count, skip);
}

// (target, offset, limit, ...) from `info`: copies whole records into `target` from byte `offset`,
// at most `limit` bytes; returns the bytes copied, or minus the length of the next record when it
// does not fit. Throws when the peer wrote a corrupt record.
inline double takeInto(Napi::Env env, Reader* reader, const Napi::CallbackInfo& info) {
  auto target = info[0].As<Napi::Uint8Array>();
  double offset = info[1].As<Napi::Number>().DoubleValue();
  double limit = info[2].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0) || offset > static_cast<double>(target.ByteLength()) || !(limit >= 0)) {
    throw Napi::RangeError::New(env, "the offset lies outside the target");
  }
  size_t at = static_cast<size_t>(offset);
  size_t room = std::min(target.ByteLength() - at, static_cast<size_t>(std::min(limit, 1e15)));
  size_t copied = 0;
  size_t wanted = 0;
  if (reader->read(target.Data() + at, room, &copied, &wanted) != ReadStatus::Ok) {
    throw Napi::Error::New(env, "the peer wrote a corrupt record: the link is poisoned");
  }
  return copied == 0 && wanted > 0 ? -static_cast<double>(wanted) : static_cast<double>(copied);
}

}  // namespace strait_shm
