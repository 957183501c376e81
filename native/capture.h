// Packet capture driven by the JS thread's libuv loop, delivering IPv4 and IPv6 packets to JS in batches.
//
// A plain AF_PACKET socket (capture_socket.h), not libpcap's TPACKET ring: the kernel runs the classic
// BPF filter (compiled by libpcap, attached with SO_ATTACH_FILTER) and queues only what passes, and
// the poll callback reads the queue straight into the batch buffer with recvmmsg, many packets per
// call, no ring-frame bookkeeping per packet. No thread: the LoopHandle polls the socket; when it is
// readable the callback drains it and calls onBatch synchronously. The batch Buffer and meta
// Uint32Array are allocated once and handed to every call; they are valid only during the call.
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "batch_arrays.h"
#include "link_layer.h"
#include "loop_handle.h"

namespace rsock {

class Capture : public Napi::ObjectWrap<Capture>, private LoopClient {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void Shutdown(Caller caller);
  void SaveStats();

  // capture_drain.cc: the poll callback's side, on the JS thread.
  void OnLoopPoll(int status) override;
  void OnLoopTimer() override;
  void OnLoopEnvTeardown() override { Shutdown(Caller::kEnvTeardown); }
  enum class DrainResult { kEmpty, kBudget, kError, kGone };
  DrainResult Drain(uint32_t maxFlushes, std::string* error);
  void Take(uint32_t n, size_t base);
  bool DeviceDown(std::string* error);
  // Flush, Fail and RefreshBuffers return false (Drain: kGone) when the caller must stop and return
  // without touching `this`: JS may have closed, even destroyed, the capture during a callback.
  bool Flush();
  bool Fail(const std::string& message);
  void AcquireBuffers();
  bool RefreshBuffers();

  LoopHandle loop_;  // owns the socket: it is closed once the descriptor is unpolled
  int fd_ = -1;      // borrowed from loop_; -1 once closed
  LinkKind link_ = LinkKind::kCooked;
  int ifindex_ = 0;
  uint32_t maxBatch_ = 256;
  uint32_t snapshot_ = 0;  // upper bound of one packet's bytes
  std::string device_;
  std::vector<mmsghdr> msgs_;  // one recvmmsg's worth, each with one iovec into the batch buffer
  std::vector<iovec> iovs_;
  uint8_t* iovBase_ = nullptr;  // where iovs_[0] points; the first iovReady_ entries follow it
  uint32_t iovReady_ = 0;

  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;

  BatchArrays arrays_;
  size_t dataCapacity_ = 0;
  size_t used_ = 0;      // bytes of arrays_.data filled
  uint32_t count_ = 0;   // packets in the batch

  bool closed_ = false;
  bool selfRef_ = false;

  uint32_t errorWakeups_ = 0;
  uint64_t lastErrorWakeup_ = 0;
  bool watchingDevice_ = false;  // the device went down: the timer checks whether it comes back or goes

  uint64_t skipped_ = 0;
  uint64_t delivered_ = 0;
  uint64_t batches_ = 0;
  uint64_t dropped_ = 0;
  uint64_t deviceDropsAtOpen_ = 0;
  uint64_t deviceDrops_ = 0;
};

}  // namespace rsock
