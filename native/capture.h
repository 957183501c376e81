// libpcap capture on a worker thread, delivering IPv4 packets to JS in batches.
#pragma once

#include <napi.h>
#include <pcap/pcap.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wake_pipe.h"

namespace rsock {

class Capture;
struct CaptureItem;

void CaptureCallJs(Napi::Env env, Napi::Function onBatch, Capture* self, CaptureItem* item);

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  friend void CaptureCallJs(Napi::Env, Napi::Function, Capture*, CaptureItem*);
  using Tsfn = Napi::TypedThreadSafeFunction<Capture, CaptureItem, CaptureCallJs>;

  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  enum class Caller { kJs, kFinalizer, kEnvTeardown };
  void Shutdown(Caller caller);
  static void OnEnvCleanup(void* arg);
  void DeliverBatch(Napi::Env env, Napi::Function onBatch, CaptureItem* item);
  void DeliverError(Napi::Env env, const std::string& message);

  // Worker thread.
  void Run();
  void Loop(std::string* error);
  bool Drain(std::string* error);
  bool Flush();
  static void OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes);

  pcap_t* pcap_ = nullptr;
  std::mutex pcapMu_;  // pcap_t is not thread-safe: serialises pcap_dispatch and pcap_stats
  int pcapFd_ = -1;
  int linkType_ = 0;
  uint32_t maxBatch_ = 256;
  std::string device_;

  WakePipe wake_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  Tsfn tsfn_;
  Napi::FunctionReference onError_;
  // The batch being gathered, owned by the worker thread. It is reused across batches (it stays
  // mapped and hot); each flush copies it into one exactly-sized block that JS then owns.
  std::vector<uint8_t> stageData_;
  std::vector<uint32_t> stageMeta_;  // (offset, length) pairs

  bool closed_ = false;
  bool selfRef_ = false;
  bool cleanupHook_ = false;
  bool tsfnRefd_ = true;

  // Counters: skipped is written by the worker, the others on the JS thread.
  std::atomic<uint64_t> skipped_{0};
  uint64_t delivered_ = 0;
  uint64_t batches_ = 0;
  pcap_stat lastStats_{};
};

}  // namespace rsock
