// The shared-memory link: one sealed memfd holding two single-producer single-consumer rings, one
// per direction. Plain C++ over the mapping; no Node types here, so the ring can be tested alone.
//
// Layout of the file: [ring 0 header | ring 0 data | ring 1 header | ring 1 data]. Side 0 (the side
// that connects) writes ring 0 and reads ring 1; side 1 the other way round.
//
// A ring header is 4 KiB; its fields sit on their own 128-byte strides so the two sides never share
// a cache line they both write:
//   [0]    magic u64, version u32, capacity u32 (bytes of data, a power of two)
//   [128]  tail u64: bytes published by the writer (release)
//   [256]  head u64: bytes released by the reader (release)
//   [384]  reader_sleeping u32: the reader found the ring empty and waits for a doorbell
//   [512]  writer_waiting u32: the writer found the ring full and waits for a doorbell
//   [640]  closed u32: the writer ended this direction (no record will follow)
//
// A record is [len u32][type u32][payload], 8-byte aligned, never split across the end of the data
// area: a PAD record fills the tail end instead. `tail` and `head` count bytes since the start and
// only grow; a position in the data area is the count modulo the capacity. A record is published
// by one release store of `tail` after all its bytes are written, so a reader (acquire load of
// `tail`) never sees a partial record. Every header a reader finds is validated before use: a
// corrupt or hostile peer poisons the link and is never trusted with a length or position.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strait_shm {

constexpr uint64_t kMagic = 0x5354524149543031ull;  // "STRAIT01"
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 4096;
constexpr uint32_t kRecordHeader = 8;
constexpr uint32_t kData = 1;
constexpr uint32_t kPad = 2;
constexpr uint32_t kMinCapacity = 4096;
constexpr uint32_t kMaxCapacity = 1u << 30;

inline uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }

inline bool validCapacity(uint64_t capacity) {
  return capacity >= kMinCapacity && capacity <= kMaxCapacity && (capacity & (capacity - 1)) == 0;
}

// the whole file for two rings of `capacity` bytes each
inline size_t fileBytes(uint32_t capacity) { return 2 * (kHeaderBytes + static_cast<size_t>(capacity)); }

struct RingView {
  uint8_t* base = nullptr;  // the ring's header
  uint32_t capacity = 0;

  uint8_t* data() const { return base + kHeaderBytes; }
  std::atomic<uint64_t>* tail() const { return reinterpret_cast<std::atomic<uint64_t>*>(base + 128); }
  std::atomic<uint64_t>* head() const { return reinterpret_cast<std::atomic<uint64_t>*>(base + 256); }
  std::atomic<uint32_t>* readerSleeping() const { return reinterpret_cast<std::atomic<uint32_t>*>(base + 384); }
  std::atomic<uint32_t>* writerWaiting() const { return reinterpret_cast<std::atomic<uint32_t>*>(base + 512); }
  std::atomic<uint32_t>* closed() const { return reinterpret_cast<std::atomic<uint32_t>*>(base + 640); }
  // the largest payload one record carries: an eighth of the ring, so a writer never waits for a
  // record that cannot fit
  uint32_t maxPayload() const { return capacity / 8 - kRecordHeader; }
};

// Writes a fresh header for a ring of `capacity` bytes at `base` (the file is zero-filled).
inline void initRing(uint8_t* base, uint32_t capacity) {
  std::memcpy(base, &kMagic, 8);
  std::memcpy(base + 8, &kVersion, 4);
  std::memcpy(base + 12, &capacity, 4);
}

// Whether the header at `base` names a ring this build understands, of `capacity` bytes.
inline bool checkRing(const uint8_t* base, uint32_t capacity) {
  uint64_t magic;
  uint32_t version, cap;
  std::memcpy(&magic, base, 8);
  std::memcpy(&version, base + 8, 4);
  std::memcpy(&cap, base + 12, 4);
  return magic == kMagic && version == kVersion && cap == capacity;
}

// The writer's side of a ring.
class Writer {
 public:
  explicit Writer(RingView ring) : ring_(ring), tail_(ring.tail()->load(std::memory_order_relaxed)) {}

  // Copies as many bytes of `chunks` as fit into DATA records and publishes them with one release
  // store; returns how many bytes were taken (0 when the ring is full).
  size_t write(const uint8_t* const* chunks, const size_t* lengths, size_t count, size_t skip) {
    const uint64_t head = ring_.head()->load(std::memory_order_acquire);
    const uint32_t cap = ring_.capacity;
    size_t taken = 0;
    size_t chunk = 0;
    size_t offset = skip;
    while (chunk < count) {
      if (offset >= lengths[chunk]) {
        ++chunk;
        offset = 0;
        continue;
      }
      uint64_t used = tail_ - head;
      uint32_t at = static_cast<uint32_t>(tail_ & (cap - 1));
      uint32_t untilEnd = cap - at;
      // room for at least a header and 8 bytes; a record never wraps: pad the tail end first
      if (untilEnd < kRecordHeader + 8) {
        if (cap - used < untilEnd) break;
        writeHeader(at, untilEnd - kRecordHeader, kPad);
        tail_ += untilEnd;
        continue;
      }
      uint64_t free = cap - used;
      if (free < kRecordHeader + 8) break;
      uint32_t room = static_cast<uint32_t>(std::min<uint64_t>(free, untilEnd)) - kRecordHeader;
      room = std::min(room, ring_.maxPayload()) & ~7u;
      if (room == 0) {
        if (untilEnd < free && untilEnd < kRecordHeader + 64) {
          writeHeader(at, untilEnd - kRecordHeader, kPad);
          tail_ += untilEnd;
          continue;
        }
        break;
      }
      // fill one record from as many chunks as fit
      uint32_t length = 0;
      uint8_t* out = ring_.data() + at + kRecordHeader;
      while (chunk < count && length < room) {
        size_t left = lengths[chunk] - offset;
        uint32_t n = static_cast<uint32_t>(std::min<size_t>(left, room - length));
        std::memcpy(out + length, chunks[chunk] + offset, n);
        length += n;
        offset += n;
        taken += n;
        if (offset >= lengths[chunk]) {
          ++chunk;
          offset = 0;
        }
      }
      writeHeader(at, length, kData);
      tail_ += kRecordHeader + align8(length);
    }
    if (taken > 0 || tail_ != ring_.tail()->load(std::memory_order_relaxed)) ring_.tail()->store(tail_, std::memory_order_release);
    return taken;
  }

  // After a publish: whether the reader sleeps and must be woken (the flag is cleared). The fence
  // orders the tail store before the flag's load (Dekker with the reader's arm).
  bool takeReaderSleeping() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ring_.readerSleeping()->load(std::memory_order_relaxed) == 0) return false;
    return ring_.readerSleeping()->exchange(0, std::memory_order_seq_cst) != 0;
  }

  // Before waiting for room: marks the writer waiting, then looks again; true when room appeared
  // meanwhile (the flag is withdrawn and the writer goes on at once).
  // The reader wakes a waiting writer only once a quarter of the ring is free (records are at most
  // an eighth), so a writer faster than its reader is woken once per quarter ring, not per read.
  bool armWritable(size_t wanted) {
    ring_.writerWaiting()->store(1, std::memory_order_seq_cst);
    uint64_t head = ring_.head()->load(std::memory_order_seq_cst);
    uint64_t free = ring_.capacity - (tail_ - head);
    if (free >= std::min<size_t>(wanted + kRecordHeader + 8, ring_.capacity / 4)) {
      ring_.writerWaiting()->store(0, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  // Bytes published so far (the tail), counted from the ring's start.
  uint64_t position() const { return tail_; }

  // Ends this direction; the caller then wakes a sleeping reader (`takeReaderSleeping`).
  void close() { ring_.closed()->store(1, std::memory_order_seq_cst); }

 private:
  void writeHeader(uint32_t at, uint32_t length, uint32_t type) {
    uint8_t* p = ring_.data() + at;
    std::memcpy(p, &length, 4);
    std::memcpy(p + 4, &type, 4);
  }

  RingView ring_;
  uint64_t tail_;
};

enum class ReadStatus { Ok, Corrupt };

// The reader's side of a ring.
class Reader {
 public:
  explicit Reader(RingView ring) : ring_(ring), head_(ring.head()->load(std::memory_order_relaxed)) {}

  // How many payload bytes are published and unread, walking the records without consuming them;
  // Corrupt when a header is out of bounds. `limit` bounds the walk.
  ReadStatus available(size_t limit, size_t* bytes) {
    *bytes = 0;
    uint64_t tail = ring_.tail()->load(std::memory_order_acquire);
    uint64_t at = head_;
    if (tail - at > ring_.capacity || tail < at) return ReadStatus::Corrupt;
    while (at < tail && *bytes < limit) {
      uint32_t length, type;
      if (!header(at, tail, &length, &type)) return ReadStatus::Corrupt;
      if (type == kData) *bytes += length;
      at += kRecordHeader + align8(length);
    }
    return ReadStatus::Ok;
  }

  // Copies the payloads of published records into `out` (at most `room` bytes, whole records only)
  // and releases them; returns the bytes copied in `*copied`, and in `*wanted` (when given) the
  // length of the record that did not fit, if one stopped the copy.
  ReadStatus read(uint8_t* out, size_t room, size_t* copied, size_t* wanted = nullptr) {
    *copied = 0;
    if (wanted != nullptr) *wanted = 0;
    uint64_t tail = ring_.tail()->load(std::memory_order_acquire);
    if (tail - head_ > ring_.capacity || tail < head_) return ReadStatus::Corrupt;
    uint64_t at = head_;
    while (at < tail) {
      uint32_t length, type;
      if (!header(at, tail, &length, &type)) return ReadStatus::Corrupt;
      if (type == kData && length > 0) {
        if (*copied + length > room) {
          if (wanted != nullptr) *wanted = length;
          break;
        }
        std::memcpy(out + *copied, ring_.data() + static_cast<uint32_t>(at & (ring_.capacity - 1)) + kRecordHeader, length);
        *copied += length;
      }
      at += kRecordHeader + align8(length);
    }
    if (at != head_) {
      head_ = at;
      ring_.head()->store(head_, std::memory_order_release);
    }
    return ReadStatus::Ok;
  }

  // Before waiting for data: marks the reader sleeping, then looks again; true when data appeared
  // or the writer ended meanwhile (the flag is withdrawn).
  bool armReadable() {
    ring_.readerSleeping()->store(1, std::memory_order_seq_cst);
    uint64_t tail = ring_.tail()->load(std::memory_order_seq_cst);
    // the writer's end is news too: it publishes no record, only the flag
    if (tail != head_ || ring_.closed()->load(std::memory_order_seq_cst) != 0) {
      ring_.readerSleeping()->store(0, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  // After releasing: whether the writer waits for room and must be woken (the flag is cleared), which
  // is once a quarter of the ring is free (see Writer::armWritable); a reader that empties the ring
  // always finds that much.
  bool takeWriterWaiting() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ring_.writerWaiting()->load(std::memory_order_relaxed) == 0) return false;
    uint64_t tail = ring_.tail()->load(std::memory_order_acquire);
    if (ring_.capacity - (tail - head_) < ring_.capacity / 4) return false;
    return ring_.writerWaiting()->exchange(0, std::memory_order_seq_cst) != 0;
  }

  // Whether anything (a record, or the writer's end) waits to be read.
  bool pending() const {
    return ring_.tail()->load(std::memory_order_acquire) != head_ || ring_.closed()->load(std::memory_order_acquire) != 0;
  }

  // Bytes released so far (the head), counted from the ring's start.
  uint64_t position() const { return head_; }

  // The writer ended this direction and everything it published has been read.
  bool ended() const {
    return ring_.closed()->load(std::memory_order_acquire) != 0 && ring_.tail()->load(std::memory_order_acquire) == head_;
  }

 private:
  // A record header at `at`, checked: a known type, within the ring's capacity, not wrapping, not
  // past the tail.
  bool header(uint64_t at, uint64_t tail, uint32_t* length, uint32_t* type) const {
    if ((at & 7u) != 0 || tail - at < kRecordHeader) return false;
    uint32_t pos = static_cast<uint32_t>(at & (ring_.capacity - 1));
    if (ring_.capacity - pos < kRecordHeader) return false;
    const uint8_t* p = ring_.data() + pos;
    std::memcpy(length, p, 4);
    std::memcpy(type, p + 4, 4);
    if (*type != kData && *type != kPad) return false;
    uint64_t size = kRecordHeader + static_cast<uint64_t>(align8(*length));
    if (*length > ring_.capacity || size > ring_.capacity - pos || size > tail - at) return false;
    if (*type == kData && *length > ring_.maxPayload()) return false;
    return true;
  }

  RingView ring_;
  uint64_t head_;
};

}  // namespace strait_shm
