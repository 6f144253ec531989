// The read both links share (shared memory and RDMA): the published records copied into a buffer
// the caller owns, so a read allocates nothing.
#pragma once

#include <napi.h>

#include <algorithm>

#include "ring.h"

namespace strait_shm {

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
