#include "udp_mux.h"
#include "send_batch.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "args.h"

namespace rsock {

namespace {

// The batch Buffer holds maxBatch datagrams of 2 KiB, within these bounds; a batch also ends when the
// next datagram does not fit. The lower bound keeps room for the largest datagram in an empty batch.
constexpr size_t kMinBatchBytes = 128 * 1024;
constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
constexpr int kMaxEvents = 64;
// Largest UDP payload IPv4 can carry (65535 - 20 - 8).
constexpr uint32_t kMaxDatagram = 65507;
static_assert(kMinBatchBytes >= kMaxDatagram, "an empty batch must take the largest datagram");
// Wake-ups in a row in which sockets only reported errors before polling pauses: errors that
// reading does not clear must not turn the loop into a busy loop.
constexpr int kErrorRoundsBeforePause = 16;
constexpr uint64_t kErrorPauseMs = 1;

// Word offsets of one record; mirror UDP_RX and UDP_TX in src/io/native.ts.
enum RxWord : uint32_t { kRxSocket, kRxOffset, kRxLength, kRxSrcIp, kRxSrcPort, kRxStride };
enum TxWord : uint32_t { kTxSocket, kTxOffset, kTxLength, kTxDstIp, kTxDstPort, kTxStride };

uint32_t OptUint(const Napi::Object& opts, const char* key, const char* what, uint32_t def, uint32_t min,
                 uint32_t max) {
  Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? def : ArgUint(v, what, min, max);
}

void SetBuffer(int fd, int forceOpt, int opt, int bytes) {
  // The FORCE variants lift rmem_max/wmem_max but need CAP_NET_ADMIN.
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &bytes, sizeof bytes) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

sockaddr_in MakeAddr(in_addr_t ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = ip;
  sa.sin_port = htons(port);
  return sa;
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

void UdpMux::OwnedFd::Reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

void UdpMux::Unmap::operator()(uint8_t* p) const {
  if (p) munmap(p, bytes);
}

void UdpMux::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "UdpMux",
                                    {
                                        InstanceMethod<&UdpMux::Bind>("bind"),
                                        InstanceMethod<&UdpMux::Connect>("connect"),
                                        InstanceMethod<&UdpMux::LocalPort>("localPort"),
                                        InstanceMethod<&UdpMux::Send>("send"),
                                        InstanceMethod<&UdpMux::CloseSocket>("close"),
                                        InstanceMethod<&UdpMux::Stats>("stats"),
                                        InstanceMethod<&UdpMux::Stop>("stop"),
                                    });
  exports.Set("UdpMux", ctor);
}

UdpMux::UdpMux(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpMux>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) ThrowTypeError(env, "UdpMux must be called with new");
  Napi::Function onBatch = ArgFunction(info[0], "UdpMux: onBatch");
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) ThrowTypeError(env, "UdpMux: opts must be an object");
    Napi::Object opts = info[1].As<Napi::Object>();
    maxBatch_ = OptUint(opts, "maxBatch", "UdpMux: opts.maxBatch", 256, 1, 65536);
    rcvBuf_ = static_cast<int>(OptUint(opts, "rcvBuf", "UdpMux: opts.rcvBuf", 4u << 20, 4096, 1u << 30));
    sndBuf_ = static_cast<int>(OptUint(opts, "sndBuf", "UdpMux: opts.sndBuf", 4u << 20, 4096, 1u << 30));
  }

  OwnedFd epoll;
  epoll.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (epoll.get() < 0) ThrowError(env, "UdpMux: epoll_create1: " + ErrnoText(errno));

  // Receive buffers. Each message of a recvmmsg() call scatters into a 2 KiB slot of a dense array
  // (128 KiB in all), which takes every datagram of an ordinary MTU whole, and then into its own
  // overflow area for the rest of a datagram up to 64 KiB. The overflow areas are one lazily backed
  // anonymous mapping (kRecvChunk x 62 KiB of address space): only pages that a big datagram actually
  // wrote to become resident. So nothing is ever truncated, and small datagrams cost no more memory
  // than 2 KiB slots would. From there datagrams are copied back to back into the batch Buffer.
  const size_t overflowBytes = kRecvChunk * kOverflowBytes;
  void* ov = mmap(nullptr, overflowBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ov == MAP_FAILED) ThrowError(env, "UdpMux: mmap: " + ErrnoText(errno));
  recvOverflow_ = std::unique_ptr<uint8_t, Unmap>(static_cast<uint8_t*>(ov), Unmap{overflowBytes});
  recvSlots_.reset(new uint8_t[kRecvChunk * kSlotBytes]);
  for (size_t k = 0; k < kRecvChunk; ++k) {
    recvIov_[2 * k] = iovec{recvSlots_.get() + k * kSlotBytes, kSlotBytes};
    recvIov_[2 * k + 1] = iovec{recvOverflow_.get() + k * kOverflowBytes, kOverflowBytes};
    msghdr& h = recvMsgs_[k].msg_hdr;
    h.msg_name = &recvSrc_[k];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &recvIov_[2 * k];
    h.msg_iovlen = 2;
  }
  for (size_t k = 0; k < kSendChunk; ++k) {
    sendMsgs_[k].msg_hdr.msg_iov = &sendIov_[k];
    sendMsgs_[k].msg_hdr.msg_iovlen = 1;
  }
  dataCapacity_ = std::clamp<size_t>(size_t{maxBatch_} * kSlotBytes, kMinBatchBytes, kMaxBatchBytes);
  AcquireBuffers();
  onBatch_ = Napi::Persistent(onBatch);

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowError(env, "UdpMux: no event loop");
  if (napi_async_init(env, Value(), Napi::String::New(env, "rsock.UdpMux"), &asyncContext_) != napi_ok) {
    asyncContext_ = nullptr;
    ThrowError(env, "UdpMux: cannot create async context");
  }
  // Nothing below throws until the handles are set up (or closed again on failure).
  auto* h = new Handles();
  int rc = uv_poll_init(loop, &h->poll, epoll.get());
  if (rc != 0) {
    delete h;
    napi_async_destroy(env, asyncContext_);
    asyncContext_ = nullptr;
    ThrowError(env, std::string("UdpMux: cannot poll the epoll descriptor: ") + uv_strerror(rc));
  }
  uv_timer_init(loop, &h->resume);  // cannot fail
  h->poll.data = h;
  h->resume.data = h;
  h->open = 2;
  h->epfd = epoll.release();
  h->owner = this;
  handles_ = h;
  epfd_ = h->epfd;
  // Like an unref'd socket: open sockets alone do not keep the process alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&h->poll));
  uv_unref(reinterpret_cast<uv_handle_t*>(&h->resume));
  rc = uv_poll_start(&h->poll, UV_READABLE, OnPoll);
  if (rc == 0 && napi_add_async_cleanup_hook(env, OnEnvTeardown, this, &teardownHook_) != napi_ok) {
    teardownHook_ = nullptr;
    rc = UV_ENOMEM;
  }
  if (rc != 0) {
    Shutdown(Caller::kFinalizer);  // closes the handles; no Unref: not Ref'd yet
    ThrowError(env, std::string("UdpMux: cannot poll the epoll descriptor: ") + uv_strerror(rc));
  }
  // The mux owns sockets; it must not be collected until stop().
  Ref();
  selfRef_ = true;
}

UdpMux::~UdpMux() { Shutdown(Caller::kFinalizer); }

// Node is tearing the environment down with the mux still open. The hook is asynchronous so that
// Node keeps running the loop until the handles have closed (and the epoll descriptor with them).
void UdpMux::OnEnvTeardown(napi_async_cleanup_hook_handle handle, void* arg) {
  static_cast<UdpMux*>(arg)->Shutdown(Caller::kEnvTeardown, handle);
}

void UdpMux::CloseHandles(Handles* h) {
  h->owner = nullptr;
  uv_poll_stop(&h->poll);
  uv_timer_stop(&h->resume);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->resume), OnHandleClosed);
}

void UdpMux::OnHandleClosed(uv_handle_t* handle) {
  auto* h = static_cast<Handles*>(handle->data);
  if (--h->open > 0) return;
  // Only now is the descriptor out of the loop's hands.
  if (h->epfd >= 0) close(h->epfd);
  if (h->teardown) napi_remove_async_cleanup_hook(h->teardown);
  delete h;
}

void UdpMux::Shutdown(Caller caller, napi_async_cleanup_hook_handle teardown) {
  if (stopped_) return;
  stopped_ = true;
  // Sockets first: closing them also takes them out of the epoll set.
  for (Slot& s : slots_) {
    if (s.fd >= 0) close(s.fd);
  }
  slots_.clear();
  freeIds_ = {};
  open_ = 0;
  count_ = 0;
  used_ = 0;
  if (caller == Caller::kEnvTeardown) {
    teardownHook_ = nullptr;  // removed by the last handle's close callback
  } else if (teardownHook_) {
    napi_remove_async_cleanup_hook(teardownHook_);
    teardownHook_ = nullptr;
  }
  if (handles_) {
    // A poll callback further up the stack (stop() called from onBatch) sees owner == null and
    // returns without touching this object again.
    handles_->teardown = teardown;
    CloseHandles(handles_);
    handles_ = nullptr;
  } else if (teardown) {
    napi_remove_async_cleanup_hook(teardown);
  }
  epfd_ = -1;
  arrays_.Forget();
  if (caller == Caller::kEnvTeardown) return;
  if (asyncContext_) {
    napi_async_destroy(Env(), asyncContext_);
    asyncContext_ = nullptr;
  }
  onBatch_.Reset();
  arrays_.Reset();
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void UdpMux::Stop(const Napi::CallbackInfo&) { Shutdown(Caller::kJs); }

// ---- sockets ----

int UdpMux::NewSocket(Napi::Env env, const std::string& where) const {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowError(env, where + "socket: " + ErrnoText(errno));
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvBuf_);
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndBuf_);
  return fd;
}

uint32_t UdpMux::AddSocket(Napi::Env env, OwnedFd& fd, const std::string& where) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    ThrowError(env, where + "getsockname: " + ErrnoText(errno));
  }
  const uint32_t id = freeIds_.empty() ? static_cast<uint32_t>(slots_.size()) : freeIds_.top();
  const uint32_t serial = nextSerial_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  // The serial travels with the readiness event: an event that names an id whose socket has been
  // closed (and perhaps replaced) since epoll_wait() returned is recognised and skipped.
  ev.data.u64 = (static_cast<uint64_t>(serial) << 32) | id;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) ThrowError(env, where + "epoll_ctl: " + ErrnoText(errno));
  if (id == slots_.size()) {
    slots_.emplace_back();
  } else {
    freeIds_.pop();
  }
  if (++nextSerial_ == 0) nextSerial_ = 1;
  slots_[id] = Slot{fd.release(), serial, ntohs(local.sin_port)};
  ++open_;
  return id;
}

Napi::Value UdpMux::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) ThrowError(env, "UdpMux.bind: mux is stopped");
  std::string ipText = ArgString(info[0], "UdpMux.bind: ip");
  in_addr_t ip = ParseIpv4(env, ipText, "UdpMux.bind: ip", true);
  uint16_t port = static_cast<uint16_t>(ArgUint(info[1], "UdpMux.bind: port", 0, 65535));
  std::string where = "udp bind " + Ipv4ToString(ip) + ":" + std::to_string(port) + ": ";
  OwnedFd fd;
  fd.Reset(NewSocket(env, where));
  sockaddr_in sa = MakeAddr(ip, port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ThrowError(env, where + ErrnoText(errno));
  return Napi::Number::New(env, AddSocket(env, fd, where));
}

Napi::Value UdpMux::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) ThrowError(env, "UdpMux.connect: mux is stopped");
  std::string ipText = ArgString(info[0], "UdpMux.connect: ip");
  in_addr_t ip = ParseIpv4(env, ipText, "UdpMux.connect: ip", false);
  uint16_t port = static_cast<uint16_t>(ArgUint(info[1], "UdpMux.connect: port", 1, 65535));
  std::string where = "udp connect " + Ipv4ToString(ip) + ":" + std::to_string(port) + ": ";
  OwnedFd fd;
  fd.Reset(NewSocket(env, where));
  sockaddr_in sa = MakeAddr(ip, port);
  // UDP connect() only picks the route and an ephemeral port; it never blocks.
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ThrowError(env, where + ErrnoText(errno));
  return Napi::Number::New(env, AddSocket(env, fd, where));
}

Napi::Value UdpMux::LocalPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgUint(info[0], "UdpMux.localPort: id", 0, UINT32_MAX);
  if (stopped_ || id >= slots_.size() || slots_[id].fd < 0) {
    ThrowRangeError(env, "UdpMux.localPort: socket " + std::to_string(id) + " is not open");
  }
  return Napi::Number::New(env, slots_[id].port);
}

void UdpMux::CloseSocket(const Napi::CallbackInfo& info) {
  int64_t id = ArgInt(info[0], "UdpMux.close: id", INT32_MIN, UINT32_MAX);
  if (stopped_ || id < 0 || static_cast<uint64_t>(id) >= slots_.size() || slots_[id].fd < 0) return;
  Slot& s = slots_[id];
  // Called from onBatch, this may close a socket that the current receive round has yet to read
  // (or is reading): the round finds the slot changed and never touches the fd again.
  (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, s.fd, nullptr);
  close(s.fd);
  s = Slot{};
  freeIds_.push(static_cast<uint32_t>(id));
  --open_;
}

// ---- sending ----

Napi::Value UdpMux::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) ThrowError(env, "UdpMux.send: mux is stopped");
  ByteView data = ArgBytes(info[0], "UdpMux.send: data");
  WordView meta = ArgUint32Array(info[1], "UdpMux.send: meta");
  uint32_t count = ArgUint(info[2], "UdpMux.send: count", 0, static_cast<uint32_t>(meta.length / kTxStride));

  // Validate the whole batch first so a bad record never leaves half a batch on the wire.
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t* m = meta.data + static_cast<size_t>(i) * kTxStride;
    auto bad = [&](const char* what) {
      ThrowRangeError(env, "UdpMux.send: datagram " + std::to_string(i) + ": " + what);
    };
    if (static_cast<uint64_t>(m[kTxOffset]) + m[kTxLength] > data.length) bad("range outside data");
    if (m[kTxLength] > kMaxDatagram) bad("longer than a UDP datagram can carry (65507 bytes)");
    if (m[kTxDstPort] > 0xffff) bad("dstPort out of range");
    if (m[kTxDstIp] != 0 && m[kTxDstPort] == 0) bad("dstPort must not be 0");
  }

  uint32_t sent = 0;
  uint32_t i = 0;
  while (i < count) {
    // A run: consecutive datagrams for the same socket, at most one sendmmsg() worth.
    const uint32_t id = meta.data[static_cast<size_t>(i) * kTxStride + kTxSocket];
    uint32_t end = i + 1;
    while (end < count && end - i < kSendChunk && meta.data[static_cast<size_t>(end) * kTxStride + kTxSocket] == id) {
      ++end;
    }
    const int fd = id < slots_.size() ? slots_[id].fd : -1;
    if (fd < 0) {
      sendErrors_ += end - i;
      RecordError("send on a socket id that is not open");
      i = end;
      continue;
    }
    const size_t n = end - i;
    for (size_t k = 0; k < n; ++k) {
      const uint32_t* m = meta.data + static_cast<size_t>(i + k) * kTxStride;
      sendIov_[k].iov_base = data.data + m[kTxOffset];
      sendIov_[k].iov_len = m[kTxLength];
      msghdr& h = sendMsgs_[k].msg_hdr;
      if (m[kTxDstIp] == 0) {
        h.msg_name = nullptr;  // the connected peer
        h.msg_namelen = 0;
      } else {
        sendDst_[k] = MakeAddr(htonl(m[kTxDstIp]), static_cast<uint16_t>(m[kTxDstPort]));
        h.msg_name = &sendDst_[k];
        h.msg_namelen = sizeof(sockaddr_in);
      }
    }
    sent += SendRun(fd, n);
    i = end;
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

uint32_t UdpMux::SendRun(int fd, size_t n) {
  return SendBatch(fd, &sendMsgs_[0], n, [this](int err, size_t lost) {
    sendErrors_ += lost;
    RecordError(ErrnoText(err));
  });
}

Napi::Value UdpMux::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("received", Napi::Number::New(env, static_cast<double>(received_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
  o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(sendErrors_)));
  o.Set("recvErrors", Napi::Number::New(env, static_cast<double>(recvErrors_)));
  o.Set("lastError", Napi::String::New(env, lastError_));
  o.Set("sockets", Napi::Number::New(env, open_));
  return o;
}

// ---- the batch buffers ----

void UdpMux::AcquireBuffers() {
  arrays_.Acquire(Env(), dataCapacity_, kRxStride * static_cast<size_t>(maxBatch_));
}

// ---- receiving: runs on the JS thread, from the loop ----

void UdpMux::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* h = static_cast<Handles*>(handle->data);
  UdpMux* self = h->owner;
  if (self == nullptr) return;
  Napi::Env env = self->Env();
  // Nothing may unwind into libuv. Past OnReadable, `self` may be gone: use only env.
  try {
    Napi::HandleScope scope(env);
    self->OnReadable(h, status);
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

void UdpMux::OnResume(uv_timer_t* timer) {
  auto* h = static_cast<Handles*>(timer->data);
  if (h->owner != nullptr) (void)uv_poll_start(&h->poll, UV_READABLE, OnPoll);
}

// Stops polling for a moment; the timer starts it again. Used when wake-ups yield only errors.
void UdpMux::Pause(Handles* h) {
  uv_poll_stop(&h->poll);
  uv_timer_start(&h->resume, OnResume, kErrorPauseMs, 0);
}

// One round: every socket epoll reports ready is read until it has no more or the batch is full,
// whichever comes first. A socket that fills the batch waits for the next round (the epoll
// descriptor stays readable, and libuv polls level-triggered), so one busy socket cannot starve the
// others, and the loop gets a turn between rounds. What is left in the batch is flushed at the end:
// a partial batch is never held back waiting for company.
void UdpMux::OnReadable(Handles* h, int status) {
  if (status < 0) {
    // Not expected from an epoll descriptor; libuv may have stopped the handle. Try again shortly.
    ++recvErrors_;
    RecordError(std::string("poll: ") + uv_strerror(status));
    Pause(h);
    return;
  }
  // JS may have detached the arrays since the last call (it should not keep them, but it could):
  // never write through a stale pointer.
  AcquireBuffers();
  std::array<epoll_event, kMaxEvents> events;
  int n;
  do n = epoll_wait(h->epfd, events.data(), kMaxEvents, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ++recvErrors_;
    RecordError("epoll_wait: " + ErrnoText(errno));
    Pause(h);
    return;
  }
  uint32_t read = 0;
  uint32_t errors = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (!DrainSocket(h, static_cast<uint32_t>(tag), static_cast<uint32_t>(tag >> 32), &read, &errors)) return;
  }
  if (count_ > 0 && !Flush(h)) return;
  // Reading clears the errors ICMP leaves on a connected socket, so they cannot repeat without
  // new datagrams; anything else that keeps a socket ready without yielding data is slowed down.
  errorRounds_ = (errors > 0 && read == 0) ? errorRounds_ + 1 : 0;
  if (errorRounds_ >= kErrorRoundsBeforePause) {
    errorRounds_ = 0;
    Pause(h);
  }
}

// Reads what one socket holds, up to the end of the current batch. False means that JS stopped the
// mux during a flush.
bool UdpMux::DrainSocket(Handles* h, uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors) {
  for (;;) {
    // Looked up afresh every time: onBatch may have closed the socket, reused its id, or grown the
    // table since the last look.
    if (id >= slots_.size() || slots_[id].serial != serial) return true;
    const int fd = slots_[id].fd;
    const unsigned want = static_cast<unsigned>(std::min<size_t>(kRecvChunk, maxBatch_ - count_));
    if (want == 0) return Flush(h);  // not reached: a full batch is flushed at once
    for (unsigned k = 0; k < want; ++k) recvMsgs_[k].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    const int r = recvmmsg(fd, recvMsgs_.data(), want, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return true;
      // ECONNREFUSED after an ICMP port unreachable on a connected socket, and the like: the read
      // has cleared the error and the socket stays usable.
      ++recvErrors_;
      RecordError(ErrnoText(err));
      ++*errors;
      return true;
    }
    *read += static_cast<uint32_t>(r);
    for (int k = 0; k < r; ++k) {
      const mmsghdr& mh = recvMsgs_[k];
      const size_t len = mh.msg_len;
      // Cannot happen (slot + overflow hold 64 KiB), but a cut datagram must never pass as whole.
      if (mh.msg_hdr.msg_flags & MSG_TRUNC) {
        ++recvErrors_;
        RecordError("datagram truncated");
        continue;
      }
      if (len > dataCapacity_ - used_) {
        // The batch Buffer is full: deliver it and go on with an empty one. The rest of this
        // recvmmsg() is in the native slots, which JS cannot reach; but if onBatch closed the
        // socket, it is dropped, like everything a closed socket received.
        if (!Flush(h)) return false;
        if (id >= slots_.size() || slots_[id].serial != serial) return true;
      }
      const size_t head = std::min(len, kSlotBytes);
      std::memcpy(arrays_.data + used_, recvSlots_.get() + k * kSlotBytes, head);
      if (len > head) std::memcpy(arrays_.data + used_ + head, recvOverflow_.get() + k * kOverflowBytes, len - head);
      const sockaddr_in& src = recvSrc_[k];
      const bool haveSrc = mh.msg_hdr.msg_namelen >= sizeof(sockaddr_in);
      uint32_t* m = arrays_.meta + static_cast<size_t>(count_) * kRxStride;
      m[kRxSocket] = id;
      m[kRxOffset] = static_cast<uint32_t>(used_);
      m[kRxLength] = static_cast<uint32_t>(len);
      m[kRxSrcIp] = haveSrc ? ntohl(src.sin_addr.s_addr) : 0;
      m[kRxSrcPort] = haveSrc ? ntohs(src.sin_port) : 0;
      ++count_;
      used_ += len;
    }
    if (count_ >= maxBatch_) return Flush(h);  // this socket's turn ends with the batch
    // Fewer than asked for: the queue is empty (or an error is pending, which the next round reads).
    if (static_cast<unsigned>(r) < want) return true;
  }
}

// Hands the batch to onBatch: the same Buffer and Uint32Array every time, valid during the call.
bool UdpMux::Flush(Handles* h) {
  napi_env env = Env();
  const uint32_t count = count_;
  count_ = 0;
  used_ = 0;
  ++batches_;
  received_ += count;
  {
    Napi::HandleScope scope(env);
    napi_value argv[3] = {arrays_.DataValue(), arrays_.MetaValue(), Napi::Number::New(env, count)};
    CallFromLoop(env, asyncContext_, Value(), onBatch_.Value(), 3, argv);
  }
  if (h->owner == nullptr) return false;  // stopped (perhaps destroyed) by the callback
  AcquireBuffers();
  return true;
}

}  // namespace rsock
