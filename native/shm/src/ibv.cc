// The libibverbs fabric: one reliable-connected queue pair on a real RDMA device, with its protection
// domain, completion queue and completion channel. libibverbs is loaded at run time (dlopen, as
// NCCL and brpc do), so the addon loads and runs without rdma-core; this file is compiled against
// <infiniband/verbs.h> only where the headers exist, and otherwise says the backend is absent.
//
// UNTESTED HERE: the development and CI machines have no RDMA device (ibv_get_device_list fails
// with ENOSYS). The link above this fabric is tested over LoopbackFabric; this file's device calls
// follow rdma-core's rc_pingpong (INIT -> RTR -> RTS, event-mode completions) and have run on no
// device yet.
#include "fabric.h"

#if !defined(STRAIT_NO_VERBS) && __has_include(<infiniband/verbs.h>)
#include <infiniband/verbs.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>

#include <cerrno>

namespace strait_verbs {

namespace {

// the exported libibverbs functions this fabric calls (the data-path ones, post and poll, are
// inline in the header and go through the device's own operations)
struct Library {
  void* handle = nullptr;
  struct ibv_device** (*getDeviceList)(int*) = nullptr;
  void (*freeDeviceList)(struct ibv_device**) = nullptr;
  const char* (*getDeviceName)(struct ibv_device*) = nullptr;
  struct ibv_context* (*openDevice)(struct ibv_device*) = nullptr;
  int (*closeDevice)(struct ibv_context*) = nullptr;
  int (*queryPort)(struct ibv_context*, uint8_t, struct ibv_port_attr*) = nullptr;
  int (*queryGid)(struct ibv_context*, uint8_t, int, union ibv_gid*) = nullptr;
  struct ibv_pd* (*allocPd)(struct ibv_context*) = nullptr;
  int (*deallocPd)(struct ibv_pd*) = nullptr;
  struct ibv_mr* (*regMr)(struct ibv_pd*, void*, size_t, int) = nullptr;
  int (*deregMr)(struct ibv_mr*) = nullptr;
  struct ibv_comp_channel* (*createCompChannel)(struct ibv_context*) = nullptr;
  int (*destroyCompChannel)(struct ibv_comp_channel*) = nullptr;
  struct ibv_cq* (*createCq)(struct ibv_context*, int, void*, struct ibv_comp_channel*, int) = nullptr;
  int (*destroyCq)(struct ibv_cq*) = nullptr;
  int (*getCqEvent)(struct ibv_comp_channel*, struct ibv_cq**, void**) = nullptr;
  void (*ackCqEvents)(struct ibv_cq*, unsigned int) = nullptr;
  struct ibv_qp* (*createQp)(struct ibv_pd*, struct ibv_qp_init_attr*) = nullptr;
  int (*modifyQp)(struct ibv_qp*, struct ibv_qp_attr*, int) = nullptr;
  int (*destroyQp)(struct ibv_qp*) = nullptr;
  const char* (*statusString)(enum ibv_wc_status) = nullptr;
};

template <typename F>
bool bind(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  return *out != nullptr;
}

// loaded once; an error says why not
const Library* library(std::string* error) {
  static Library lib;
  static std::string failure;
  static bool tried = false;
  if (!tried) {
    tried = true;
    lib.handle = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib.handle == nullptr) {
      const char* why = dlerror();
      failure = std::string("libibverbs is not installed: ") + (why == nullptr ? "dlopen failed" : why);
    } else {
      void* h = lib.handle;
      bool all = bind(h, "ibv_get_device_list", &lib.getDeviceList) && bind(h, "ibv_free_device_list", &lib.freeDeviceList) &&
        bind(h, "ibv_get_device_name", &lib.getDeviceName) && bind(h, "ibv_open_device", &lib.openDevice) &&
        bind(h, "ibv_close_device", &lib.closeDevice) && bind(h, "ibv_query_port", &lib.queryPort) &&
        bind(h, "ibv_query_gid", &lib.queryGid) && bind(h, "ibv_alloc_pd", &lib.allocPd) && bind(h, "ibv_dealloc_pd", &lib.deallocPd) &&
        bind(h, "ibv_reg_mr", &lib.regMr) && bind(h, "ibv_dereg_mr", &lib.deregMr) &&
        bind(h, "ibv_create_comp_channel", &lib.createCompChannel) && bind(h, "ibv_destroy_comp_channel", &lib.destroyCompChannel) &&
        bind(h, "ibv_create_cq", &lib.createCq) && bind(h, "ibv_destroy_cq", &lib.destroyCq) &&
        bind(h, "ibv_get_cq_event", &lib.getCqEvent) && bind(h, "ibv_ack_cq_events", &lib.ackCqEvents) &&
        bind(h, "ibv_create_qp", &lib.createQp) && bind(h, "ibv_modify_qp", &lib.modifyQp) && bind(h, "ibv_destroy_qp", &lib.destroyQp) &&
        bind(h, "ibv_wc_status_str", &lib.statusString);
      if (!all) failure = "libibverbs lacks a function this backend calls";
    }
  }
  if (!failure.empty()) {
    *error = failure;
    return nullptr;
  }
  return &lib;
}

constexpr int kSendDepth = 512;
constexpr int kReceiveDepth = 512;

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

class IbvFabric : public Fabric {
 public:
  IbvFabric(const Library* lib, int port, int gidIndex) : lib_(lib), port_(static_cast<uint8_t>(port)), gidIndex_(gidIndex) {}

  ~IbvFabric() override {
    if (qp_ != nullptr) lib_->destroyQp(qp_);
    for (struct ibv_mr* mr : regions_) lib_->deregMr(mr);
    if (cq_ != nullptr) {
      if (unacknowledged_ > 0) lib_->ackCqEvents(cq_, unacknowledged_);
      lib_->destroyCq(cq_);
    }
    if (channel_ != nullptr) lib_->destroyCompChannel(channel_);
    if (pd_ != nullptr) lib_->deallocPd(pd_);
    if (context_ != nullptr) lib_->closeDevice(context_);
  }

  bool open(const std::string& device, std::string* error) {
    int count = 0;
    errno = 0;
    struct ibv_device** list = lib_->getDeviceList(&count);
    if (list == nullptr) {
      *error = errno == 0 ? "ibv_get_device_list failed" : errnoText("ibv_get_device_list");
      return false;
    }
    for (int i = 0; i < count && context_ == nullptr; i++) {
      if (device.empty() || device == lib_->getDeviceName(list[i])) context_ = lib_->openDevice(list[i]);
    }
    lib_->freeDeviceList(list);
    if (context_ == nullptr) {
      *error = device.empty() ? "no RDMA device" : "no RDMA device named " + device;
      return false;
    }
    std::memset(&portAttr_, 0, sizeof(portAttr_));
    if (lib_->queryPort(context_, port_, &portAttr_) != 0) return fail(error, "ibv_query_port");
    if (lib_->queryGid(context_, port_, gidIndex_, &gid_) != 0) return fail(error, "ibv_query_gid");
    pd_ = lib_->allocPd(context_);
    if (pd_ == nullptr) return fail(error, "ibv_alloc_pd");
    channel_ = lib_->createCompChannel(context_);
    if (channel_ == nullptr) return fail(error, "ibv_create_comp_channel");
    int flags = fcntl(channel_->fd, F_GETFL);
    if (flags < 0 || fcntl(channel_->fd, F_SETFL, flags | O_NONBLOCK) != 0) return fail(error, "fcntl(O_NONBLOCK)");
    cq_ = lib_->createCq(context_, kSendDepth + kReceiveDepth, nullptr, channel_, 0);
    if (cq_ == nullptr) return fail(error, "ibv_create_cq");
    struct ibv_qp_init_attr init = {};
    init.send_cq = cq_;
    init.recv_cq = cq_;
    init.cap.max_send_wr = kSendDepth;
    init.cap.max_recv_wr = kReceiveDepth;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    init.qp_type = IBV_QPT_RC;
    init.sq_sig_all = 0;
    qp_ = lib_->createQp(pd_, &init);
    if (qp_ == nullptr) return fail(error, "ibv_create_qp");
    struct ibv_qp_attr attr = {};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = port_;
    attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    if (lib_->modifyQp(qp_, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0) return fail(error, "ibv_modify_qp(INIT)");
    return true;
  }

  bool registerRegion(uint8_t* addr, size_t length, bool remoteWrite, Region* out, std::string* error) override {
    int access = IBV_ACCESS_LOCAL_WRITE | (remoteWrite ? IBV_ACCESS_REMOTE_WRITE : 0);
    struct ibv_mr* mr = lib_->regMr(pd_, addr, length, access);
    if (mr == nullptr) return fail(error, "ibv_reg_mr (is the locked-memory limit, ulimit -l, high enough?)");
    regions_.push_back(mr);
    *out = Region{addr, length, mr->lkey, mr->rkey};
    return true;
  }

  void describe(Hello* hello) override {
    hello->qpn = qp_->qp_num;
    hello->lid = portAttr_.lid;
    std::memcpy(hello->gid, gid_.raw, 16);
    hello->mtu = static_cast<uint32_t>(portAttr_.active_mtu);
  }

  bool connect(const Hello& peer, uint32_t psn, std::string* error) override {
    struct ibv_qp_attr attr = {};
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = static_cast<enum ibv_mtu>(std::min<uint32_t>(peer.mtu, portAttr_.active_mtu));
    attr.dest_qp_num = peer.qpn;
    attr.rq_psn = peer.psn;
    attr.max_dest_rd_atomic = 1;
    attr.min_rnr_timer = 12;
    attr.ah_attr.is_global = 0;
    attr.ah_attr.dlid = peer.lid;
    attr.ah_attr.sl = 0;
    attr.ah_attr.src_path_bits = 0;
    attr.ah_attr.port_num = port_;
    // RoCE (no LIDs) routes by GID
    bool global = portAttr_.link_layer == IBV_LINK_LAYER_ETHERNET || peer.lid == 0;
    if (global) {
      attr.ah_attr.is_global = 1;
      std::memcpy(attr.ah_attr.grh.dgid.raw, peer.gid, 16);
      attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(gidIndex_);
      attr.ah_attr.grh.hop_limit = 1;
    }
    int mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
    if (lib_->modifyQp(qp_, &attr, mask) != 0) return fail(error, "ibv_modify_qp(RTR)");
    struct ibv_qp_attr send = {};
    send.qp_state = IBV_QPS_RTS;
    send.timeout = 14;
    send.retry_cnt = 7;
    send.rnr_retry = 7;
    send.sq_psn = psn;
    send.max_rd_atomic = 1;
    int sendMask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
    if (lib_->modifyQp(qp_, &send, sendMask) != 0) return fail(error, "ibv_modify_qp(RTS)");
    return true;
  }

  bool postWrite(const Region& local, size_t offset, size_t length, uint64_t remoteAddr, uint32_t rkey, bool withImm, uint32_t imm,
                 bool signaled, uint64_t wrId, std::string* error) override {
    struct ibv_sge sge = {};
    sge.addr = reinterpret_cast<uint64_t>(local.addr + offset);
    sge.length = static_cast<uint32_t>(length);
    sge.lkey = local.lkey;
    struct ibv_send_wr wr = {};
    wr.wr_id = wrId;
    wr.sg_list = length > 0 ? &sge : nullptr;
    wr.num_sge = length > 0 ? 1 : 0;
    wr.opcode = withImm ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE;
    wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
    wr.imm_data = htonl(imm);
    wr.wr.rdma.remote_addr = remoteAddr;
    wr.wr.rdma.rkey = rkey;
    struct ibv_send_wr* bad = nullptr;
    int code = ibv_post_send(qp_, &wr, &bad);
    if (code != 0) {
      *error = std::string("ibv_post_send: ") + std::strerror(code);
      return false;
    }
    return true;
  }

  bool postReceive(std::string* error) override {
    struct ibv_recv_wr wr = {};
    wr.wr_id = 0;
    wr.sg_list = nullptr;
    wr.num_sge = 0;
    struct ibv_recv_wr* bad = nullptr;
    int code = ibv_post_recv(qp_, &wr, &bad);
    if (code != 0) {
      *error = std::string("ibv_post_recv: ") + std::strerror(code);
      return false;
    }
    return true;
  }

  int poll(Completion* out, int max) override {
    struct ibv_wc wc[32];
    int total = 0;
    while (total < max) {
      int want = std::min(32, max - total);
      int n = ibv_poll_cq(cq_, want, wc);
      if (n < 0) return -1;
      for (int i = 0; i < n; i++) {
        Completion& c = out[total++];
        if (wc[i].status != IBV_WC_SUCCESS) {
          c.kind = CompletionKind::Failed;
          c.wrId = wc[i].wr_id;
          c.error = std::string("work completion: ") + lib_->statusString(wc[i].status);
        } else if (wc[i].opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
          c.kind = CompletionKind::Received;
          c.imm = ntohl(wc[i].imm_data);
        } else {
          c.kind = CompletionKind::Sent;
          c.wrId = wc[i].wr_id;
        }
      }
      if (n < want) break;
    }
    return total;
  }

  bool arm(std::string* error) override {
    int code = ibv_req_notify_cq(cq_, 0);
    if (code != 0) {
      *error = std::string("ibv_req_notify_cq: ") + std::strerror(code);
      return false;
    }
    return true;
  }

  int eventFd() const override { return channel_->fd; }

  // takes the channel's events (non-blocking) and acknowledges them in batches
  void acknowledge() override {
    struct ibv_cq* cq = nullptr;
    void* context = nullptr;
    while (lib_->getCqEvent(channel_, &cq, &context) == 0) unacknowledged_++;
    if (unacknowledged_ >= 64) {
      lib_->ackCqEvents(cq_, unacknowledged_);
      unacknowledged_ = 0;
    }
  }

 private:
  bool fail(std::string* error, const char* what) {
    *error = errnoText(what);
    return false;
  }

  const Library* lib_;
  uint8_t port_;
  int gidIndex_;
  struct ibv_context* context_ = nullptr;
  struct ibv_port_attr portAttr_;
  union ibv_gid gid_ = {};
  struct ibv_pd* pd_ = nullptr;
  struct ibv_comp_channel* channel_ = nullptr;
  struct ibv_cq* cq_ = nullptr;
  struct ibv_qp* qp_ = nullptr;
  std::vector<struct ibv_mr*> regions_;
  unsigned int unacknowledged_ = 0;
};

}  // namespace

std::unique_ptr<Fabric> openIbvFabric(const std::string& device, int port, int gidIndex, std::string* error) {
  const Library* lib = library(error);
  if (lib == nullptr) return nullptr;
  if (port < 1 || port > 255 || gidIndex < 0 || gidIndex > 255) {
    *error = "the port is 1..255 and the GID index 0..255";
    return nullptr;
  }
  auto fabric = std::make_unique<IbvFabric>(lib, port, gidIndex);
  if (!fabric->open(device, error)) return nullptr;
  return fabric;
}

bool ibvCompiled() { return true; }

}  // namespace strait_verbs

#else

namespace strait_verbs {

std::unique_ptr<Fabric> openIbvFabric(const std::string&, int, int, std::string* error) {
  *error = "this build has no verbs backend (the libibverbs headers, <infiniband/verbs.h>, were absent when it was compiled)";
  return nullptr;
}

bool ibvCompiled() { return false; }

}  // namespace strait_verbs

#endif
