// Watching a descriptor from the Node event loop (uv_poll) and calling JavaScript when it becomes
// readable, for both links: the shared-memory link's doorbell (an eventfd) and the RDMA link's
// completion channel. No native thread: the callback runs on the loop, like any I/O callback.
//
// The few libuv calls are declared here: Node exports libuv, whose 1.x ABI is stable; the handle's
// size is asked of libuv itself, and `data` is every handle's first field.
#pragma once

#include <napi.h>

#include <cstdlib>

extern "C" {
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_poll_s uv_poll_t;
typedef void (*uv_poll_cb)(uv_poll_t* handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t* handle);
int uv_poll_init(uv_loop_t* loop, uv_poll_t* handle, int fd);
int uv_poll_start(uv_poll_t* handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t* handle);
void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
size_t uv_handle_size(int type);
}

namespace strait_shm {

class Watcher {
 public:
  // Runs on the loop when the descriptor is readable, before the JavaScript handler; `owner` is the
  // link. Returns false to skip the handler (nothing to report).
  using Before = bool (*)(void* owner);

  Watcher() = default;
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  ~Watcher() { stop(); }

  bool active() const { return poll_ != nullptr; }

  // Watches `fd`; `handler` (JavaScript) runs after `before(owner)` each time it is readable.
  void start(Napi::Env env, int fd, Napi::Function handler, void* owner, Before before) {
    if (poll_ != nullptr) throw Napi::Error::New(env, "the link already has a handler");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, reinterpret_cast<struct uv_loop_s**>(&loop)) != napi_ok) throw Napi::Error::New(env, "no event loop");
    auto* poll = static_cast<uv_poll_t*>(std::calloc(1, uv_handle_size(kUvPoll)));
    if (poll == nullptr) throw Napi::Error::New(env, "out of memory");
    if (uv_poll_init(loop, poll, fd) != 0) {
      std::free(poll);
      throw Napi::Error::New(env, "uv_poll_init failed");
    }
    env_ = env;
    handler_ = Napi::Persistent(handler);
    owner_ = owner;
    before_ = before;
    *reinterpret_cast<void**>(poll) = this;
    poll_ = poll;
    uv_poll_start(poll_, kUvReadable, &Watcher::onPoll);
  }

  // Stops watching; libuv frees the handle once it has closed it.
  void stop() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    *reinterpret_cast<void**>(poll_) = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* handle) { std::free(handle); });
    poll_ = nullptr;
    handler_.Reset();
  }

 private:
  static constexpr int kUvPoll = 8;      // UV_POLL in uv_handle_type
  static constexpr int kUvReadable = 1;  // UV_READABLE

  static void onPoll(uv_poll_t* handle, int, int) {
    auto* self = *reinterpret_cast<Watcher**>(handle);
    if (self == nullptr || self->poll_ == nullptr) return;
    if (!self->before_(self->owner_)) return;
    if (self->poll_ == nullptr) return;
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    try {
      self->handler_.MakeCallback(env.Global(), {});
    } catch (const Napi::Error& thrown) {
      napi_fatal_exception(env, thrown.Value());
    }
  }

  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;
  Napi::FunctionReference handler_;
  void* owner_ = nullptr;
  Before before_ = nullptr;
};

}  // namespace strait_shm
