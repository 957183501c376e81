// Kernel TCP handshakes for fake-TCP connections, on the JS thread's own libuv loop: listening and
// connecting sockets sit in one epoll instance whose descriptor the LoopHandle polls. Once a handshake
// completes the watcher learns its sequence numbers, silences the socket with a drop-everything
// filter and reports it to JS, synchronously from the poll callback, one call per event.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernel_tcp.h"
#include "loop_handle.h"

namespace rsock {

class SocketWatcher : public Napi::ObjectWrap<SocketWatcher>, private LoopClient {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit SocketWatcher(const Napi::CallbackInfo& info);
  ~SocketWatcher() override;

 private:
  enum class Kind { kListening, kConnecting, kEstablished, kFailed };
  struct Entry {
    uint32_t serial;  // tells the socket behind an fd from an earlier one with the same number
    Kind kind;
  };
  struct Event {
    enum class Type { kAccepted, kConnected, kFailed };
    Type type = Type::kFailed;
    int fd = -1;
    uint32_t serial = 0;
    int listenFd = -1;
    HandshakeState hs{};
    int err = 0;
    std::string error;
  };
  // A listener that ran out of descriptors (or memory) is not polled until retryAt (loop time, ms).
  struct Backoff {
    int fd;
    uint32_t serial;
    uint64_t retryAt;
  };

  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  void CloseFd(const Napi::CallbackInfo& info);
  void HandBack(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info) { Shutdown(Caller::kJs); }
  void Shutdown(Caller caller);
  void OnLoopEnvTeardown() override { Shutdown(Caller::kEnvTeardown); }

  static bool Busy(Kind kind) { return kind == Kind::kListening || kind == Kind::kConnecting; }
  static uint32_t Interest(Kind kind);
  void EnsureRunning(Napi::Env env, const char* method) const;
  uint32_t NextSerial();
  // epoll_ctl() for fd; returns 0 or an errno value.
  int Watch(int op, int fd, uint32_t serial, uint32_t events);
  uint32_t Add(Napi::Env env, int fd, Kind kind, const std::string& where);
  void SetKind(Entry& entry, int fd, Kind kind);
  bool Alive(int fd, uint32_t serial) const;
  void Release(int fd, Kind kind);
  // Keeps the loop alive exactly while a listener, a dial or an undelivered event exists.
  void UpdateRef();
  // Runs the timer for whatever is due first: queued events, a listener's backoff, a poll retry.
  void Schedule();

  // socket_watcher_events.cc: on the JS thread, from the loop. Deliver and the handlers return false
  // when JS stopped the watcher during a callback (it may be gone then): return at once.
  void OnLoopPoll(int status) override;
  void OnLoopTimer() override;
  bool HandleListener(int fd, uint32_t serial);
  bool HandleConnecting(int fd, uint32_t serial, uint32_t revents);
  bool Deliver(const Event& ev);

  // Every socket the watcher owns, from creation until close(fd) or stop().
  std::unordered_map<int, Entry> fds_;
  uint32_t nextSerial_ = 1;
  size_t busyFds_ = 0;  // listening or connecting
  std::vector<Event> pending_;  // failures found inside connect(), delivered from the timer
  std::vector<Backoff> backoff_;
  bool pollPaused_ = false;

  LoopHandle loop_;  // polls the epoll descriptor and owns it
  int epfd_ = -1;    // borrowed from loop_; -1 once stopped
  Napi::FunctionReference onEvent_;
  bool stopped_ = false;
  bool selfRef_ = false;
  bool loopRefd_ = true;
};

}  // namespace rsock
