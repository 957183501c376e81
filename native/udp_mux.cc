#include "udp_mux.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "args.h"
#include "net_util.h"
#include "records.h"

namespace rsock {

namespace {

// The batch Buffer holds maxBatch datagrams of 2 KiB, within these bounds; a batch also ends when the
// next datagram does not fit. The lower bound keeps room for the largest datagram in an empty batch.
constexpr size_t kMinBatchBytes = 128 * 1024;
constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
static_assert(kMinBatchBytes >= UdpMux::kMaxDatagram, "an empty batch must take the largest datagram");

}  // namespace

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
  uint32_t busyPollUs = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsObject()) ThrowTypeError(env, "UdpMux: opts must be an object");
    Napi::Object opts = info[1].As<Napi::Object>();
    maxBatch_ = ArgOptUint(opts, "maxBatch", "UdpMux: opts.maxBatch", 256, 1, 65536);
    rcvBuf_ = static_cast<int>(ArgOptUint(opts, "rcvBuf", "UdpMux: opts.rcvBuf", 4u << 20, 4096, 1u << 30));
    sndBuf_ = static_cast<int>(ArgOptUint(opts, "sndBuf", "UdpMux: opts.sndBuf", 4u << 20, 4096, 1u << 30));
    busyPollUs = ArgOptUint(opts, "busyPollUs", "UdpMux: opts.busyPollUs", 0, 0, kMaxBusyPollUs);
  }

  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) ThrowError(env, "UdpMux: epoll_create1: " + ErrnoText(errno));

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
    h.msg_namelen = sizeof(SockAddr);
    h.msg_iov = &recvIov_[2 * k];
    h.msg_iovlen = 2;
  }
  dataCapacity_ = std::clamp<size_t>(size_t{maxBatch_} * kSlotBytes, kMinBatchBytes, kMaxBatchBytes);
  AcquireBuffers();
  onBatch_ = Napi::Persistent(onBatch);

  const int epfd = epoll.release();
  loop_.Open(env, Value(), "rsock.UdpMux", this, epfd, [epfd] { close(epfd); }, "UdpMux: ");
  epfd_ = epfd;
  loop_.SetBusyPoll(busyPollUs);
  // Like an unref'd socket: open sockets alone do not keep the process alive.
  loop_.SetRef(false);
  if (int rc = loop_.StartPolling()) {
    Shutdown(Caller::kFinalizer);  // no Unref: not Ref'd yet
    ThrowError(env, std::string("UdpMux: cannot poll the epoll descriptor: ") + uv_strerror(rc));
  }
  // The mux owns sockets; it must not be collected until stop().
  Ref();
  selfRef_ = true;
}

UdpMux::~UdpMux() { Shutdown(Caller::kFinalizer); }

void UdpMux::Shutdown(Caller caller) {
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
  loop_.Close(caller);
  epfd_ = -1;
  arrays_.Forget();
  if (caller == Caller::kEnvTeardown) return;
  onBatch_.Reset();
  arrays_.Reset();
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

// ---- sockets ----

int UdpMux::NewSocket(Napi::Env env, int family, const std::string& where) const {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowError(env, where + "socket: " + ErrnoText(errno));
  SetSocketBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvBuf_);
  SetSocketBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndBuf_);
  return fd;
}

uint32_t UdpMux::AddSocket(Napi::Env env, UniqueFd& fd, const std::string& where) {
  SockAddr local{};
  socklen_t len = sizeof local;
  if (getsockname(fd.get(), &local.any, &len) != 0) {
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
  slots_[id] = Slot{fd.release(), serial, PortOf(local), local.any.sa_family == AF_INET6};
  ++open_;
  return id;
}

Napi::Value UdpMux::OpenSocket(const Napi::CallbackInfo& info, bool connected) {
  Napi::Env env = info.Env();
  const std::string method = connected ? "UdpMux.connect" : "UdpMux.bind";
  if (stopped_) ThrowError(env, method + ": mux is stopped");
  const std::string ipWhat = method + ": ip";
  std::string ipText = ArgString(info[0], ipWhat.c_str());
  uint16_t port = static_cast<uint16_t>(ArgUint(info[1], (method + ": port").c_str(), connected ? 1 : 0, 65535));
  if (ipText.empty()) {
    if (connected) ThrowTypeError(env, ipWhat + " must not be empty");
    ipText = "0.0.0.0";
  }
  SockAddr sa = ParseSockAddr(env, ipText, port, ipWhat.c_str());
  std::string where = std::string(connected ? "udp connect " : "udp bind ") + SockAddrText(sa) + ": ";
  UniqueFd fd(NewSocket(env, sa.any.sa_family, where));
  // bind(ip, port, true): SO_REUSEPORT, so that the client's worker threads each bind --ludp and the
  // kernel hashes every app flow (by its 4-tuple) to one of them, which keeps a flow in one worker.
  if (!connected && info.Length() > 2 && info[2].ToBoolean().Value()) {
    const int one = 1;
    if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ThrowError(env, where + "SO_REUSEPORT: " + ErrnoText(errno));
  }
  // UDP connect() only picks the route and an ephemeral port; it never blocks.
  const int rc = connected ? connect(fd.get(), &sa.any, SockAddrLen(sa)) : bind(fd.get(), &sa.any, SockAddrLen(sa));
  if (rc != 0) ThrowError(env, where + ErrnoText(errno));
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

Napi::Value UdpMux::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("received", Napi::Number::New(env, static_cast<double>(received_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
  o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(sendErrors_)));
  o.Set("coalesced", Napi::Number::New(env, static_cast<double>(coalesced_)));
  o.Set("gsoRefused", Napi::Number::New(env, static_cast<double>(gsoRefused_)));
  o.Set("recvErrors", Napi::Number::New(env, static_cast<double>(recvErrors_)));
  o.Set("lastError", Napi::String::New(env, lastError_));
  o.Set("sockets", Napi::Number::New(env, open_));
  return o;
}

void UdpMux::AcquireBuffers() {
  arrays_.Acquire(Env(), dataCapacity_, udp_rx_rec::kStride * static_cast<size_t>(maxBatch_));
}

}  // namespace rsock
