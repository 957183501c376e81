// Kernel TCP handshakes for fake-TCP connections: listening and connecting sockets are watched on
// one worker thread; once a handshake completes the watcher learns its sequence numbers, silences
// the socket with a drop-everything filter and reports it to JS.
#pragma once

#include <napi.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernel_tcp.h"
#include "wake_pipe.h"

namespace rsock {

class SocketWatcher;

struct WatcherEvent {
  enum class Type { kAccepted, kConnected, kFailed };
  Type type = Type::kFailed;
  int fd = -1;
  uint64_t serial = 0;  // identifies the socket behind fd, which the kernel may reuse once closed
  int listenFd = -1;
  uint64_t listenSerial = 0;
  HandshakeState hs{};
  int err = 0;
  std::string error;
};
using WatcherEvents = std::vector<WatcherEvent>;

void WatcherCallJs(Napi::Env env, Napi::Function onEvent, SocketWatcher* self, WatcherEvents* events);

class SocketWatcher : public Napi::ObjectWrap<SocketWatcher> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit SocketWatcher(const Napi::CallbackInfo& info);
  ~SocketWatcher() override;

 private:
  friend void WatcherCallJs(Napi::Env, Napi::Function, SocketWatcher*, WatcherEvents*);
  using Tsfn = Napi::TypedThreadSafeFunction<SocketWatcher, WatcherEvents, WatcherCallJs>;
  using Clock = std::chrono::steady_clock;

  enum class Kind { kListening, kConnecting, kEstablished, kFailed };
  struct Entry {
    uint64_t serial;
    Kind kind;
    Clock::time_point retryAt{};  // accept() backoff after running out of descriptors
  };
  enum class Caller { kJs, kFinalizer, kEnvTeardown };

  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  void CloseFd(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info);

  void EnsureRunning(Napi::Env env, const char* method) const;
  uint64_t AddLocked(int fd, Kind kind);
  void Shutdown(Caller caller);
  static void OnEnvCleanup(void* arg);
  void Deliver(Napi::Env env, Napi::Function onEvent, WatcherEvents& events);
  bool StillWanted(const WatcherEvent& ev);
  void UpdateRef(Napi::Env env);

  // Worker thread; the handlers run with mu_ held.
  void Run();
  void Loop();
  void HandleListener(int fd, uint64_t serial, WatcherEvents& out);
  void HandleConnecting(int fd, Entry& entry, short revents, WatcherEvents& out);

  // Every socket the watcher owns, from creation until close(fd) or stop(). The worker only acts on
  // an fd while holding mu_ and after matching its serial, so once close() has returned the worker
  // never touches that socket again, even if the number is reused.
  std::mutex mu_;
  std::unordered_map<int, Entry> fds_;
  uint64_t nextSerial_ = 1;
  uint64_t inflight_ = 0;  // events queued for JS but not yet delivered
  bool stopping_ = false;

  WakePipe wake_;
  std::thread thread_;
  Tsfn tsfn_;

  // JS thread only.
  bool stopped_ = false;
  bool selfRef_ = false;
  bool cleanupHook_ = false;
  bool tsfnRefd_ = true;
};

}  // namespace rsock
