// Many plain UDP sockets served on the JS thread's own libuv loop. The sockets sit in one epoll
// instance whose descriptor is watched by a single uv_poll_t: when any socket is readable, the poll
// callback reads the ready ones with recvmmsg() and calls onBatch synchronously, one call per batch.
// Sends leave with sendmmsg() straight from the JS thread. No worker thread, no thread-safe
// function: the data path never changes threads, and crosses N-API once per batch each way.
//
// The batch Buffer and meta Uint32Array are allocated once and handed to every call; they are valid
// only during the call.
#pragma once

#include <napi.h>

#include "batch_arrays.h"
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

namespace rsock {

class UdpMux : public Napi::ObjectWrap<UdpMux> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit UdpMux(const Napi::CallbackInfo& info);
  ~UdpMux() override;

  // Datagrams per recvmmsg()/sendmmsg() call.
  static constexpr size_t kRecvChunk = 64;
  static constexpr size_t kSendChunk = 64;
  // Receive layout, per message of a recvmmsg() call: a dense 2 KiB slot, then a private overflow
  // area that takes the rest of a datagram up to 64 KiB (see udp_mux.cc).
  static constexpr size_t kSlotBytes = 2048;
  static constexpr size_t kOverflowBytes = 65536 - kSlotBytes;

 private:
  // The libuv side: the poll handle on the epoll descriptor, and a timer that resumes polling after
  // an error pause. Heap-allocated and owned by the handles, not by the mux: uv_close() completes
  // only on a later loop turn, and the epoll descriptor may be closed only then (it is polled).
  struct Handles {
    uv_poll_t poll;
    uv_timer_t resume;
    int epfd = -1;
    int open = 0;              // handles not closed yet
    UdpMux* owner = nullptr;   // null once the mux is shut down
    // Set when Node's teardown waits for these handles to close (see OnEnvTeardown).
    napi_async_cleanup_hook_handle teardown = nullptr;
  };

  struct Slot {
    int fd = -1;
    uint32_t serial = 0;  // 0 while the id is free; tells a reused id from its previous socket
    uint16_t port = 0;    // local port
  };
  enum class Caller { kJs, kFinalizer, kEnvTeardown };

  // Own an fd, so that a constructor that throws leaks none.
  class OwnedFd {
   public:
    OwnedFd() = default;
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    ~OwnedFd() { Reset(); }
    int get() const { return fd_; }
    int release() {
      int fd = fd_;
      fd_ = -1;
      return fd;
    }
    void Reset(int fd = -1);

   private:
    int fd_ = -1;
  };
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };

  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value LocalPort(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  void CloseSocket(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info);

  int NewSocket(Napi::Env env, const std::string& where) const;
  uint32_t AddSocket(Napi::Env env, OwnedFd& fd, const std::string& where);
  uint32_t SendRun(int fd, size_t n);
  void RecordError(const std::string& text) { lastError_ = text; }
  void Shutdown(Caller caller, napi_async_cleanup_hook_handle teardown = nullptr);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle handle, void* arg);
  static void CloseHandles(Handles* h);
  static void OnHandleClosed(uv_handle_t* handle);

  // Receiving, on the JS thread from the loop. Drain and Flush return false when JS stopped the mux
  // during onBatch (the mux may be gone then): the caller must return without touching `this`.
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnResume(uv_timer_t* timer);
  void OnReadable(Handles* h, int status);
  void Pause(Handles* h);
  bool DrainSocket(Handles* h, uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors);
  bool Flush(Handles* h);
  void AcquireBuffers();

  uint32_t maxBatch_ = 256;
  int rcvBuf_ = 4 << 20;
  int sndBuf_ = 4 << 20;

  // Socket table. Everything runs on the JS thread, but onBatch may change the table while a
  // receive round is under way: the round looks slots up by id and checks the serial again after
  // every call into JS, never holding a reference across one.
  std::vector<Slot> slots_;
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<uint32_t>> freeIds_;  // lowest first
  uint32_t nextSerial_ = 1;
  uint32_t open_ = 0;

  Handles* handles_ = nullptr;
  int epfd_ = -1;  // borrowed from handles_; -1 once stopped
  napi_async_cleanup_hook_handle teardownHook_ = nullptr;
  napi_async_context asyncContext_ = nullptr;
  Napi::FunctionReference onBatch_;

  // The batch: one Buffer and one Uint32Array, reused by every call. arrays_ points at them
  // and are checked again after every call (JS could have detached them).
  BatchArrays arrays_;
  size_t dataCapacity_ = 0;
  size_t used_ = 0;     // bytes of arrays_.data filled
  uint32_t count_ = 0;  // datagrams in the batch

  // Native receive buffers, allocated once.
  std::unique_ptr<uint8_t[]> recvSlots_;
  std::unique_ptr<uint8_t, Unmap> recvOverflow_{nullptr, Unmap{0}};
  std::array<mmsghdr, kRecvChunk> recvMsgs_{};
  std::array<iovec, 2 * kRecvChunk> recvIov_{};
  std::array<sockaddr_in, kRecvChunk> recvSrc_{};
  int errorRounds_ = 0;

  // Send state, allocated once.
  std::array<mmsghdr, kSendChunk> sendMsgs_{};
  std::array<iovec, kSendChunk> sendIov_{};
  std::array<sockaddr_in, kSendChunk> sendDst_{};

  bool stopped_ = false;
  bool selfRef_ = false;
  uint64_t received_ = 0;
  uint64_t batches_ = 0;
  uint64_t sent_ = 0;
  uint64_t sendErrors_ = 0;
  uint64_t recvErrors_ = 0;
  std::string lastError_;
};

}  // namespace rsock
