// The device side of an RDMA link, behind one interface with two implementations:
//   - `IbvFabric` (ibv.cc): a reliable-connected queue pair on a real device through libibverbs,
//     loaded at run time; compiled only where <infiniband/verbs.h> exists.
//   - `LoopbackFabric` (here): the same operations between two queue pairs of this process, done
//     with memcpy, checked the way a device checks them (registered regions, bounds, access rights,
//     receive credits). It lets the link above (verbs.cc: ring, credits, completions, end of stream)
//     run and be tested on machines without a device; it carries nothing between processes.
//
// The operations are the few the link needs: register memory, say who we are (the hello), connect
// to the peer's hello, post RDMA WRITE (with or without immediate data) and zero-length receives,
// poll completions, and arm a file descriptor that becomes readable when a completion arrives.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace strait_verbs {

// Registered memory: where it is and the keys that name it.
struct Region {
  uint8_t* addr = nullptr;
  size_t length = 0;
  uint32_t lkey = 0;
  uint32_t rkey = 0;
};

// What one side tells the other to connect (over the TCP side channel): its queue pair's address
// and the two regions the peer writes into (the receive ring's data, and the credit word).
struct Hello {
  uint32_t qpn = 0;
  uint32_t psn = 0;
  uint16_t lid = 0;
  uint8_t gid[16] = {};
  uint32_t mtu = 0;  // the ibv_mtu enum value of the port's active MTU
  uint64_t ringAddr = 0;
  uint32_t ringKey = 0;
  uint32_t capacity = 0;
  uint64_t creditAddr = 0;
  uint32_t creditKey = 0;
};

enum class CompletionKind { Received, Sent, Failed };

struct Completion {
  CompletionKind kind = CompletionKind::Received;
  uint32_t imm = 0;        // Received: the immediate data
  uint64_t wrId = 0;       // Sent: the work request's id
  std::string error;       // Failed: what went wrong
};

class Fabric {
 public:
  virtual ~Fabric() = default;
  // Registers `length` bytes at `addr`; `remoteWrite` lets the peer write them.
  virtual bool registerRegion(uint8_t* addr, size_t length, bool remoteWrite, Region* out, std::string* error) = 0;
  // Fills in this queue pair's address (qpn, lid, gid, mtu); the caller adds psn and regions.
  virtual void describe(Hello* hello) = 0;
  // Moves the queue pair to ready-to-send against the peer's hello (`psn` is ours).
  virtual bool connect(const Hello& peer, uint32_t psn, std::string* error) = 0;
  // Posts an RDMA WRITE of `length` bytes of `local` from `offset` to the peer's `remoteAddr`
  // (`rkey`); with `withImm` the peer gets a completion carrying `imm`. `signaled` asks for a Sent
  // completion with `wrId`.
  virtual bool postWrite(const Region& local, size_t offset, size_t length, uint64_t remoteAddr, uint32_t rkey, bool withImm,
                         uint32_t imm, bool signaled, uint64_t wrId, std::string* error) = 0;
  // Posts one zero-length receive (consumed by each WRITE with immediate data that arrives).
  virtual bool postReceive(std::string* error) = 0;
  // Takes up to `max` completions; never blocks. A negative count is a failed poll.
  virtual int poll(Completion* out, int max) = 0;
  // Asks for the event descriptor to become readable at the next completion.
  virtual bool arm(std::string* error) = 0;
  // The descriptor the event loop watches, and the acknowledgement of its events once readable.
  virtual int eventFd() const = 0;
  virtual void acknowledge() = 0;
};

// Two queue pairs of one process, connected through a registry by queue pair number.
class LoopbackFabric : public Fabric {
 public:
  LoopbackFabric() {
    event_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    std::lock_guard<std::mutex> lock(registry().mutex);
    qpn_ = ++registry().lastQpn & 0xffffff;
    registry().pairs[qpn_] = this;
  }

  ~LoopbackFabric() override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().pairs.erase(qpn_);
    for (uint32_t key : keys_) registry().regions.erase(key);
    // a peer still writing to us finds nobody: its writes fail as a lost peer's do
    if (peer_ != nullptr && registry().pairs.count(peerQpn_) != 0) peer_->peerLost("the peer's queue pair was destroyed");
    if (event_ >= 0) close(event_);
  }

  bool registerRegion(uint8_t* addr, size_t length, bool remoteWrite, Region* out, std::string*) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    uint32_t key = ++registry().lastKey;
    registry().regions[key] = Registered{addr, length, remoteWrite, qpn_};
    keys_.push_back(key);
    *out = Region{addr, length, key, key};
    return true;
  }

  void describe(Hello* hello) override {
    hello->qpn = qpn_;
    hello->lid = 0;
    std::memset(hello->gid, 0, sizeof(hello->gid));
    hello->mtu = 5;  // IBV_MTU_4096
  }

  bool connect(const Hello& peer, uint32_t, std::string* error) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    auto found = registry().pairs.find(peer.qpn);
    if (found == registry().pairs.end() || found->second == this) {
      *error = "no loopback queue pair " + std::to_string(peer.qpn) + " in this process";
      return false;
    }
    peer_ = found->second;
    peerQpn_ = peer.qpn;
    return true;
  }

  bool postWrite(const Region& local, size_t offset, size_t length, uint64_t remoteAddr, uint32_t rkey, bool withImm, uint32_t imm,
                 bool signaled, uint64_t wrId, std::string* error) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    if (peer_ == nullptr || registry().pairs.count(peerQpn_) == 0) {
      *error = "the queue pair is not connected";
      return false;
    }
    if (offset + length > local.length) {
      *error = "a local write outside its region";
      return false;
    }
    // what a responder checks before placing the data: the key, the bounds and the rights
    auto region = registry().regions.find(rkey);
    uint8_t* target = reinterpret_cast<uint8_t*>(remoteAddr);
    bool allowed = region != registry().regions.end() && region->second.owner == peerQpn_ && region->second.remoteWrite &&
      target >= region->second.addr && length <= region->second.length &&
      static_cast<size_t>(target - region->second.addr) <= region->second.length - length;
    if (!allowed) {
      push(Completion{CompletionKind::Failed, 0, wrId, "remote access error (IBV_WC_REM_ACCESS_ERR)"});
      return true;
    }
    if (length > 0) std::memmove(target, local.addr + offset, length);
    if (withImm) {
      // no receive posted: a device answers "receiver not ready" and the sender retries (rnr_retry 7
      // retries for ever); here the completion waits for the peer's next receive
      if (peer_->receives_ == 0) {
        peer_->notReady_.push_back(imm);
      } else {
        peer_->receives_--;
        peer_->push(Completion{CompletionKind::Received, imm, 0, {}});
      }
    }
    if (signaled) push(Completion{CompletionKind::Sent, 0, wrId, {}});
    return true;
  }

  bool postReceive(std::string*) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    if (notReady_.empty()) {
      receives_++;
    } else {
      push(Completion{CompletionKind::Received, notReady_.front(), 0, {}});
      notReady_.pop_front();
    }
    return true;
  }

  int poll(Completion* out, int max) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    int count = 0;
    while (count < max && !queue_.empty()) {
      out[count++] = std::move(queue_.front());
      queue_.pop_front();
    }
    return count;
  }

  bool arm(std::string*) override {
    std::lock_guard<std::mutex> lock(registry().mutex);
    armed_ = true;
    if (!queue_.empty()) ring();
    return true;
  }

  int eventFd() const override { return event_; }

  void acknowledge() override {
    uint64_t count;
    while (read(event_, &count, sizeof(count)) == sizeof(count)) {
    }
  }

 private:
  struct Registered {
    uint8_t* addr;
    size_t length;
    bool remoteWrite;
    uint32_t owner;
  };
  struct Registry {
    std::mutex mutex;
    uint32_t lastQpn = 0;
    uint32_t lastKey = 0;
    std::map<uint32_t, LoopbackFabric*> pairs;
    std::map<uint32_t, Registered> regions;
  };
  static Registry& registry() {
    static Registry instance;
    return instance;
  }

  // called with the registry locked
  void push(Completion completion) {
    queue_.push_back(std::move(completion));
    if (armed_) ring();
  }
  void ring() {
    armed_ = false;
    uint64_t one = 1;
    ssize_t ignored = write(event_, &one, sizeof(one));
    (void)ignored;
  }
  void peerLost(const std::string& why) {
    peer_ = nullptr;
    push(Completion{CompletionKind::Failed, 0, 0, why});
  }

  uint32_t qpn_ = 0;
  uint32_t peerQpn_ = 0;
  LoopbackFabric* peer_ = nullptr;
  int event_ = -1;
  bool armed_ = false;
  uint32_t receives_ = 0;
  std::deque<uint32_t> notReady_;  // writes with immediate data waiting for a receive
  std::deque<Completion> queue_;
  std::vector<uint32_t> keys_;
};

// A real device's queue pair, or why there is none (this build lacks the headers, libibverbs is
// missing, no such device, a call failed). `port` is the device port (from 1), `gidIndex` the GID
// table entry for RoCE.
std::unique_ptr<Fabric> openIbvFabric(const std::string& device, int port, int gidIndex, std::string* error);

// Whether this build has the libibverbs backend.
bool ibvCompiled();

}  // namespace strait_verbs
