#include "capture.h"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "args.h"
#include "link_layer.h"

namespace rsock {

namespace {

// Batches queued for the JS thread before the worker blocks; beyond this the kernel ring absorbs
// bursts and counts its own drops.
constexpr size_t kQueueDepth = 16;
constexpr size_t kInitialStageBytes = 256 * 1024;
// A burst of GRO-merged giants can grow the staging area to maxBatch * snaplen; give that back
// once batches are ordinary again.
constexpr size_t kStageKeepBytes = 4 * 1024 * 1024;

std::string ActivateError(const std::string& device, int rc, const char* detail) {
  std::string where = "capture on \"" + device + "\": ";
  std::string extra = (detail && *detail) ? std::string(" (") + detail + ")" : "";
  switch (rc) {
    case PCAP_ERROR_NO_SUCH_DEVICE:
      return where + "no such device" + extra;
    case PCAP_ERROR_PERM_DENIED:
      return where + "permission denied: packet capture needs CAP_NET_RAW (run as root or grant the capability)" +
             extra;
    case PCAP_ERROR_IFACE_NOT_UP:
      return where + "interface is not up" + extra;
    default:
      return where + pcap_statustostr(rc) + extra;
  }
}

uint32_t OptUint(const Napi::Object& opts, const char* key, const char* what, uint32_t def, uint32_t min,
                 uint32_t max) {
  Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? def : ArgUint(v, what, min, max);
}

}  // namespace

// One batch on its way to JS, or the worker's dying words when `error` is set. A single block
// holds the packets, then the (offset, length) pairs at a 4-byte aligned offset.
struct CaptureItem {
  uint8_t* block = nullptr;
  size_t dataLength = 0;
  uint32_t count = 0;
  std::string error;

  CaptureItem() = default;
  CaptureItem(const CaptureItem&) = delete;
  CaptureItem& operator=(const CaptureItem&) = delete;
  ~CaptureItem() { std::free(block); }

  static size_t MetaOffset(size_t dataLength) { return (dataLength + 3) & ~size_t{3}; }
  const uint32_t* meta() const { return reinterpret_cast<const uint32_t*>(block + MetaOffset(dataLength)); }
};

void Capture::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Capture",
                                    {
                                        InstanceMethod<&Capture::Stats>("stats"),
                                        InstanceMethod<&Capture::Close>("close"),
                                    });
  exports.Set("Capture", ctor);
}

Capture::Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) ThrowTypeError(env, "Capture must be called with new");
  if (info.Length() < 1 || !info[0].IsObject()) ThrowTypeError(env, "Capture: opts must be an object");
  Napi::Object opts = info[0].As<Napi::Object>();
  device_ = ArgString(opts.Get("device"), "Capture: opts.device");
  if (device_.empty()) ThrowTypeError(env, "Capture: opts.device must not be empty");
  std::string filter = ArgString(opts.Get("filter"), "Capture: opts.filter");
  uint32_t snaplen = OptUint(opts, "snaplen", "Capture: opts.snaplen", 65535, 64, 262144);
  // In immediate mode (TPACKET_V2) every ring slot holds a full snaplen: 65535 bytes take a 128 KiB
  // slot, so 8 MiB would hold only 64 packets; 32 MiB holds 256.
  uint32_t bufferBytes = OptUint(opts, "bufferBytes", "Capture: opts.bufferBytes", 32u << 20, 64u << 10, 1u << 30);
  maxBatch_ = OptUint(opts, "maxBatch", "Capture: opts.maxBatch", 256, 1, 65536);
  Napi::Value inboundV = opts.Get("inboundOnly");
  bool inboundOnly = inboundV.IsUndefined() ? true : ArgBool(inboundV, "Capture: opts.inboundOnly");
  Napi::Function onBatch = ArgFunction(info[1], "Capture: onBatch");
  Napi::Function onError = ArgFunction(info[2], "Capture: onError");

  char errbuf[PCAP_ERRBUF_SIZE] = "";
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> p(pcap_create(device_.c_str(), errbuf), pcap_close);
  std::string where = "capture on \"" + device_ + "\": ";
  if (!p) ThrowError(env, where + errbuf);
  pcap_set_snaplen(p.get(), static_cast<int>(snaplen));
  pcap_set_promisc(p.get(), 0);
  // Without immediate mode TPACKET_V3 holds packets for tens of milliseconds.
  pcap_set_immediate_mode(p.get(), 1);
  pcap_set_buffer_size(p.get(), static_cast<int>(bufferBytes));
  int rc = pcap_activate(p.get());
  if (rc < 0) ThrowError(env, ActivateError(device_, rc, pcap_geterr(p.get())));
  if (inboundOnly && pcap_setdirection(p.get(), PCAP_D_IN) != 0) {
    ThrowError(env, where + "cannot capture inbound only: " + pcap_geterr(p.get()));
  }
  bpf_program prog{};
  if (pcap_compile(p.get(), &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    ThrowError(env, "bad capture filter \"" + filter + "\": " + pcap_geterr(p.get()));
  }
  // libpcap filters the frames already in the ring in userland, so nothing unfiltered leaks out.
  rc = pcap_setfilter(p.get(), &prog);
  pcap_freecode(&prog);
  if (rc != 0) ThrowError(env, where + "cannot set filter: " + pcap_geterr(p.get()));
  if (pcap_setnonblock(p.get(), 1, errbuf) != 0) ThrowError(env, where + "cannot set non-blocking: " + errbuf);
  pcapFd_ = pcap_get_selectable_fd(p.get());
  if (pcapFd_ < 0) ThrowError(env, where + "no selectable descriptor");
  linkType_ = pcap_datalink(p.get());
  if (!SupportedLinkType(linkType_)) {
    const char* name = pcap_datalink_val_to_name(linkType_);
    ThrowError(env, where + "unsupported link type " + (name ? name : std::to_string(linkType_)));
  }
  if (int err = wake_.Open()) ThrowError(env, where + "pipe: " + ErrnoText(err));

  stageData_.reserve(kInitialStageBytes);
  stageMeta_.reserve(2 * static_cast<size_t>(maxBatch_));
  onError_ = Napi::Persistent(onError);
  tsfn_ = Tsfn::New(env, onBatch, "rsock.Capture", kQueueDepth, 1, this);
  // Added after the TSFN so that it runs first at teardown (hooks run in reverse order) and stops
  // the worker while the TSFN still exists.
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanupHook_ = true;
  // An open capture delivers data like a socket does; it must not be collected while open.
  Ref();
  selfRef_ = true;
  pcap_ = p.release();
  try {
    thread_ = std::thread(&Capture::Run, this);
  } catch (const std::exception& e) {
    Shutdown(Caller::kJs);
    ThrowError(env, where + "cannot start thread: " + e.what());
  }
}

Capture::~Capture() { Shutdown(Caller::kFinalizer); }

void Capture::OnEnvCleanup(void* arg) {
  auto* self = static_cast<Capture*>(arg);
  self->cleanupHook_ = false;
  self->Shutdown(Caller::kEnvTeardown);
}

void Capture::Shutdown(Caller caller) {
  if (closed_) return;
  closed_ = true;
  stopping_ = true;
  wake_.Notify();
  // Abort (not Release) unblocks a worker waiting for queue space even when the JS thread, which
  // would drain the queue, is the one sitting here in close(). Queued batches are freed unseen.
  tsfn_.Abort();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(pcapMu_);
    if (pcap_) {
      pcap_stat ps{};
      if (pcap_stats(pcap_, &ps) == 0) lastStats_ = ps;
      pcap_close(pcap_);
      pcap_ = nullptr;
    }
  }
  wake_.Close();
  if (caller == Caller::kEnvTeardown) return;
  onError_.Reset();
  if (cleanupHook_) {
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    cleanupHook_ = false;
  }
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void Capture::Close(const Napi::CallbackInfo&) { Shutdown(Caller::kJs); }

Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closed_) {
    std::lock_guard<std::mutex> lock(pcapMu_);
    pcap_stat ps{};
    if (pcap_stats(pcap_, &ps) == 0) lastStats_ = ps;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("delivered", Napi::Number::New(env, static_cast<double>(delivered_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("dropped", Napi::Number::New(env, lastStats_.ps_drop));
  o.Set("ifDropped", Napi::Number::New(env, lastStats_.ps_ifdrop));
  o.Set("skipped", Napi::Number::New(env, static_cast<double>(skipped_.load())));
  return o;
}

// ---- JS thread: delivery ----

void CaptureCallJs(Napi::Env env, Napi::Function onBatch, Capture* self, CaptureItem* item) {
  std::unique_ptr<CaptureItem> owned(item);
  // env is null when the TSFN is torn down with items still queued: just free them.
  if (env == nullptr || self == nullptr || item == nullptr) return;
  try {
    if (!item->error.empty()) {
      self->DeliverError(env, item->error);
    } else {
      self->DeliverBatch(env, onBatch, item);
    }
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

void Capture::DeliverBatch(Napi::Env env, Napi::Function onBatch, CaptureItem* item) {
  const size_t length = item->dataLength;
  const uint32_t count = item->count;
  // Meta first: NewOrCopy frees the block at once when it has to copy.
  Napi::ArrayBuffer metaBuf = Napi::ArrayBuffer::New(env, count * 2 * sizeof(uint32_t));
  std::memcpy(metaBuf.Data(), item->meta(), count * 2 * sizeof(uint32_t));
  Napi::Uint32Array meta = Napi::Uint32Array::New(env, count * 2, metaBuf, 0);

  uint8_t* block = item->block;
  item->block = nullptr;
  // V8 does not see external memory on its own; without this, GC lags behind a fast capture.
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length));
  auto release = [length](Napi::Env e, uint8_t* p) {
    std::free(p);
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(length));
  };
  Napi::Buffer<uint8_t> buf;
  try {
    buf = Napi::Buffer<uint8_t>::NewOrCopy(env, block, length, release);
  } catch (...) {
    std::free(block);
    Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(length));
    throw;
  }
  ++batches_;
  delivered_ += count;
  onBatch.Call({buf, meta, Napi::Number::New(env, count)});
}

void Capture::DeliverError(Napi::Env env, const std::string& message) {
  // The worker has exited; a dead capture must not keep the process alive waiting for close().
  if (tsfnRefd_) {
    tsfn_.Unref(env);
    tsfnRefd_ = false;
  }
  if (!onError_.IsEmpty()) onError_.Call({Napi::Error::New(env, message).Value()});
}

// ---- worker thread ----

void Capture::Run() {
  std::string error;
  try {
    Loop(&error);
  } catch (const std::exception& e) {
    error = "capture on \"" + device_ + "\": " + e.what();
  }
  if (!error.empty() && !stopping_) {
    auto* item = new (std::nothrow) CaptureItem();
    if (!item) return;
    item->error = error;
    if (tsfn_.BlockingCall(item) != napi_ok) delete item;
  }
}

void Capture::Loop(std::string* errorOut) {
  std::string& error = *errorOut;
  pollfd fds[2] = {{pcapFd_, POLLIN, 0}, {wake_.ReadFd(), POLLIN, 0}};
  while (!stopping_.load(std::memory_order_relaxed)) {
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "capture on \"" + device_ + "\": poll: " + ErrnoText(errno);
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents & POLLNVAL) {
      error = "capture on \"" + device_ + "\": capture socket is no longer valid";
      break;
    }
    // POLLERR/POLLHUP fall through: pcap_dispatch turns them into an error with the reason.
    if (fds[0].revents && !Drain(&error)) break;
  }
}

// Reads everything the ring holds, flushing every maxBatch packets and once more when the ring is
// empty: a partial batch is never held back waiting for company. False means stop.
bool Capture::Drain(std::string* error) {
  for (;;) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    const uint32_t have = static_cast<uint32_t>(stageMeta_.size() / 2);
    const int want = static_cast<int>(maxBatch_ - have);
    int n;
    {
      std::lock_guard<std::mutex> lock(pcapMu_);
      n = pcap_dispatch(pcap_, want, OnPacket, reinterpret_cast<u_char*>(this));
      if (n < 0 && n != PCAP_ERROR_BREAK) *error = "capture on \"" + device_ + "\": " + pcap_geterr(pcap_);
    }
    if (n < 0) return false;
    const bool full = stageMeta_.size() / 2 >= maxBatch_;
    if (full || n < want) {
      if (!stageMeta_.empty() && !Flush()) return false;
      if (!full) return true;
    }
  }
}

bool Capture::Flush() {
  auto item = std::make_unique<CaptureItem>();
  item->dataLength = stageData_.size();
  item->count = static_cast<uint32_t>(stageMeta_.size() / 2);
  const size_t metaOffset = CaptureItem::MetaOffset(item->dataLength);
  const size_t metaBytes = stageMeta_.size() * sizeof(uint32_t);
  item->block = static_cast<uint8_t*>(std::malloc(metaOffset + metaBytes));
  if (item->block) {
    std::memcpy(item->block, stageData_.data(), item->dataLength);
    std::memcpy(item->block + metaOffset, stageMeta_.data(), metaBytes);
  } else {
    skipped_.fetch_add(item->count, std::memory_order_relaxed);  // out of memory: the batch is lost
  }
  const bool giant = stageData_.capacity() > kStageKeepBytes && stageData_.size() < kStageKeepBytes / 4;
  stageData_.clear();
  stageMeta_.clear();
  if (giant) {
    std::vector<uint8_t>().swap(stageData_);
    stageData_.reserve(kInitialStageBytes);
  }
  if (!item->block) return true;
  if (tsfn_.BlockingCall(item.get()) != napi_ok) return false;  // closing
  item.release();
  return true;
}

void Capture::OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* self = reinterpret_cast<Capture*>(user);
  int off = Ipv4Offset(self->linkType_, bytes, h->caplen);
  if (off < 0) {
    self->skipped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint8_t* ip = bytes + off;
  const uint32_t avail = h->caplen - static_cast<uint32_t>(off);
  const uint32_t totalLength = (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
  // Trims link-layer padding of short frames. A packet cut short by snaplen (a GRO-merged giant) is
  // delivered as captured: its total length, larger than what arrives, tells the protocol how much
  // it lost. A total length of 0 (BIG TCP) also keeps everything captured.
  const uint32_t len = (totalLength >= 20 && totalLength <= avail) ? totalLength : avail;
  auto& data = self->stageData_;
  auto& meta = self->stageMeta_;
  const size_t metaSize = meta.size();
  // Called from inside libpcap: nothing may unwind through it.
  try {
    meta.push_back(static_cast<uint32_t>(data.size()));
    meta.push_back(len);
    data.insert(data.end(), ip, ip + len);
  } catch (const std::bad_alloc&) {
    meta.resize(metaSize);
    self->skipped_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace rsock
