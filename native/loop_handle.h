// The event-loop side of every addon object that reads (Capture, UdpMux, SocketWatcher): one poll
// handle on a descriptor, one timer and one idle handle (busy polling), all on the JS thread's own
// libuv loop, so that I/O is handled and handed to JS without a thread hop.
//
// The handles live in a heap block that the object does not own. uv_close() completes only on a later
// loop turn, and until then libuv still watches the descriptor; so the block outlives the object when
// needed, and releases the descriptor (closes it) only once libuv has let go of it.
// For the same reason Node's environment teardown waits for that (an asynchronous cleanup hook).
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace rsock {

// Who shuts an object down, which decides what it may still touch: at env teardown no JS value, and
// only a close() from JS may drop the object's reference to itself (a finalizer has no object left).
enum class Caller { kJs, kFinalizer, kEnvTeardown };

// The longest busy-polling window an object accepts (opts.busyPollUs), in microseconds.
constexpr uint32_t kMaxBusyPollUs = 10000;

// What the owner of a LoopHandle is told, on the JS thread. Exceptions thrown from here become
// uncaught exceptions; nothing unwinds into libuv.
class LoopClient {
 public:
  // The descriptor is readable (or writable, as polled); status < 0 is libuv's error (POLLERR:
  // UV_EBADF), after which libuv has stopped polling.
  virtual void OnLoopPoll(int status) = 0;
  virtual void OnLoopTimer() {}
  // The environment is going away: release everything native, touch no JS value.
  virtual void OnLoopEnvTeardown() = 0;

 protected:
  ~LoopClient() = default;
};

class LoopHandle {
 public:
  LoopHandle() = default;
  LoopHandle(const LoopHandle&) = delete;
  LoopHandle& operator=(const LoopHandle&) = delete;
  ~LoopHandle() { Close(Caller::kFinalizer); }

  // Sets up polling of `fd` (not started) and the timer. `release` runs once libuv no longer watches
  // fd, and on failure before Open throws a Napi::Error that starts with `where`.
  void Open(Napi::Env env, napi_value resource, const char* name, LoopClient* client, int fd,
            std::function<void()> release, const std::string& where);
  bool IsOpen() const { return b_ != nullptr; }

  // libuv error code or 0.
  int StartPolling(int events = UV_READABLE);
  void StopPolling();
  void StartTimer(uint64_t ms);
  void StopTimer();
  // After every poll callback, keep the loop polling (never sleeping) for `us` µs; 0: off (the default).
  void SetBusyPoll(uint32_t us);
  // Whether the handles, while active, keep the event loop alive. They do after Open.
  void SetRef(bool ref);
  uint64_t Now() const;

  // Calls fn from a loop callback as Node calls an I/O callback: process.nextTick callbacks and
  // microtasks queued by fn run when it returns, and an exception it throws goes to
  // 'uncaughtException'. Returns false when fn closed this handle (its owner may be gone, too): the
  // caller must return at once without touching the owner.
  bool Call(napi_value recv, napi_value fn, size_t argc, const napi_value* argv);

  // Idempotent. Afterwards no callback reaches the client.
  void Close(Caller caller);

 private:
  struct Block;
  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnTimer(uv_timer_t* timer);
  static void OnIdle(uv_idle_t* idle);
  static void OnClosed(uv_handle_t* handle);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  template <typename Fn>
  static void Dispatch(Block* b, Fn fn);

  Block* b_ = nullptr;
  napi_async_context ctx_ = nullptr;
};

}  // namespace rsock
