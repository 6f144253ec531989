// The RDMA link: the shared-memory ring's format carried over RDMA WRITE with immediate data, with
// the same calls as the shared-memory `Link` (send, takeInto, armWritable, endWrite, unmap), so the
// JavaScript pipe above is one for both.
//
// Memory per link (page-aligned, registered):
//   - tx: a ring header and data area, the staging copy of the peer's receive ring. `Writer` fills
//     it exactly as it fills a shared ring; each publish is then posted as RDMA WRITE(s) of the new
//     bytes to the same offsets of the peer's ring, the last one WITH_IMM carrying the byte count.
//     The header's `head` word is the credit word: the peer RDMA-writes its released count there.
//   - rx: the receive ring. Only its data area is remotely writable. A completion with immediate
//     data advances its `tail` by the count; `Reader` then validates and copies records as it does
//     for shared memory (a hostile or broken peer poisons the link, never the process).
// Immediate data: bit 31 = credit (the peer's head was written to our credit word), bit 30 = end of
// the peer's stream, otherwise the count of bytes published. Credit goes back whenever a quarter of
// the ring has been released since the last, which keeps a waiting writer from starving (records
// are at most an eighth of the ring).
//
// Completions reach the event loop through a uv_poll on the fabric's event descriptor: the callback
// acknowledges, re-arms, then polls (arm-then-poll closes the race), reposts a receive per arrival,
// and calls the JavaScript handler. No native thread.
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fabric.h"
#include "ring.h"
#include "link_io.h"
#include "uv_watch.h"

namespace {

using strait_shm::kHeaderBytes;
using strait_shm::Reader;
using strait_shm::ReadStatus;
using strait_shm::RingView;
using strait_shm::Writer;
using namespace strait_verbs;

constexpr uint32_t kCredit = 1u << 31;
constexpr uint32_t kEnd = 1u << 30;
constexpr uint32_t kMaxCapacity = 1u << 28;
constexpr uint64_t kSendDepth = 512;  // as the fabric's queue pair
constexpr uint64_t kReserved = 4;     // send slots kept for credit and end
constexpr uint64_t kSignalEvery = 64;
constexpr int kReceives = 512;

struct Memory {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  ~Memory() { std::free(base); }
  bool allocate(size_t size) {
    bytes = size;
    if (posix_memalign(reinterpret_cast<void**>(&base), 4096, size) != 0) return false;
    std::memset(base, 0, size);
    return true;
  }
};

class VerbsLink : public Napi::ObjectWrap<VerbsLink> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "VerbsLink", {
      InstanceMethod<&VerbsLink::HelloOf>("hello"),
      InstanceMethod<&VerbsLink::Connect>("connect"),
      InstanceMethod<&VerbsLink::OnWake>("onWake"),
      InstanceMethod<&VerbsLink::Send>("send"),
      InstanceMethod<&VerbsLink::TakeInto>("takeInto"),
      InstanceMethod<&VerbsLink::ArmWritable>("armWritable"),
      InstanceMethod<&VerbsLink::EndWrite>("endWrite"),
      InstanceMethod<&VerbsLink::Unmap>("unmap"),
    });
  }

  // new VerbsLink(device, capacity, psn, port, gidIndex): device "loopback" is the in-process fabric
  explicit VerbsLink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VerbsLink>(info) {
    Napi::Env env = info.Env();
    std::string device = info[0].As<Napi::String>().Utf8Value();
    double capacity = info[1].As<Napi::Number>().DoubleValue();
    psn_ = info[2].As<Napi::Number>().Uint32Value() & 0xffffff;
    int port = info[3].As<Napi::Number>().Int32Value();
    int gidIndex = info[4].As<Napi::Number>().Int32Value();
    if (!(capacity >= 0) || !strait_shm::validCapacity(static_cast<uint64_t>(capacity)) || capacity > kMaxCapacity) {
      throw Napi::RangeError::New(env, "the capacity must be a power of two from 4 KiB to 256 MiB");
    }
    capacity_ = static_cast<uint32_t>(capacity);
    std::string error;
    if (device == "loopback") fabric_ = std::make_unique<LoopbackFabric>();
    else fabric_ = openIbvFabric(device, port, gidIndex, &error);
    if (fabric_ == nullptr) throw Napi::Error::New(env, error);
    if (!tx_.allocate(kHeaderBytes + capacity_) || !rx_.allocate(kHeaderBytes + capacity_)) throw Napi::Error::New(env, "out of memory for the rings");
    strait_shm::initRing(tx_.base, capacity_);
    strait_shm::initRing(rx_.base, capacity_);
    bool registered = fabric_->registerRegion(tx_.base, kHeaderBytes, true, &txHeader_, &error) &&
      fabric_->registerRegion(tx_.base + kHeaderBytes, capacity_, false, &txData_, &error) &&
      fabric_->registerRegion(rx_.base, kHeaderBytes, false, &rxHeader_, &error) &&
      fabric_->registerRegion(rx_.base + kHeaderBytes, capacity_, true, &rxData_, &error);
    if (!registered) throw Napi::Error::New(env, error);
    for (int i = 0; i < kReceives; i++) {
      if (!fabric_->postReceive(&error)) throw Napi::Error::New(env, error);
    }
    RingView txRing{tx_.base, capacity_};
    RingView rxRing{rx_.base, capacity_};
    writer_ = std::make_unique<Writer>(txRing);
    reader_ = std::make_unique<Reader>(rxRing);
    rxRing_ = rxRing;
  }

  ~VerbsLink() override { release(); }

 private:
  void release() {
    watcher_.stop();
    // the queue pair goes before the memory it may still write into
    fabric_.reset();
    writer_.reset();
    reader_.reset();
  }

  void usable(Napi::Env env) const {
    if (fabric_ == nullptr) throw Napi::Error::New(env, "the link is closed");
  }

  void failed(Napi::Env env) const {
    if (!failure_.empty()) throw Napi::Error::New(env, "the RDMA link failed: " + failure_);
  }

  Napi::Value HelloOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    Hello hello;
    fabric_->describe(&hello);
    Napi::Object out = Napi::Object::New(env);
    out.Set("qpn", Napi::Number::New(env, hello.qpn));
    out.Set("psn", Napi::Number::New(env, psn_));
    out.Set("lid", Napi::Number::New(env, hello.lid));
    out.Set("gid", Napi::Buffer<uint8_t>::Copy(env, hello.gid, 16));
    out.Set("mtu", Napi::Number::New(env, hello.mtu));
    out.Set("ringAddr", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(rxData_.addr))));
    out.Set("ringKey", Napi::Number::New(env, rxData_.rkey));
    out.Set("capacity", Napi::Number::New(env, capacity_));
    out.Set("creditAddr", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(txHeader_.addr + 256))));
    out.Set("creditKey", Napi::Number::New(env, txHeader_.rkey));
    return out;
  }

  static uint64_t bigint(Napi::Env env, Napi::Value value) {
    bool lossless = false;
    uint64_t out = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "an address out of range");
    return out;
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    Napi::Object peer = info[0].As<Napi::Object>();
    Hello hello;
    hello.qpn = peer.Get("qpn").As<Napi::Number>().Uint32Value();
    hello.psn = peer.Get("psn").As<Napi::Number>().Uint32Value() & 0xffffff;
    hello.lid = static_cast<uint16_t>(peer.Get("lid").As<Napi::Number>().Uint32Value());
    Napi::Buffer<uint8_t> gid = peer.Get("gid").As<Napi::Buffer<uint8_t>>();
    if (gid.Length() != 16) throw Napi::RangeError::New(env, "a GID is 16 bytes");
    std::memcpy(hello.gid, gid.Data(), 16);
    hello.mtu = peer.Get("mtu").As<Napi::Number>().Uint32Value();
    hello.ringAddr = bigint(env, peer.Get("ringAddr"));
    hello.ringKey = peer.Get("ringKey").As<Napi::Number>().Uint32Value();
    hello.capacity = peer.Get("capacity").As<Napi::Number>().Uint32Value();
    hello.creditAddr = bigint(env, peer.Get("creditAddr"));
    hello.creditKey = peer.Get("creditKey").As<Napi::Number>().Uint32Value();
    if (hello.capacity != capacity_) throw Napi::Error::New(env, "the peer's ring is of another capacity");
    std::string error;
    if (!fabric_->connect(hello, psn_, &error)) throw Napi::Error::New(env, error);
    peer_ = hello;
    connected_ = true;
    return env.Undefined();
  }

  // onWake(handler): from now on the handler runs whenever completions arrived (after they are taken)
  Napi::Value OnWake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    watcher_.start(env, fabric_->eventFd(), info[0].As<Napi::Function>(), this, &VerbsLink::OnReadable);
    std::string error;
    if (!fabric_->arm(&error)) failure_ = error;
    return env.Undefined();
  }

  // the completion channel is readable: acknowledge, re-arm, then take the completions (arm before
  // polling, so none is missed)
  static bool OnReadable(void* owner) {
    auto* link = static_cast<VerbsLink*>(owner);
    if (link->fabric_ == nullptr) return false;
    link->fabric_->acknowledge();
    std::string error;
    if (!link->fabric_->arm(&error) && link->failure_.empty()) link->failure_ = error;
    link->complete();
    return true;
  }

  // takes every completion: arrivals advance the receive ring (and get their receive back), sends
  // free their slots, a failure poisons the link
  void complete() {
    Completion batch[64];
    while (fabric_ != nullptr) {
      int count = fabric_->poll(batch, 64);
      if (count < 0) {
        if (failure_.empty()) failure_ = "polling the completion queue failed";
        return;
      }
      for (int i = 0; i < count; i++) {
        Completion& c = batch[i];
        if (c.kind == CompletionKind::Failed) {
          if (failure_.empty()) failure_ = c.error;
        } else if (c.kind == CompletionKind::Sent) {
          completed_ = std::max(completed_, c.wrId);
        } else {
          std::string error;
          if (!fabric_->postReceive(&error) && failure_.empty()) failure_ = error;
          if ((c.imm & kEnd) != 0) peerEnded_ = true;
          else if ((c.imm & kCredit) == 0) {
            rxTail_ += c.imm;
            rxRing_.tail()->store(rxTail_, std::memory_order_release);
          }
        }
      }
      if (count < 64) return;
    }
  }

  bool post(const Region& local, size_t offset, size_t length, uint64_t remoteAddr, uint32_t rkey, bool withImm, uint32_t imm) {
    posted_++;
    bool signaled = posted_ % kSignalEvery == 0;
    std::string error;
    if (!fabric_->postWrite(local, offset, length, remoteAddr, rkey, withImm, imm, signaled, posted_, &error)) {
      if (failure_.empty()) failure_ = error;
      return false;
    }
    return true;
  }

  uint64_t sendRoom() const { return kSendDepth - (posted_ - completed_); }

  // the bytes from `from` to `to` of the staging ring, to the same offsets of the peer's ring
  void publish(uint64_t from, uint64_t to) {
    uint32_t bytes = static_cast<uint32_t>(to - from);
    uint32_t at = static_cast<uint32_t>(from & (capacity_ - 1));
    if (at + bytes <= capacity_) {
      post(txData_, at, bytes, peer_.ringAddr + at, peer_.ringKey, true, bytes);
      return;
    }
    uint32_t first = capacity_ - at;
    if (post(txData_, at, first, peer_.ringAddr + at, peer_.ringKey, false, 0)) {
      post(txData_, 0, bytes - first, peer_.ringAddr, peer_.ringKey, true, bytes);
    }
  }

  // our released count to the peer's credit word, once a quarter of the ring has been released
  void returnCredit(bool always) {
    uint64_t head = reader_->position();
    if (head == creditSent_ || (!always && head - creditSent_ < capacity_ / 4) || sendRoom() < 2) return;
    creditSent_ = head;
    post(rxHeader_, 256, 8, peer_.creditAddr, peer_.creditKey, true, kCredit);
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    if (!connected_) throw Napi::Error::New(env, "the link is not connected");
    complete();
    failed(env);
    if (ended_ || sendRoom() < kReserved + 2) return Napi::Number::New(env, 0);
    uint64_t before = writer_->position();
    size_t taken = writeChunks(env, writer_.get(), info);
    uint64_t after = writer_->position();
    if (after != before) publish(before, after);
    failed(env);
    return Napi::Number::New(env, static_cast<double>(taken));
  }

  // the ring's records as in the shared-memory link (takeInto); state gets [0, 0 nothing yet | 2 the
  // peer ended]
  Napi::Value TakeInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    auto state = info[3].As<Napi::Int32Array>();
    if (state.ElementLength() < 1) throw Napi::RangeError::New(env, "the state holds one number");
    complete();
    failed(env);
    double copied = strait_shm::takeInto(env, reader_.get(), info);
    state[0] = copied == 0 && peerEnded_ && reader_->position() == rxTail_ ? 2 : 0;
    if (connected_) returnCredit(false);
    return Napi::Number::New(env, copied);
  }

  // true when there is room (ring and send queue) for `wanted` bytes now; else a completion will
  // come (credit or a signaled send) and the handler runs
  Napi::Value ArmWritable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    complete();
    if (!failure_.empty()) return Napi::Boolean::New(env, true);
    size_t wanted = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
    bool room = sendRoom() >= kReserved + 2 && writer_->armWritable(std::min<size_t>(wanted, capacity_ / 8 - strait_shm::kRecordHeader));
    return Napi::Boolean::New(env, room);
  }

  Napi::Value EndWrite(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    usable(env);
    if (connected_ && !ended_) {
      ended_ = true;
      post(txData_, 0, 0, peer_.ringAddr, peer_.ringKey, true, kEnd);
    }
    return env.Undefined();
  }

  Napi::Value Unmap(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  std::unique_ptr<Fabric> fabric_;
  Memory tx_;
  Memory rx_;
  Region txHeader_, txData_, rxHeader_, rxData_;
  RingView rxRing_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Reader> reader_;
  strait_shm::Watcher watcher_;
  Hello peer_;
  uint32_t capacity_ = 0;
  uint32_t psn_ = 0;
  bool connected_ = false;
  bool ended_ = false;
  bool peerEnded_ = false;
  uint64_t rxTail_ = 0;
  uint64_t creditSent_ = 0;
  uint64_t posted_ = 0;
  uint64_t completed_ = 0;
  std::string failure_;
};

}  // namespace

namespace strait_verbs {

void initVerbs(Napi::Env env, Napi::Object exports) {
  exports.Set("VerbsLink", VerbsLink::Define(env));
  exports.Set("verbsCompiled", Napi::Boolean::New(env, ibvCompiled()));
}

}  // namespace strait_verbs
