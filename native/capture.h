// libpcap capture driven by the JS thread's libuv loop, delivering IPv4 packets to JS in batches.
//
// No thread and no thread-safe function: a uv_poll_t watches pcap's selectable descriptor; when the
// TPACKET ring has frames, the poll callback (on the JS thread) drains it with pcap_dispatch and
// calls onBatch synchronously. The batch Buffer and meta Uint32Array are allocated once and handed
// to every call; they are valid only during the call.
#pragma once

#include <napi.h>

#include "batch_arrays.h"
#include <pcap/pcap.h>
#include <uv.h>

#include <cstdint>
#include <string>

namespace rsock {

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  // Owns the uv handle and the pcap handle. It outlives the Capture when needed: uv_close() only
  // completes on a later loop turn, and pcap_close() must wait for that (the descriptor is polled).
  struct PollHandle {
    uv_poll_t poll;
    pcap_t* pcap = nullptr;
    Capture* owner = nullptr;  // null once the capture is shut down
  };

  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  enum class Caller { kJs, kFinalizer, kEnvTeardown };
  void Shutdown(Caller caller);
  void StopPolling();
  static void OnEnvCleanup(void* arg);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnHandleClosed(uv_handle_t* handle);
  void OnReadable(PollHandle* holder, int status);
  enum class DrainResult { kEmpty, kBudget, kError, kGone };
  DrainResult Drain(PollHandle* holder, uint32_t maxFlushes, std::string* error);
  // Flush, Fail and RefreshBuffers return false (Drain: kGone) when the caller must stop and return
  // without touching `this`: JS may have closed, even destroyed, the capture during a callback.
  bool Flush(PollHandle* holder);
  bool Fail(PollHandle* holder, const std::string& message);
  bool AcquireBuffers();
  bool RefreshBuffers(PollHandle* holder);
  static void OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes);

  PollHandle* handle_ = nullptr;
  pcap_t* pcap_ = nullptr;  // borrowed from handle_; null once closed
  int linkType_ = 0;
  uint32_t maxBatch_ = 256;
  uint32_t snapshot_ = 0;  // upper bound of one packet's bytes
  std::string device_;

  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;
  napi_async_context asyncContext_ = nullptr;

  // The batch: one Buffer and one Uint32Array, reused by every call. arrays_ points at them and
  // are refreshed after every call into JS, which could have detached (transferred) their memory.
  BatchArrays arrays_;
  size_t dataCapacity_ = 0;
  size_t used_ = 0;      // bytes of arrays_.data filled
  uint32_t count_ = 0;   // packets in the batch

  bool closed_ = false;
  bool polling_ = false;
  bool selfRef_ = false;
  bool cleanupHook_ = false;

  uint32_t errorWakeups_ = 0;
  uint64_t lastErrorWakeup_ = 0;

  uint64_t skipped_ = 0;
  uint64_t delivered_ = 0;
  uint64_t batches_ = 0;
  pcap_stat lastStats_{};
};

}  // namespace rsock
