#include "capture.h"

#include <algorithm>
#include <memory>

#include "args.h"
#include "link_layer.h"
#include "records.h"

namespace rsock {

namespace {

// The batch buffer holds maxBatch packets of snaplen bytes, but no more than this: with a large
// snaplen (65535 by default) the drain loop asks libpcap for fewer packets per call instead.
constexpr size_t kMaxBatchBytes = 1u << 20;

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
  uint32_t snaplen = ArgOptUint(opts, "snaplen", "Capture: opts.snaplen", 65535, 64, 262144);
  // In immediate mode (TPACKET_V2) every ring slot holds a full snaplen: 65535 bytes take a 128 KiB
  // slot, so 8 MiB would hold only 64 packets; 32 MiB holds 256.
  uint32_t bufferBytes = ArgOptUint(opts, "bufferBytes", "Capture: opts.bufferBytes", 32u << 20, 64u << 10, 1u << 30);
  maxBatch_ = ArgOptUint(opts, "maxBatch", "Capture: opts.maxBatch", 256, 1, 65536);
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
  // libpcap trims every packet to the snapshot length; a packet's IP part is never longer.
  const int snapshot = pcap_snapshot(p.get());
  snapshot_ = snapshot > 0 ? static_cast<uint32_t>(snapshot) : snaplen;
  dataCapacity_ = std::max<size_t>(snapshot_, std::min<size_t>(size_t{maxBatch_} * snapshot_, kMaxBatchBytes));

  AcquireBuffers();
  onBatch_ = Napi::Persistent(onBatch);
  onError_ = Napi::Persistent(onError);
  pcap_t* pcap = p.release();
  loop_.Open(env, Value(), "rsock.Capture", this, fd, [pcap] { pcap_close(pcap); }, where);  // closes it on a throw
  pcap_ = pcap;
  rc = loop_.StartPolling();
  if (rc != 0) {
    Shutdown(Caller::kFinalizer);  // no Unref: not Ref'd yet
    ThrowError(env, where + "cannot poll the capture descriptor: " + uv_strerror(rc));
  }
  // An open capture delivers data like a socket does: it must not be collected while open, and its
  // active poll handle keeps the event loop alive.
  Ref();
  selfRef_ = true;
}

Capture::~Capture() { Shutdown(Caller::kFinalizer); }

void Capture::SaveStats() {
  pcap_stat ps{};
  if (pcap_ && pcap_stats(pcap_, &ps) == 0) lastStats_ = ps;
}

void Capture::Shutdown(Caller caller) {
  if (closed_) return;
  closed_ = true;
  SaveStats();
  loop_.Close(caller);
  pcap_ = nullptr;
  if (caller == Caller::kEnvTeardown) return;
  onBatch_.Reset();
  onError_.Reset();
  arrays_.Reset();
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void Capture::Close(const Napi::CallbackInfo&) { Shutdown(Caller::kJs); }

Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SaveStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("delivered", Napi::Number::New(env, static_cast<double>(delivered_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("dropped", Napi::Number::New(env, lastStats_.ps_drop));
  o.Set("ifDropped", Napi::Number::New(env, lastStats_.ps_ifdrop));
  o.Set("skipped", Napi::Number::New(env, static_cast<double>(skipped_)));
  return o;
}

void Capture::AcquireBuffers() {
  arrays_.Acquire(Env(), dataCapacity_, capture_rec::kStride * static_cast<size_t>(maxBatch_));
}

}  // namespace rsock
