// libpcap capture driven by the JS thread's libuv loop, delivering IPv4 and IPv6 packets to JS in batches.
//
// No thread: the LoopHandle polls pcap's selectable descriptor; when the TPACKET ring has frames, the
// poll callback drains it with pcap_dispatch and calls onBatch synchronously. The batch Buffer and
// meta Uint32Array are allocated once and handed to every call; they are valid only during the call.
#pragma once

#include <napi.h>
#include <pcap/pcap.h>

#include <cstdint>
#include <string>

#include "batch_arrays.h"
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
  void OnLoopEnvTeardown() override { Shutdown(Caller::kEnvTeardown); }
  enum class DrainResult { kEmpty, kBudget, kError, kGone };
  DrainResult Drain(uint32_t maxFlushes, std::string* error);
  // Flush, Fail and RefreshBuffers return false (Drain: kGone) when the caller must stop and return
  // without touching `this`: JS may have closed, even destroyed, the capture during a callback.
  bool Flush();
  bool Fail(const std::string& message);
  void AcquireBuffers();
  bool RefreshBuffers();
  static void OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes);

  LoopHandle loop_;  // owns the pcap handle: pcap_close() waits until the descriptor is unpolled
  pcap_t* pcap_ = nullptr;  // borrowed from loop_; null once closed
  int linkType_ = 0;
  uint32_t maxBatch_ = 256;
  uint32_t snapshot_ = 0;  // upper bound of one packet's bytes
  std::string device_;

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

  uint64_t skipped_ = 0;
  uint64_t delivered_ = 0;
  uint64_t batches_ = 0;
  pcap_stat lastStats_{};
};

}  // namespace rsock
