// Many plain UDP sockets served on the JS thread's own libuv loop. The sockets sit in one epoll
// instance whose descriptor the LoopHandle polls: when any socket is readable, the poll callback reads
// the ready ones with recvmmsg() and calls onBatch synchronously, one call per batch. Sends leave with
// sendmmsg() straight from the JS thread. The data path never changes threads, and crosses N-API once
// per batch each way.
//
// The batch Buffer and meta Uint32Array are allocated once and handed to every call; they are valid
// only during the call.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "batch_arrays.h"
#include "loop_handle.h"
#include "net_util.h"
#include "unique_fd.h"

namespace rsock {

class UdpMux : public Napi::ObjectWrap<UdpMux>, private LoopClient {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit UdpMux(const Napi::CallbackInfo& info);
  ~UdpMux() override;

  // Datagrams per recvmmsg()/sendmmsg() call.
  static constexpr size_t kRecvChunk = 64;
  static constexpr size_t kSendChunk = 64;
  // Receive layout, per message of a recvmmsg() call: a dense 2 KiB slot, then a private overflow
  // area that takes the rest of a datagram up to 64 KiB (see the constructor).
  static constexpr size_t kSlotBytes = 2048;
  static constexpr size_t kOverflowBytes = 65536 - kSlotBytes;
  // Largest UDP payload IPv4 can carry (65535 - 20 - 8).
  static constexpr uint32_t kMaxDatagram = 65507;
  // Datagrams per UDP GSO message (the kernel's UDP_MAX_SEGMENTS has been 64 since 4.18).
  static constexpr size_t kGsoSegments = 64;
  // A segment no route refuses for its size: IPv6's minimum MTU less the IPv6 and UDP headers.
  static constexpr uint32_t kSafeSegment = 1232;

 private:
  struct Slot {
    int fd = -1;
    uint32_t serial = 0;  // 0 while the id is free; tells a reused id from its previous socket
    uint16_t port = 0;    // local port
    bool v6 = false;      // an AF_INET6 socket: IPv4 destinations go to it as ::ffff:a.b.c.d
    uint32_t gsoMax = kMaxDatagram;  // largest datagram sent in a UDP GSO group; 0: none (refused)
  };
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };

  Napi::Value Bind(const Napi::CallbackInfo& info) { return OpenSocket(info, false); }
  Napi::Value Connect(const Napi::CallbackInfo& info) { return OpenSocket(info, true); }
  Napi::Value OpenSocket(const Napi::CallbackInfo& info, bool connected);
  Napi::Value LocalPort(const Napi::CallbackInfo& info);
  void CloseSocket(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Stop(const Napi::CallbackInfo& info) { Shutdown(Caller::kJs); }
  void Shutdown(Caller caller);
  void OnLoopEnvTeardown() override { Shutdown(Caller::kEnvTeardown); }

  int NewSocket(Napi::Env env, int family, const std::string& where) const;
  uint32_t AddSocket(Napi::Env env, UniqueFd& fd, const std::string& where);
  void RecordError(const std::string& text) { lastError_ = text; }

  // udp_mux_send.cc
  Napi::Value Send(const Napi::CallbackInfo& info);
  static size_t GroupLength(const uint32_t* meta, uint32_t first, uint32_t end, uint32_t gsoMax);
  static void SetDestination(msghdr& h, SockAddr& d, const uint32_t* m, bool v6Socket);
  uint32_t SendRun(int fd, uint32_t id, size_t msgs);
  uint32_t SendEach(int fd, size_t msg);

  // udp_mux_recv.cc: on the JS thread from the loop. DrainSocket and Flush return false when JS
  // stopped the mux during onBatch (the mux may be gone then): the caller must return without
  // touching `this`.
  void OnLoopPoll(int status) override;
  void OnLoopTimer() override;
  void Pause();
  int Round(uint32_t* read, uint32_t* errors);
  bool DrainSocket(uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors);
  bool Flush();
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
  uint32_t soleId_ = 0;  // where the only open socket was last found (open_ == 1)

  // Polls the epoll descriptor and owns it; its timer resumes polling after an error pause.
  LoopHandle loop_;
  int epfd_ = -1;  // borrowed from loop_; -1 once stopped
  Napi::FunctionReference onBatch_;

  BatchArrays arrays_;
  size_t dataCapacity_ = 0;
  size_t used_ = 0;     // bytes of arrays_.data filled
  uint32_t count_ = 0;  // datagrams in the batch

  // Native receive buffers, allocated once.
  std::unique_ptr<uint8_t[]> recvSlots_;
  std::unique_ptr<uint8_t, Unmap> recvOverflow_{nullptr, Unmap{0}};
  std::array<mmsghdr, kRecvChunk> recvMsgs_{};
  std::array<iovec, 2 * kRecvChunk> recvIov_{};
  std::array<SockAddr, kRecvChunk> recvSrc_{};
  int errorRounds_ = 0;

  // Send state, allocated once.
  std::array<mmsghdr, kSendChunk> sendMsgs_{};
  std::array<iovec, kSendChunk> sendIov_{};
  std::array<SockAddr, kSendChunk> sendDst_{};
  struct GsoCmsg {
    alignas(cmsghdr) uint8_t bytes[CMSG_SPACE(sizeof(uint16_t))];
  };
  std::array<GsoCmsg, kSendChunk> sendCmsg_{};
  std::array<mmsghdr, kGsoSegments> splitMsgs_{};  // a refused group, one message per datagram

  bool stopped_ = false;
  bool selfRef_ = false;
  uint64_t received_ = 0;
  uint64_t batches_ = 0;
  uint64_t sent_ = 0;
  uint64_t sendErrors_ = 0;
  uint64_t coalesced_ = 0;   // datagrams sent in UDP GSO groups
  uint64_t gsoRefused_ = 0;  // groups the kernel refused, sent again one by one
  uint64_t recvErrors_ = 0;
  std::string lastError_;
};

}  // namespace rsock
