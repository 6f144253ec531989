// Node binding of the shared-memory link (N-API through node-addon-api, so one build loads on every
// Node from 18 on). Everything runs on the JS thread: no native threads, no locks. Wake-ups are
// eventfds, one per side, handed over with the memory: a writer writes the peer's when the peer's
// reader sleeps (or its writer waits for room), and each side watches its own with uv_poll.
//
// Functions:
//   createMemfd(capacity) -> fd           a sealed memfd for two rings of `capacity` bytes
//   checkMemfd(fd, capacity) -> boolean   the peer's memfd is sealed and of the right size
//   createBell() -> fd                    an eventfd, a side's doorbell
//   sendFds(socketFd, fds[], capacity)    passes descriptors over a connected Unix socket (SCM_RIGHTS)
//   recvFds(socketFd) -> {fds, capacity} | null (nothing yet); throws on a malformed hand-over
//   closeFd(fd)
//   slab() -> Buffer                      256 KiB (slabBytes) to read into, recycled once collected
//   probeVerbs() -> {available, reason?, errno?, devices?}   RDMA verbs here, and why not
//   verbsCompiled                         this build has the libibverbs backend (its headers existed)
//   new VerbsLink(device, capacity, psn, port, gidIndex)   an RDMA link (verbs.cc); "loopback" is
//                                         the in-process test fabric
//   new SpinPolicy(spinNanos)             the spin policy alone: shouldSpin(now), record(won, spent, now)
//   new Link(fd, side, capacity, spinMicros?, bell?, peerBell?)   maps the memfd; side 0 writes ring
//                                         0, side 1 ring 1; with spinMicros a reader finding its ring
//                                         empty may watch it that long first (spin.h); with the bells
//                                         (this side's eventfd and the peer's, owned by the link from
//                                         then on) it rings the peer itself
//     onWake(handler)                     runs handler whenever this side's bell rings
//     send(chunks[], skip) -> bytes taken (with bells, the sleeping reader is rung)
//     takeInto(target, offset, limit, state) -> bytes copied into target (minus the next record's
//                                         length when it does not fit), with state[0] 0 asleep |
//                                         1 data came | 2 ended (with bells, a waiting writer is rung)
//     armWritable(wanted) -> boolean      true when room appeared meanwhile (do not wait)
//     endWrite()                          no more records from this side
//     spins() -> [spins, spins that saw data]
//     unmap()
//     and the primitives the ring's specifications drive: write(chunks[], skip), wakeReader(),
//     read(maxBytes), armReadable(), wakeWriter(), ended()
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <dlfcn.h>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "fabric.h"
#include "ring.h"
#include "spin.h"
#include "link_io.h"
#include "uv_watch.h"

namespace strait_verbs {
void initVerbs(Napi::Env env, Napi::Object exports);
}

namespace {

using namespace strait_shm;

constexpr uint32_t kHandoverMagic = 0x53484d31;  // "SHM1"

Napi::Error systemError(Napi::Env env, const char* what, int code) {
  auto error = Napi::Error::New(env, std::string(what) + ": " + std::strerror(code));
  error.Set("code", Napi::Number::New(env, code));
  return error;
}

uint32_t capacityArg(const Napi::CallbackInfo& info, size_t index) {
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0) || !validCapacity(static_cast<uint64_t>(value)) || static_cast<double>(static_cast<uint64_t>(value)) != value) {
    throw Napi::RangeError::New(info.Env(), "the capacity must be a power of two from 4 KiB to 1 GiB");
  }
  return static_cast<uint32_t>(value);
}

Napi::Value CreateMemfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t capacity = capacityArg(info, 0);
  int fd = memfd_create("strait-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw systemError(env, "memfd_create", errno);
  size_t bytes = fileBytes(capacity);
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int code = errno;
    close(fd);
    throw systemError(env, "ftruncate", code);
  }
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    int code = errno;
    close(fd);
    throw systemError(env, "mmap", code);
  }
  auto* base = static_cast<uint8_t*>(map);
  initRing(base, capacity);
  initRing(base + kHeaderBytes + capacity, capacity);
  munmap(map, bytes);
  // a peer can neither shrink the file under our mapping (SIGBUS) nor change the seals
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int code = errno;
    close(fd);
    throw systemError(env, "fcntl(F_ADD_SEALS)", code);
  }
  return Napi::Number::New(env, fd);
}

bool sealedAndSized(int fd, uint32_t capacity) {
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return false;
  int wanted = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  if ((seals & wanted) != wanted) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_size) == fileBytes(capacity);
}

Napi::Value CheckMemfd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t capacity = capacityArg(info, 1);
  return Napi::Boolean::New(info.Env(), sealedAndSized(fd, capacity));
}

constexpr uint32_t kMaxHandover = 4;

// sendFds(socketFd, fds[], capacity): the descriptors (the memfd, then the two doorbells) in one
// message with the capacity and their count
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int socketFd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array list = info[1].As<Napi::Array>();
  uint32_t capacity = capacityArg(info, 2);
  uint32_t count = list.Length();
  if (count == 0 || count > kMaxHandover) throw Napi::RangeError::New(env, "one to four descriptors");
  int fds[kMaxHandover];
  for (uint32_t i = 0; i < count; i++) fds[i] = list.Get(i).As<Napi::Number>().Int32Value();
  uint32_t payload[3] = {kHandoverMagic, capacity, count};
  struct iovec iov = {payload, sizeof(payload)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxHandover)];
  std::memset(control, 0, sizeof(control));
  struct msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
  struct cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int) * count);
  std::memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
  ssize_t sent;
  do {
    sent = sendmsg(socketFd, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) throw systemError(env, "sendmsg", errno);
  if (sent != static_cast<ssize_t>(sizeof(payload))) throw Napi::Error::New(env, "sendmsg: the hand-over was cut short");
  return env.Undefined();
}

// recvFds(socketFd) -> {fds, capacity} | null (nothing yet); throws on a malformed hand-over (every
// descriptor that came is closed then)
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int socketFd = info[0].As<Napi::Number>().Int32Value();
  uint32_t payload[3] = {0, 0, 0};
  struct iovec iov = {payload, sizeof(payload)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxHandover + 4))];
  struct msghdr message = {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = recvmsg(socketFd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return env.Null();
  if (got < 0) throw systemError(env, "recvmsg", errno);
  std::vector<int> fds;
  for (struct cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      std::memcpy(&received, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  bool valid = got == static_cast<ssize_t>(sizeof(payload)) && (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0 &&
    payload[0] == kHandoverMagic && validCapacity(payload[1]) && payload[2] >= 1 && payload[2] <= kMaxHandover && fds.size() == payload[2];
  if (!valid) {
    for (int fd : fds) close(fd);
    throw Napi::Error::New(env, got == 0 ? "the peer closed before handing over its memory" : "a malformed shared-memory hand-over");
  }
  Napi::Array list = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  Napi::Object result = Napi::Object::New(env);
  result.Set("fds", list);
  result.Set("capacity", Napi::Number::New(env, payload[1]));
  return result;
}

// a doorbell: an eventfd its owner's link watches
Napi::Value CreateBell(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw systemError(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0) close(fd);
  return info.Env().Undefined();
}

// Slabs for reads: 256 KiB buffers whose memory is recycled when the garbage collector frees them,
// so a busy link reads into memory that is already mapped instead of fresh pages each time (in a
// VM, the page faults of fresh allocations cost more than the copies). The pool keeps at most 64
// free slabs (16 MiB); more are freed.
constexpr size_t kSlabBytes = 256 * 1024;
constexpr size_t kPoolSlabs = 64;

std::vector<void*>& slabPool() {
  static std::vector<void*> pool;
  return pool;
}

Napi::Value Slab(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& pool = slabPool();
  void* memory = nullptr;
  if (!pool.empty()) {
    memory = pool.back();
    pool.pop_back();
  } else if (posix_memalign(&memory, 4096, kSlabBytes) != 0) {
    throw Napi::Error::New(env, "out of memory for a read slab");
  }
  // the collector counts the slab, so it runs (and slabs come back) as often as their memory needs
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(kSlabBytes));
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(memory), kSlabBytes, [](Napi::Env collected, uint8_t* data) {
    Napi::MemoryManagement::AdjustExternalMemory(collected, -static_cast<int64_t>(kSlabBytes));
    auto& free = slabPool();
    if (free.size() < kPoolSlabs) free.push_back(data);
    else std::free(data);
  });
}

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Link", {
      InstanceMethod<&Link::Write>("write"),
      InstanceMethod<&Link::WakeReader>("wakeReader"),
      InstanceMethod<&Link::ArmWritable>("armWritable"),
      InstanceMethod<&Link::Read>("read"),
      InstanceMethod<&Link::ArmReadable>("armReadable"),
      InstanceMethod<&Link::WakeWriter>("wakeWriter"),
      InstanceMethod<&Link::EndWrite>("endWrite"),
      InstanceMethod<&Link::Ended>("ended"),
      InstanceMethod<&Link::Unmap>("unmap"),
      InstanceMethod<&Link::Send>("send"),
      InstanceMethod<&Link::TakeInto>("takeInto"),
      InstanceMethod<&Link::Spins>("spins"),
      InstanceMethod<&Link::OnWake>("onWake"),
    });
  }

  explicit Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    int side = info[1].As<Napi::Number>().Int32Value();
    uint32_t capacity = capacityArg(info, 2);
    if (side != 0 && side != 1) throw Napi::RangeError::New(env, "the side is 0 or 1");
    if (info.Length() > 3 && info[3].IsNumber()) {
      double micros = info[3].As<Napi::Number>().DoubleValue();
      if (!(micros >= 0 && micros <= 1000)) throw Napi::RangeError::New(env, "the spin is 0 to 1000 µs");
      spin_ = SpinPolicy(static_cast<uint64_t>(micros * 1000));
    }
    if (info.Length() > 5 && info[4].IsNumber() && info[5].IsNumber()) {
      bell_ = info[4].As<Napi::Number>().Int32Value();
      peerBell_ = info[5].As<Napi::Number>().Int32Value();
    }
    if (!sealedAndSized(fd, capacity)) throw Napi::Error::New(env, "the shared memory is not sealed, or not of the size announced");
    bytes_ = fileBytes(capacity);
    void* map = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) throw systemError(env, "mmap", errno);
    map_ = static_cast<uint8_t*>(map);
    RingView first{map_, capacity};
    RingView second{map_ + kHeaderBytes + capacity, capacity};
    if (!checkRing(first.base, capacity) || !checkRing(second.base, capacity)) {
      munmap(map_, bytes_);
      map_ = nullptr;
      throw Napi::Error::New(env, "the shared memory does not hold this version's rings");
    }
    writer_ = new Writer(side == 0 ? first : second);
    reader_ = new Reader(side == 0 ? second : first);
    maxPayload_ = first.maxPayload();
  }

  ~Link() override { release(); }

 private:
  void release() {
    watcher_.stop();
    if (bell_ >= 0) close(bell_);
    if (peerBell_ >= 0) close(peerBell_);
    bell_ = -1;
    peerBell_ = -1;
    delete writer_;
    delete reader_;
    writer_ = nullptr;
    reader_ = nullptr;
    if (map_ != nullptr) munmap(map_, bytes_);
    map_ = nullptr;
  }

  void mapped(Napi::Env env) const {
    if (map_ == nullptr) throw Napi::Error::New(env, "the link is closed");
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    mapped(env);
    return Napi::Number::New(env, static_cast<double>(writeChunks(env, writer_, info)));
  }

  Napi::Value WakeReader(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    return Napi::Boolean::New(info.Env(), writer_->takeReaderSleeping());
  }

  Napi::Value ArmWritable(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    size_t wanted = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
    return Napi::Boolean::New(info.Env(), writer_->armWritable(std::min<size_t>(wanted, maxPayload_)));
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    mapped(env);
    size_t limit = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
    size_t bytes = 0;
    if (reader_->available(limit, &bytes) != ReadStatus::Ok) throw Napi::Error::New(env, "the peer wrote a corrupt record: the link is poisoned");
    if (bytes == 0) {
      // pads only: consume them
      size_t copied = 0;
      if (reader_->read(nullptr, 0, &copied) != ReadStatus::Ok) throw Napi::Error::New(env, "the peer wrote a corrupt record: the link is poisoned");
      return env.Null();
    }
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, bytes);
    size_t copied = 0;
    if (reader_->read(out.Data(), bytes, &copied) != ReadStatus::Ok) throw Napi::Error::New(env, "the peer wrote a corrupt record: the link is poisoned");
    if (copied != bytes) return Napi::Buffer<uint8_t>::Copy(env, out.Data(), copied);
    return out;
  }

  Napi::Value ArmReadable(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    return Napi::Boolean::New(info.Env(), reader_->armReadable());
  }

  Napi::Value WakeWriter(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    return Napi::Boolean::New(info.Env(), reader_->takeWriterWaiting());
  }

  Napi::Value EndWrite(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    writer_->close();
    if (peerBell_ >= 0 && writer_->takeReaderSleeping()) ringPeer();
    return info.Env().Undefined();
  }

  Napi::Value Ended(const Napi::CallbackInfo& info) {
    mapped(info.Env());
    return Napi::Boolean::New(info.Env(), reader_->ended());
  }

  // write, and (with bells) ring the reader's doorbell if it sleeps: the bytes taken
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    mapped(env);
    size_t taken = writeChunks(env, writer_, info);
    if (taken > 0 && peerBell_ >= 0 && writer_->takeReaderSleeping()) ringPeer();
    return Napi::Number::New(env, static_cast<double>(taken));
  }

  // the peer's doorbell: its eventfd's counter goes up (a full counter already rings)
  void ringPeer() {
    uint64_t one = 1;
    ssize_t written = write(peerBell_, &one, sizeof(one));
    (void)written;
  }

  // this side's bell rang: take its count, then run the handler
  static bool OnBell(void* owner) {
    auto* link = static_cast<Link*>(owner);
    uint64_t count;
    while (read(link->bell_, &count, sizeof(count)) == sizeof(count)) {
    }
    return link->map_ != nullptr;
  }

  Napi::Value OnWake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    mapped(env);
    if (bell_ < 0) throw Napi::Error::New(env, "the link has no doorbell");
    watcher_.start(env, bell_, info[0].As<Napi::Function>(), this, &Link::OnBell);
    return env.Undefined();
  }

  // read into `target` from byte `offset` (at most `limit` bytes, whole records), ring a writer
  // waiting for room (with bells), and (when nothing was there) ended and armReadable, in one call:
  // returns the bytes copied, or minus the length of the next record when it does not fit (nothing
  // copied). `state[0]` (an Int32Array of 1) gets what an empty ring means: 0 sleeping, 1 data
  // arrived meanwhile, 2 the peer ended. The caller owns `target`, so a read allocates nothing.
  Napi::Value TakeInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    mapped(env);
    auto state = info[3].As<Napi::Int32Array>();
    if (state.ElementLength() < 1) throw Napi::RangeError::New(env, "the state holds one number");
    double copied = takeInto(env, reader_, info);
    if (copied == 0 && !reader_->ended() && spinFor()) copied = takeInto(env, reader_, info);
    if (peerBell_ >= 0 && reader_->takeWriterWaiting()) ringPeer();
    state[0] = 0;
    if (copied == 0) {
      if (reader_->ended()) state[0] = 2;
      else if (reader_->armReadable()) state[0] = 1;
    }
    return Napi::Number::New(env, copied);
  }

  // An empty ring: watches it for the policy's spin when the policy allows; true when something came.
  bool spinFor() {
    uint64_t start = monotonicNanos();
    if (!spin_.shouldSpin(start)) return false;
    uint64_t deadline = start + spin_.spinNanos();
    bool won = false;
    for (uint32_t i = 1;; i++) {
      if (reader_->pending()) {
        won = true;
        break;
      }
      cpuRelax();
      if ((i & 31) == 0 && monotonicNanos() >= deadline) break;
    }
    uint64_t end = monotonicNanos();
    spin_.record(won, end - start, end);
    spins_++;
    if (won) spinsWon_++;
    return won;
  }

  // [spins, spins that saw data arrive]
  Napi::Value Spins(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(spins_)));
    out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(spinsWon_)));
    return out;
  }

  Napi::Value Unmap(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }

  uint8_t* map_ = nullptr;
  size_t bytes_ = 0;
  uint32_t maxPayload_ = 0;
  Writer* writer_ = nullptr;
  Reader* reader_ = nullptr;
  SpinPolicy spin_;
  uint64_t spins_ = 0;
  uint64_t spinsWon_ = 0;
  int bell_ = -1;
  int peerBell_ = -1;
  Watcher watcher_;
};

// The spin policy alone, for its specifications: times are the caller's.
class Policy : public Napi::ObjectWrap<Policy> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SpinPolicy", {
      InstanceMethod<&Policy::ShouldSpin>("shouldSpin"),
      InstanceMethod<&Policy::Record>("record"),
    });
  }
  explicit Policy(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Policy>(info), policy_(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue())) {}

 private:
  Napi::Value ShouldSpin(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), policy_.shouldSpin(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue())));
  }
  Napi::Value Record(const Napi::CallbackInfo& info) {
    policy_.record(info[0].As<Napi::Boolean>().Value(), static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()),
                   static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue()));
    return info.Env().Undefined();
  }
  SpinPolicy policy_;
};

// Whether RDMA verbs can be used here, and why not: libibverbs is loaded at run time (so this addon
// loads without the library), and its device list asked for. NULL (ENOSYS: the kernel has no
// ib_uverbs), no device, or a build without the verbs backend (no headers at compile time):
// unavailable, with the reason. Devices and the backend: available, with the devices' names.
Napi::Value ProbeVerbs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("available", Napi::Boolean::New(env, false));
  void* library = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    result.Set("reason", Napi::String::New(env, std::string("libibverbs is not installed: ") + (why == nullptr ? "dlopen failed" : why)));
    return result;
  }
  using GetList = void** (*)(int*);
  using FreeList = void (*)(void**);
  using GetName = const char* (*)(void*);
  auto getList = reinterpret_cast<GetList>(dlsym(library, "ibv_get_device_list"));
  auto freeList = reinterpret_cast<FreeList>(dlsym(library, "ibv_free_device_list"));
  auto getName = reinterpret_cast<GetName>(dlsym(library, "ibv_get_device_name"));
  if (getList == nullptr || freeList == nullptr || getName == nullptr) {
    dlclose(library);
    result.Set("reason", Napi::String::New(env, "libibverbs lacks ibv_get_device_list"));
    return result;
  }
  errno = 0;
  int count = 0;
  void** list = getList(&count);
  if (list == nullptr) {
    int code = errno;
    dlclose(library);
    result.Set("reason", Napi::String::New(env, std::string("ibv_get_device_list: ") + (code == 0 ? "failed" : std::strerror(code))));
    result.Set("errno", Napi::Number::New(env, code));
    return result;
  }
  Napi::Array devices = Napi::Array::New(env);
  for (int i = 0; i < count; i++) devices.Set(static_cast<uint32_t>(i), Napi::String::New(env, getName(list[i])));
  freeList(list);
  dlclose(library);
  result.Set("devices", devices);
  if (count > 0 && strait_verbs::ibvCompiled()) {
    result.Set("available", Napi::Boolean::New(env, true));
    return result;
  }
  result.Set("reason", Napi::String::New(env, count == 0 ? "no RDMA device" : "RDMA devices are present, but this build has no verbs backend (no libibverbs headers when it was compiled)"));
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("probeVerbs", Napi::Function::New<ProbeVerbs>(env, "probeVerbs"));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("createMemfd", Napi::Function::New<CreateMemfd>(env, "createMemfd"));
  exports.Set("checkMemfd", Napi::Function::New<CheckMemfd>(env, "checkMemfd"));
  exports.Set("sendFds", Napi::Function::New<SendFds>(env, "sendFds"));
  exports.Set("recvFds", Napi::Function::New<RecvFds>(env, "recvFds"));
  exports.Set("createBell", Napi::Function::New<CreateBell>(env, "createBell"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("slab", Napi::Function::New<Slab>(env, "slab"));
  exports.Set("slabBytes", Napi::Number::New(env, static_cast<double>(kSlabBytes)));
  exports.Set("Link", Link::Define(env));
  exports.Set("SpinPolicy", Policy::Define(env));
  strait_verbs::initVerbs(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(strait_shm, Init)
