#include "capture.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "args.h"
#include "link_layer.h"

namespace rsock {

namespace {

// The batch buffer holds maxBatch packets of snaplen bytes, but no more than this: with a large
// snaplen (65535 by default) the drain loop asks libpcap for fewer packets per call instead.
constexpr size_t kMaxBatchBytes = 1u << 20;
// Full batches delivered per wake-up before the loop gets a turn: the capture runs on the JS
// thread, and a ring that never empties must not starve timers and sockets. The descriptor stays
// readable (libuv polls level-triggered), so the next loop iteration comes straight back.
constexpr uint32_t kFlushesPerWake = 4;

// Error wake-ups (POLLERR) that libpcap shrugs off are normal when the interface goes down; this
// many in a row, each within kErrorSpinMs of the last, mean the error does not clear: give up.
constexpr uint32_t kErrorSpinLimit = 10;
constexpr uint64_t kErrorSpinMs = 100;

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

// Calls fn(args) from a libuv callback: napi_make_callback opens a callback scope, so that
// process.nextTick callbacks and microtasks queued by fn run when it returns, as after any Node I/O
// callback. An exception thrown by fn goes to 'uncaughtException'.
void CallFromLoop(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, size_t argc,
                  const napi_value* argv) {
  napi_value result;
  if (napi_make_callback(env, ctx, recv, fn, argc, argv, &result) == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value error;
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
}

}  // namespace

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
  const int fd = pcap_get_selectable_fd(p.get());
  if (fd < 0) ThrowError(env, where + "no selectable descriptor");
  linkType_ = pcap_datalink(p.get());
  if (!SupportedLinkType(linkType_)) {
    const char* name = pcap_datalink_val_to_name(linkType_);
    ThrowError(env, where + "unsupported link type " + (name ? name : std::to_string(linkType_)));
  }
  // libpcap trims every packet to the snapshot length; a packet's IPv4 part is never longer.
  const int snapshot = pcap_snapshot(p.get());
  snapshot_ = snapshot > 0 ? static_cast<uint32_t>(snapshot) : snaplen;
  dataCapacity_ = std::max<size_t>(snapshot_, std::min<size_t>(size_t{maxBatch_} * snapshot_, kMaxBatchBytes));

  AcquireBuffers();
  onBatch_ = Napi::Persistent(onBatch);
  onError_ = Napi::Persistent(onError);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowError(env, where + "no event loop");
  if (napi_async_init(env, Value(), Napi::String::New(env, "rsock.Capture"), &asyncContext_) != napi_ok) {
    asyncContext_ = nullptr;
    ThrowError(env, where + "cannot create async context");
  }

  // Nothing below throws until the handle is started (or closed again on failure).
  auto* holder = new PollHandle();
  rc = uv_poll_init(loop, &holder->poll, fd);
  if (rc != 0) {
    delete holder;
    napi_async_destroy(env, asyncContext_);
    asyncContext_ = nullptr;
    ThrowError(env, where + "cannot poll the capture descriptor: " + uv_strerror(rc));
  }
  holder->poll.data = holder;
  holder->pcap = p.release();
  holder->owner = this;
  handle_ = holder;
  pcap_ = holder->pcap;
  rc = uv_poll_start(&holder->poll, UV_READABLE, OnPoll);
  if (rc != 0) {
    Shutdown(Caller::kFinalizer);  // closes the handle (pcap with it); no Unref: not Ref'd yet
    ThrowError(env, where + "cannot poll the capture descriptor: " + uv_strerror(rc));
  }
  polling_ = true;
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanupHook_ = true;
  // An open capture delivers data like a socket does; it must not be collected while open. The
  // active poll handle keeps the event loop alive the same way.
  Ref();
  selfRef_ = true;
}

Capture::~Capture() { Shutdown(Caller::kFinalizer); }

void Capture::OnEnvCleanup(void* arg) {
  auto* self = static_cast<Capture*>(arg);
  self->cleanupHook_ = false;
  self->Shutdown(Caller::kEnvTeardown);
}

void Capture::StopPolling() {
  if (!polling_) return;
  polling_ = false;
  if (handle_) uv_poll_stop(&handle_->poll);
}

void Capture::OnHandleClosed(uv_handle_t* handle) {
  auto* holder = static_cast<PollHandle*>(handle->data);
  // Only now is the descriptor out of the loop's hands.
  if (holder->pcap) pcap_close(holder->pcap);
  delete holder;
}

void Capture::Shutdown(Caller caller) {
  if (closed_) return;
  closed_ = true;
  if (handle_) {
    if (pcap_) {
      pcap_stat ps{};
      if (pcap_stats(pcap_, &ps) == 0) lastStats_ = ps;
    }
    StopPolling();
    // A poll callback further up the stack (close() called from onBatch) sees owner == null and
    // returns without touching this object again.
    handle_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), OnHandleClosed);
    handle_ = nullptr;
    pcap_ = nullptr;
  }
  if (caller == Caller::kEnvTeardown) return;
  if (asyncContext_) {
    napi_async_destroy(Env(), asyncContext_);
    asyncContext_ = nullptr;
  }
  onBatch_.Reset();
  onError_.Reset();
  arrays_.Reset();
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
  if (pcap_) {
    pcap_stat ps{};
    if (pcap_stats(pcap_, &ps) == 0) lastStats_ = ps;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("delivered", Napi::Number::New(env, static_cast<double>(delivered_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("dropped", Napi::Number::New(env, lastStats_.ps_drop));
  o.Set("ifDropped", Napi::Number::New(env, lastStats_.ps_ifdrop));
  o.Set("skipped", Napi::Number::New(env, static_cast<double>(skipped_)));
  return o;
}

// ---- the batch buffers ----

bool Capture::AcquireBuffers() {
  arrays_.Acquire(Env(), dataCapacity_, 2 * static_cast<size_t>(maxBatch_));
  return true;
}

// ---- the poll callback: runs on the JS thread ----

void Capture::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* holder = static_cast<PollHandle*>(handle->data);
  Capture* self = holder->owner;
  if (self == nullptr) return;
  Napi::Env env = self->Env();
  // Nothing may unwind into libuv. Past OnReadable, `self` may be gone: use only env.
  try {
    Napi::HandleScope scope(env);
    self->OnReadable(holder, status);
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

void Capture::OnReadable(PollHandle* holder, int status) {
  // Every wake-up: JS may have detached the arrays since the last batch; never write through a stale pointer.
  if (!RefreshBuffers(holder)) return;
  std::string error;
  if (status >= 0) {
    if (Drain(holder, kFlushesPerWake, &error) == DrainResult::kError) Fail(holder, error);
    return;
  }
  // libuv reports POLLERR as UV_EBADF and has already stopped the handle. libpcap knows the reason
  // (interface down or gone): deliver what the ring still holds, then ask it. It answers when it
  // finds the ring empty, so a second round is needed when the first one found packets.
  for (int round = 0; round < 2; round++) {
    DrainResult r = Drain(holder, UINT32_MAX, &error);
    if (r == DrainResult::kGone) return;
    if (r == DrainResult::kError) break;
  }
  if (error.empty()) {
    // libpcap took the socket error and carries on: an interface that went down may come up again
    // and the ring stays bound to it (the old worker thread survived that too). Poll again, unless
    // errors keep coming straight back.
    const uint64_t now = uv_now(holder->poll.loop);
    errorWakeups_ = now - lastErrorWakeup_ < kErrorSpinMs ? errorWakeups_ + 1 : 1;
    lastErrorWakeup_ = now;
    if (errorWakeups_ < kErrorSpinLimit && uv_poll_start(&holder->poll, UV_READABLE, OnPoll) == 0) return;
    error = "capture on \"" + device_ + "\": poll: " + uv_strerror(status);
  }
  Fail(holder, error);
}

// Reads what the ring holds, delivering every maxBatch packets and once more when the ring is
// empty: a partial batch is never held back waiting for company. Stops after maxFlushes full
// batches (kBudget) so that the rest of the loop gets a turn.
Capture::DrainResult Capture::Drain(PollHandle* holder, uint32_t maxFlushes, std::string* error) {
  uint32_t flushes = 0;
  for (;;) {
    // The batch ends at maxBatch packets, or when the buffer could not take a full snaplen more.
    const size_t room = (dataCapacity_ - used_) / snapshot_;
    const int want = static_cast<int>(std::min<size_t>(maxBatch_ - count_, room));
    if (want == 0) {
      if (!Flush(holder)) return DrainResult::kGone;
      if (++flushes >= maxFlushes) return DrainResult::kBudget;
      continue;
    }
    const int n = pcap_dispatch(pcap_, want, OnPacket, reinterpret_cast<u_char*>(this));
    if (n < 0 && n != PCAP_ERROR_BREAK) {
      // The interface went down or away: deliver what came before the error.
      *error = "capture on \"" + device_ + "\": " + pcap_geterr(pcap_);
      if (count_ > 0 && !Flush(holder)) return DrainResult::kGone;
      return DrainResult::kError;
    }
    if (n < want) {  // the ring is empty
      if (count_ > 0 && !Flush(holder)) return DrainResult::kGone;
      return DrainResult::kEmpty;
    }
  }
}

bool Capture::Flush(PollHandle* holder) {
  napi_env env = Env();
  const uint32_t count = count_;
  count_ = 0;
  used_ = 0;
  ++batches_;
  delivered_ += count;
  {
    Napi::HandleScope scope(env);
    napi_value argv[3] = {arrays_.DataValue(), arrays_.MetaValue(), Napi::Number::New(env, count)};
    CallFromLoop(env, asyncContext_, Value(), onBatch_.Value(), 3, argv);
  }
  if (holder->owner == nullptr) return false;  // closed (perhaps destroyed) by the callback
  return RefreshBuffers(holder);
}

// AcquireBuffers for the poll callback: a failure (out of memory) ends the capture through onError
// rather than leaving a readable descriptor that nothing reads.
bool Capture::RefreshBuffers(PollHandle* holder) {
  std::string error;
  try {
    if (AcquireBuffers()) return true;
  } catch (const std::exception& e) {
    error = e.what();
  }
  Fail(holder, "capture on \"" + device_ + "\": cannot allocate the batch buffer" + (error.empty() ? "" : ": " + error));
  return false;
}

bool Capture::Fail(PollHandle* holder, const std::string& message) {
  // A dead capture stops polling, so it no longer keeps the process alive waiting for close().
  StopPolling();
  napi_env env = Env();
  {
    Napi::HandleScope scope(env);
    napi_value argv[1] = {Napi::Error::New(env, message).Value()};
    CallFromLoop(env, asyncContext_, Value(), onError_.Value(), 1, argv);
  }
  return holder->owner != nullptr;
}

void Capture::OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* self = reinterpret_cast<Capture*>(user);
  int off = Ipv4Offset(self->linkType_, bytes, h->caplen);
  if (off < 0) {
    ++self->skipped_;
    return;
  }
  const uint8_t* ip = bytes + off;
  const uint32_t avail = h->caplen - static_cast<uint32_t>(off);
  const uint32_t totalLength = (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
  // Trims link-layer padding of short frames. A packet cut short by snaplen (a GRO-merged giant) is
  // delivered as captured: its total length, larger than what arrives, tells the protocol how much
  // it lost. A total length of 0 (BIG TCP) also keeps everything captured.
  const uint32_t len = (totalLength >= 20 && totalLength <= avail) ? totalLength : avail;
  // The drain loop asks for no more packets than fit; this only guards against a libpcap that
  // delivered more than the snapshot length.
  if (self->count_ >= self->maxBatch_ || len > self->dataCapacity_ - self->used_) {
    ++self->skipped_;
    return;
  }
  std::memcpy(self->arrays_.data + self->used_, ip, len);
  self->arrays_.meta[2 * self->count_] = static_cast<uint32_t>(self->used_);
  self->arrays_.meta[2 * self->count_ + 1] = len;
  ++self->count_;
  self->used_ += len;
}

}  // namespace rsock
