#include "loop_handle.h"

#include <sched.h>

#include "args.h"

namespace rsock {

namespace {

// The block whose idle callback yields the CPU on this thread's loop. libuv runs every active idle
// callback once per loop turn; with the capture and the UDP mux both polling, one yield a turn is enough.
thread_local const void* t_yielder = nullptr;

}  // namespace

struct LoopHandle::Block {
  uv_poll_t poll;
  uv_timer_t timer;
  uv_idle_t idle;       // active while busy polling: the loop polls without blocking
  uint64_t busyPollNs = 0;
  uint64_t busyUntil = 0;  // uv_hrtime() at which busy polling ends
  int open = 0;  // handles whose close callback has yet to run
  napi_env env = nullptr;
  LoopClient* client = nullptr;   // null once closed
  LoopHandle* handle = nullptr;   // null once closed
  std::function<void()> release;
  napi_async_cleanup_hook_handle hook = nullptr;
};

void LoopHandle::Open(Napi::Env env, napi_value resource, const char* name, LoopClient* client, int fd,
                      std::function<void()> release, const std::string& where) {
  uv_loop_t* loop = nullptr;
  napi_value resourceName = nullptr;
  napi_async_context ctx = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resourceName) != napi_ok ||
      napi_async_init(env, resource, resourceName, &ctx) != napi_ok) {
    release();
    ThrowError(env, where + "cannot attach to the event loop");
  }
  auto* b = new Block();
  const int rc = uv_poll_init(loop, &b->poll, fd);
  if (rc != 0) {
    delete b;
    napi_async_destroy(env, ctx);
    release();
    ThrowError(env, where + "cannot poll the descriptor: " + uv_strerror(rc));
  }
  uv_timer_init(loop, &b->timer);  // cannot fail
  uv_idle_init(loop, &b->idle);
  // Busy polling never keeps the process alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&b->idle));
  b->poll.data = b;
  b->timer.data = b;
  b->idle.data = b;
  b->open = 3;
  b->env = env;
  b->client = client;
  b->handle = this;
  b->release = std::move(release);
  b_ = b;
  ctx_ = ctx;
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, b, &b->hook) != napi_ok) {
    b->hook = nullptr;
    Close(Caller::kFinalizer);
    ThrowError(env, where + "cannot register an environment cleanup hook");
  }
}

int LoopHandle::StartPolling(int events) { return b_ ? uv_poll_start(&b_->poll, events, OnPoll) : UV_EBADF; }

void LoopHandle::StopPolling() {
  if (b_) uv_poll_stop(&b_->poll);
}

void LoopHandle::StartTimer(uint64_t ms) {
  if (b_) uv_timer_start(&b_->timer, OnTimer, ms, 0);
}

void LoopHandle::StopTimer() {
  if (b_) uv_timer_stop(&b_->timer);
}

void LoopHandle::SetBusyPoll(uint32_t us) {
  if (b_) b_->busyPollNs = uint64_t{us} * 1000;
}

void LoopHandle::SetRef(bool ref) {
  if (!b_) return;
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&b_->poll), reinterpret_cast<uv_handle_t*>(&b_->timer)}) {
    if (ref) {
      uv_ref(h);
    } else {
      uv_unref(h);
    }
  }
}

uint64_t LoopHandle::Now() const { return b_ ? uv_now(b_->poll.loop) : 0; }

bool LoopHandle::Call(napi_value recv, napi_value fn, size_t argc, const napi_value* argv) {
  Block* b = b_;
  if (b == nullptr) return false;
  // Past the call `this` may be gone with its owner; the block stays until a later loop turn.
  napi_env env = b->env;
  napi_value result;
  if (napi_make_callback(env, ctx_, recv, fn, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_value error;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      napi_fatal_exception(env, error);
    }
  }
  return b->client != nullptr;
}

void LoopHandle::Close(Caller caller) {
  Block* b = b_;
  if (b == nullptr) return;
  b_ = nullptr;
  // A callback further up the stack (close() called from JS during a delivery) finds the block
  // detached and returns without touching the owner again.
  b->client = nullptr;
  b->handle = nullptr;
  uv_poll_stop(&b->poll);
  uv_timer_stop(&b->timer);
  uv_idle_stop(&b->idle);
  if (t_yielder == b) t_yielder = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&b->poll), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&b->timer), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&b->idle), OnClosed);
  // At env teardown the hook stays until the handles have closed: Node runs the loop until then.
  if (caller != Caller::kEnvTeardown) {
    if (b->hook) napi_remove_async_cleanup_hook(b->hook);
    b->hook = nullptr;
    napi_async_destroy(b->env, ctx_);
  }
  ctx_ = nullptr;
}

template <typename Fn>
void LoopHandle::Dispatch(Block* b, Fn fn) {
  LoopClient* client = b->client;
  if (client == nullptr) return;
  Napi::Env env(b->env);
  try {
    Napi::HandleScope scope(env);
    fn(client);
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

void LoopHandle::OnPoll(uv_poll_t* poll, int status, int) {
  Block* b = static_cast<Block*>(poll->data);
  Dispatch(b, [status](LoopClient* c) { c->OnLoopPoll(status); });
  // Busy polling: an active idle handle makes libuv poll with a zero timeout, so for busyPollNs
  // after this input the loop keeps polling every descriptor instead of sleeping, and what arrives
  // meanwhile is read without a wake-up (on a VM: without the vCPU's halt and its exit to the host).
  if (b->busyPollNs > 0 && b->client != nullptr) {
    b->busyUntil = uv_hrtime() + b->busyPollNs;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&b->idle))) uv_idle_start(&b->idle, OnIdle);
  }
}

void LoopHandle::OnIdle(uv_idle_t* idle) {
  Block* b = static_cast<Block*>(idle->data);
  if (uv_hrtime() >= b->busyUntil) {
    uv_idle_stop(idle);
    if (t_yielder == b) t_yielder = nullptr;
    return;
  }
  // Polling must not keep the CPU from what runs on it: the app rsock just woke, or the other end on a
  // shared machine. With the yield a ping-pong's round trip through the tunnel was half as long as
  // without busy polling, for the same CPU per ping; without the yield, a third longer (BENCHMARKS.md).
  if (t_yielder == nullptr) t_yielder = b;
  if (t_yielder == b) sched_yield();
}

void LoopHandle::OnTimer(uv_timer_t* timer) {
  Dispatch(static_cast<Block*>(timer->data), [](LoopClient* c) { c->OnLoopTimer(); });
}

void LoopHandle::OnClosed(uv_handle_t* handle) {
  auto* b = static_cast<Block*>(handle->data);
  if (--b->open > 0) return;
  if (b->release) b->release();
  if (b->hook) napi_remove_async_cleanup_hook(b->hook);
  delete b;
}

void LoopHandle::OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* b = static_cast<Block*>(arg);
  if (b->client) b->client->OnLoopEnvTeardown();
  // Whatever the client did, the handles close now; the last close callback removes the hook.
  if (b->handle) b->handle->Close(Caller::kEnvTeardown);
}

}  // namespace rsock
