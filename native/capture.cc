#include "capture.h"

#include <unistd.h>

#include <algorithm>

#include "args.h"
#include "capture_socket.h"
#include "records.h"

namespace rsock {

namespace {

// The batch buffer holds maxBatch packets of snaplen bytes, but no more than this: with a large
// snaplen (65535 by default) the drain loop asks for fewer packets per recvmmsg instead.
constexpr size_t kMaxBatchBytes = 1u << 20;
// recvmmsg takes at most UIO_MAXIOV messages per call.
constexpr uint32_t kMaxVlen = 1024;

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
  // The socket's receive buffer: a cap on what may wait in the kernel, not memory taken up front.
  uint32_t bufferBytes = ArgOptUint(opts, "bufferBytes", "Capture: opts.bufferBytes", 32u << 20, 64u << 10, 1u << 30);
  maxBatch_ = ArgOptUint(opts, "maxBatch", "Capture: opts.maxBatch", 256, 1, 65536);
  Napi::Value inboundV = opts.Get("inboundOnly");
  bool inboundOnly = inboundV.IsUndefined() ? true : ArgBool(inboundV, "Capture: opts.inboundOnly");
  const uint32_t busyPollUs = ArgOptUint(opts, "busyPollUs", "Capture: opts.busyPollUs", 0, 0, kMaxBusyPollUs);
  Napi::Function onBatch = ArgFunction(info[1], "Capture: onBatch");
  Napi::Function onError = ArgFunction(info[2], "Capture: onError");

  CaptureSocketSpec spec;
  spec.device = device_;
  spec.filter = filter;
  spec.snaplen = snaplen;
  spec.bufferBytes = bufferBytes;
  spec.inboundOnly = inboundOnly;
  CaptureSocket sock;
  std::string error;
  if (!OpenCaptureSocket(spec, &sock, &error)) ThrowError(env, error);
  const std::string where = "capture on \"" + device_ + "\": ";
  link_ = sock.link;
  ifindex_ = sock.ifindex;
  // The filter trims every packet to snaplen, and so does the iovec it is read into.
  snapshot_ = snaplen;
  dataCapacity_ = std::max<size_t>(snapshot_, std::min<size_t>(size_t{maxBatch_} * snapshot_, kMaxBatchBytes));
  msgs_.resize(std::min(maxBatch_, kMaxVlen));
  iovs_.resize(msgs_.size());
  for (size_t i = 0; i < msgs_.size(); ++i) {
    iovs_[i].iov_len = snapshot_;
    msgs_[i].msg_hdr = msghdr{};
    msgs_[i].msg_hdr.msg_iov = &iovs_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
  }
  deviceDropsAtOpen_ = DeviceRxDrops(device_);

  AcquireBuffers();
  onBatch_ = Napi::Persistent(onBatch);
  onError_ = Napi::Persistent(onError);
  const int fd = sock.fd.release();
  loop_.Open(env, Value(), "rsock.Capture", this, fd, [fd] { close(fd); }, where);  // closes it on a throw
  fd_ = fd;
  loop_.SetBusyPoll(busyPollUs);
  const int rc = loop_.StartPolling();
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
  if (fd_ < 0) return;
  dropped_ += TakeKernelDrops(fd_);  // the kernel's counter resets when read
  const uint64_t now = DeviceRxDrops(device_);
  deviceDrops_ = now >= deviceDropsAtOpen_ ? now - deviceDropsAtOpen_ : 0;
}

void Capture::Shutdown(Caller caller) {
  if (closed_) return;
  closed_ = true;
  SaveStats();
  loop_.Close(caller);
  fd_ = -1;
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
  o.Set("dropped", Napi::Number::New(env, static_cast<double>(dropped_)));
  o.Set("ifDropped", Napi::Number::New(env, static_cast<double>(deviceDrops_)));
  o.Set("skipped", Napi::Number::New(env, static_cast<double>(skipped_)));
  return o;
}

void Capture::AcquireBuffers() {
  arrays_.Acquire(Env(), dataCapacity_, capture_rec::kStride * static_cast<size_t>(maxBatch_));
}

}  // namespace rsock
