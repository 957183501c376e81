// Many plain UDP sockets served by one worker thread. Datagrams come in with recvmmsg() and reach JS
// in batches through one thread-safe function; sends leave with sendmmsg() straight from the JS
// thread. The data path crosses N-API once per batch in each direction, never once per datagram.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "wake_pipe.h"

namespace rsock {

class UdpMux;
struct UdpMuxItem;

void UdpMuxCallJs(Napi::Env env, Napi::Function onBatch, UdpMux* self, UdpMuxItem* item);

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
  friend void UdpMuxCallJs(Napi::Env, Napi::Function, UdpMux*, UdpMuxItem*);
  using Tsfn = Napi::TypedThreadSafeFunction<UdpMux, UdpMuxItem, UdpMuxCallJs>;

  struct Slot {
    int fd = -1;
    uint32_t serial = 0;  // 0 while the id is free; tells a reused id from its previous socket
    uint16_t port = 0;    // local port
  };
  enum class Caller { kJs, kFinalizer, kEnvTeardown };

  // Own an fd and an anonymous mapping, so that a constructor that throws leaks neither.
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
  void RecordError(const std::string& text);
  void Shutdown(Caller caller);
  static void OnEnvCleanup(void* arg);
  void DeliverBatch(Napi::Env env, Napi::Function onBatch, UdpMuxItem* item);

  // Worker thread.
  void Run();
  bool DrainSocket(uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors);
  bool Flush();

  uint32_t maxBatch_ = 256;
  int rcvBuf_ = 4 << 20;
  int sndBuf_ = 4 << 20;

  // Socket table. Only the JS thread changes it, always with mu_ held; the worker reads it only with
  // mu_ held and also holds mu_ across each recvmmsg(), so once close() has returned the worker never
  // touches that fd again, even if the number is reused. The JS thread reads it without the lock.
  std::mutex mu_;
  std::vector<Slot> slots_;
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<uint32_t>> freeIds_;  // lowest first
  uint32_t nextSerial_ = 1;
  uint32_t open_ = 0;

  OwnedFd epoll_;
  WakePipe wake_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  Tsfn tsfn_;

  // Worker-owned receive state, allocated once.
  std::unique_ptr<UdpMuxItem> batch_;
  std::unique_ptr<uint8_t[]> recvSlots_;
  std::unique_ptr<uint8_t, Unmap> recvOverflow_{nullptr, Unmap{0}};
  std::array<mmsghdr, kRecvChunk> recvMsgs_{};
  std::array<iovec, 2 * kRecvChunk> recvIov_{};
  std::array<sockaddr_in, kRecvChunk> recvSrc_{};

  // JS-thread send state, allocated once.
  std::array<mmsghdr, kSendChunk> sendMsgs_{};
  std::array<iovec, kSendChunk> sendIov_{};
  std::array<sockaddr_in, kSendChunk> sendDst_{};

  // JS thread only.
  bool stopped_ = false;
  bool selfRef_ = false;
  bool cleanupHook_ = false;
  uint64_t received_ = 0;
  uint64_t batches_ = 0;
  uint64_t sent_ = 0;
  uint64_t sendErrors_ = 0;

  // Written by the worker.
  std::atomic<uint64_t> recvErrors_{0};
  // Written by both threads.
  std::mutex errMu_;
  std::string lastError_;
};

}  // namespace rsock
