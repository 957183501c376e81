#include "udp_mux.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#include "args.h"

namespace rsock {

namespace {

// Batches queued for the JS thread before the worker blocks; beyond this the socket buffers absorb
// bursts and the kernel counts its own drops.
constexpr size_t kQueueDepth = 16;
constexpr size_t kMinBatchBytes = 64 * 1024;
constexpr size_t kMaxIdleBatchBytes = 1 << 20;
constexpr size_t kMaxEvents = 64;
// Largest UDP payload IPv4 can carry (65535 - 20 - 8).
constexpr uint32_t kMaxDatagram = 65507;
// Rounds in a row in which sockets only reported errors before the worker pauses: errors that
// reading does not clear must not turn it into a busy loop.
constexpr int kErrorRoundsBeforePause = 16;
constexpr auto kErrorPause = std::chrono::milliseconds(1);
constexpr uint64_t kWakeTag = ~uint64_t{0};

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

}  // namespace

// A batch of received datagrams: back to back in `data`, UDP_RX_STRIDE words each in `meta`. The
// worker fills one long-lived batch and hands JS an exact-size copy of it (see Flush()).
struct UdpMuxItem {
  uint8_t* data = nullptr;
  size_t length = 0;
  size_t capacity = 0;
  std::vector<uint32_t> meta;
  std::vector<uint32_t> serials;  // socket serial per datagram, to drop those of sockets closed since
  uint32_t count = 0;

  UdpMuxItem() = default;
  UdpMuxItem(const UdpMuxItem&) = delete;
  UdpMuxItem& operator=(const UdpMuxItem&) = delete;
  ~UdpMuxItem() { std::free(data); }

  bool Append(uint32_t id, uint32_t serial, const uint8_t* head, size_t headLen, const uint8_t* tail,
              size_t tailLen, uint32_t srcIp, uint32_t srcPort) {
    const size_t n = headLen + tailLen;
    if (length + n > capacity) {
      size_t cap = std::max({capacity * 2, length + n, kMinBatchBytes});
      void* grown = std::realloc(data, cap);
      if (!grown) return false;
      data = static_cast<uint8_t*>(grown);
      capacity = cap;
    }
    if (headLen) std::memcpy(data + length, head, headLen);
    if (tailLen) std::memcpy(data + length + headLen, tail, tailLen);
    const uint32_t rec[kRxStride] = {id, static_cast<uint32_t>(length), static_cast<uint32_t>(n), srcIp, srcPort};
    meta.insert(meta.end(), rec, rec + kRxStride);  // within the reserved capacity: no allocation
    serials.push_back(serial);
    length += n;
    ++count;
    return true;
  }

  void Clear() {
    length = 0;
    count = 0;
    meta.clear();
    serials.clear();
    // A burst of big datagrams must not leave a big buffer behind for good.
    if (capacity > kMaxIdleBatchBytes) {
      if (void* shrunk = std::realloc(data, kMaxIdleBatchBytes)) {
        data = static_cast<uint8_t*>(shrunk);
        capacity = kMaxIdleBatchBytes;
      }
    }
  }
};

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

  epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (epoll_.get() < 0) ThrowError(env, "UdpMux: epoll_create1: " + ErrnoText(errno));
  if (int err = wake_.Open()) ThrowError(env, "UdpMux: pipe: " + ErrnoText(err));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.ReadFd(), &ev) != 0) {
    ThrowError(env, "UdpMux: epoll_ctl: " + ErrnoText(errno));
  }

  // Receive buffers. Each message of a recvmmsg() call scatters into a 2 KiB slot of a dense array
  // (128 KiB in all), which takes every datagram of an ordinary MTU whole, and then into its own
  // overflow area for the rest of a datagram up to 64 KiB. The overflow areas are one lazily backed
  // anonymous mapping (kRecvChunk x 62 KiB of address space): only pages that a big datagram actually
  // wrote to become resident. So nothing is ever truncated, and small datagrams cost no more memory
  // than 2 KiB slots would.
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
  batch_ = std::make_unique<UdpMuxItem>();
  batch_->meta.reserve(kRxStride * static_cast<size_t>(maxBatch_));
  batch_->serials.reserve(maxBatch_);

  tsfn_ = Tsfn::New(env, onBatch, "rsock.UdpMux", kQueueDepth, 1, this);
  // Like an unref'd socket: open sockets alone do not keep the process alive.
  tsfn_.Unref(env);
  // Added after the TSFN so that it runs first at teardown (hooks run in reverse order) and stops
  // the worker while the TSFN still exists.
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanupHook_ = true;
  // The mux owns sockets; it must not be collected until stop().
  Ref();
  selfRef_ = true;
  try {
    thread_ = std::thread(&UdpMux::Run, this);
  } catch (const std::exception& e) {
    Shutdown(Caller::kJs);
    ThrowError(env, std::string("UdpMux: cannot start thread: ") + e.what());
  }
}

UdpMux::~UdpMux() { Shutdown(Caller::kFinalizer); }

void UdpMux::OnEnvCleanup(void* arg) {
  auto* self = static_cast<UdpMux*>(arg);
  self->cleanupHook_ = false;
  self->Shutdown(Caller::kEnvTeardown);
}

void UdpMux::Shutdown(Caller caller) {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  wake_.Notify();
  // Abort (not Release) unblocks a worker waiting for queue space even when the JS thread, which
  // would drain the queue, is the one sitting here in stop(). Queued batches are freed unseen.
  tsfn_.Abort();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Slot& s : slots_) {
      if (s.fd >= 0) close(s.fd);
    }
    slots_.clear();
    freeIds_ = {};
    open_ = 0;
  }
  epoll_.Reset();
  wake_.Close();
  batch_.reset();
  if (caller == Caller::kEnvTeardown) return;
  if (cleanupHook_) {
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    cleanupHook_ = false;
  }
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void UdpMux::Stop(const Napi::CallbackInfo&) { Shutdown(Caller::kJs); }

void UdpMux::RecordError(const std::string& text) {
  std::lock_guard<std::mutex> lock(errMu_);
  lastError_ = text;
}

// ---- JS thread: sockets ----

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
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t id;
  if (freeIds_.empty()) {
    id = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    id = freeIds_.top();
    freeIds_.pop();
  }
  uint32_t serial = nextSerial_++;
  if (nextSerial_ == 0) nextSerial_ = 1;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = (static_cast<uint64_t>(serial) << 32) | id;
  // Registered with the table entry in place and mu_ held: the worker checks both under mu_.
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    int err = errno;
    freeIds_.push(id);
    ThrowError(env, where + "epoll_ctl: " + ErrnoText(err));
  }
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
  std::lock_guard<std::mutex> lock(mu_);
  Slot& s = slots_[id];
  // The worker reads only with mu_ held and after matching the serial, so it is not inside
  // recvmmsg() on this fd now and never will be again.
  (void)epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, s.fd, nullptr);
  close(s.fd);
  s = Slot{};
  freeIds_.push(static_cast<uint32_t>(id));
  --open_;
}

// ---- JS thread: sending ----

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

// One sendmmsg() per run; on an error the failing datagram is counted and skipped, except when the
// socket is out of buffer space, where the rest of the run is dropped: retrying datagram by datagram
// would only burn syscalls, and sending must never block.
uint32_t UdpMux::SendRun(int fd, size_t n) {
  uint32_t sent = 0;
  size_t i = 0;
  while (i < n) {
    int r = sendmmsg(fd, &sendMsgs_[i], static_cast<unsigned>(n - i), MSG_DONTWAIT);
    if (r > 0) {
      sent += static_cast<uint32_t>(r);
      i += static_cast<size_t>(r);
      continue;
    }
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      sendErrors_ += n - i;
      RecordError(ErrnoText(err));
      break;
    }
    // ECONNREFUSED and the like: an ICMP error from an earlier datagram, reported (and cleared) here.
    ++sendErrors_;
    RecordError(ErrnoText(err));
    ++i;
  }
  return sent;
}

Napi::Value UdpMux::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("received", Napi::Number::New(env, static_cast<double>(received_)));
  o.Set("batches", Napi::Number::New(env, static_cast<double>(batches_)));
  o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
  o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(sendErrors_)));
  o.Set("recvErrors", Napi::Number::New(env, static_cast<double>(recvErrors_.load())));
  {
    std::lock_guard<std::mutex> lock(errMu_);
    o.Set("lastError", Napi::String::New(env, lastError_));
  }
  o.Set("sockets", Napi::Number::New(env, open_));
  return o;
}

// ---- JS thread: delivery ----

void UdpMuxCallJs(Napi::Env env, Napi::Function onBatch, UdpMux* self, UdpMuxItem* item) {
  std::unique_ptr<UdpMuxItem> owned(item);
  // env is null when the TSFN is torn down with items still queued: just free them.
  if (env == nullptr || self == nullptr || item == nullptr) return;
  try {
    self->DeliverBatch(env, onBatch, item);
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

void UdpMux::DeliverBatch(Napi::Env env, Napi::Function onBatch, UdpMuxItem* item) {
  if (stopped_) return;
  // Datagrams of sockets closed since they were read are dropped: their id may already name a new
  // socket. Their bytes stay in the buffer, unreferenced.
  uint32_t* m = item->meta.data();
  uint32_t kept = 0;
  for (uint32_t k = 0; k < item->count; ++k) {
    const uint32_t id = m[static_cast<size_t>(k) * kRxStride + kRxSocket];
    if (id >= slots_.size() || slots_[id].serial != item->serials[k]) continue;
    if (kept != k) std::memcpy(m + static_cast<size_t>(kept) * kRxStride, m + static_cast<size_t>(k) * kRxStride, kRxStride * sizeof(uint32_t));
    ++kept;
  }
  if (kept == 0) return;

  const size_t length = item->length;
  Napi::Buffer<uint8_t> buf;
  if (length == 0) {
    buf = Napi::Buffer<uint8_t>::New(env, 0);  // only empty datagrams
  } else {
    uint8_t* data = item->data;
    item->data = nullptr;
    // V8 does not see external memory on its own; without this, GC lags behind a fast stream.
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length));
    auto release = [length](Napi::Env e, uint8_t* p) {
      std::free(p);
      Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(length));
    };
    try {
      buf = Napi::Buffer<uint8_t>::NewOrCopy(env, data, length, release);
    } catch (...) {
      std::free(data);
      Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(length));
      throw;
    }
  }
  const size_t metaBytes = static_cast<size_t>(kept) * kRxStride * sizeof(uint32_t);
  Napi::ArrayBuffer metaBuf = Napi::ArrayBuffer::New(env, metaBytes);
  std::memcpy(metaBuf.Data(), m, metaBytes);
  Napi::Uint32Array meta = Napi::Uint32Array::New(env, static_cast<size_t>(kept) * kRxStride, metaBuf, 0);
  ++batches_;
  received_ += kept;
  onBatch.Call({buf, meta, Napi::Number::New(env, kept)});
}

// ---- worker thread ----

void UdpMux::Run() {
  std::array<epoll_event, kMaxEvents> events;
  int errorRounds = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    // With datagrams in hand, only look whether more are ready; flush as soon as none are.
    const int timeout = batch_->count > 0 ? 0 : -1;
    int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      recvErrors_.fetch_add(1, std::memory_order_relaxed);
      RecordError("epoll_wait: " + ErrnoText(errno));
      std::this_thread::sleep_for(kErrorPause);
      continue;
    }
    if (n == 0) {
      if (!Flush()) return;  // closing
      continue;
    }
    uint32_t read = 0;
    uint32_t errors = 0;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        wake_.Drain();
        continue;
      }
      if (!DrainSocket(static_cast<uint32_t>(tag), static_cast<uint32_t>(tag >> 32), &read, &errors)) return;
    }
    // Reading clears the errors ICMP leaves on a connected socket, so they cannot repeat without
    // new datagrams; anything else that keeps a socket ready without yielding data is slowed down.
    errorRounds = (errors > 0 && read == 0) ? errorRounds + 1 : 0;
    if (errorRounds >= kErrorRoundsBeforePause) {
      if (batch_->count > 0 && !Flush()) return;
      std::this_thread::sleep_for(kErrorPause);
      errorRounds = 0;
    }
  }
}

// Reads what one socket holds, up to the end of the current batch: a socket that fills the batch
// waits for the next round (level-triggered epoll reports it again), so one busy socket cannot
// starve the others. False means stop.
bool UdpMux::DrainSocket(uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors) {
  for (;;) {
    if (stopping_.load(std::memory_order_relaxed)) return false;
    const unsigned want = static_cast<unsigned>(std::min<size_t>(kRecvChunk, maxBatch_ - batch_->count));
    for (unsigned k = 0; k < want; ++k) recvMsgs_[k].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    int r;
    int err = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (id >= slots_.size() || slots_[id].serial != serial) return true;  // closed meanwhile
      r = recvmmsg(slots_[id].fd, recvMsgs_.data(), want, MSG_DONTWAIT, nullptr);
      if (r < 0) err = errno;
    }
    if (r < 0) {
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return true;
      // ECONNREFUSED after an ICMP port unreachable on a connected socket, and the like: the read
      // has cleared the error and the socket stays usable.
      recvErrors_.fetch_add(1, std::memory_order_relaxed);
      RecordError(ErrnoText(err));
      ++*errors;
      return true;
    }
    for (int k = 0; k < r; ++k) {
      const mmsghdr& mh = recvMsgs_[k];
      const size_t len = mh.msg_len;
      // Cannot happen (slot + overflow hold 64 KiB), but a cut datagram must never pass as whole.
      if (mh.msg_hdr.msg_flags & MSG_TRUNC) {
        recvErrors_.fetch_add(1, std::memory_order_relaxed);
        RecordError("datagram truncated");
        continue;
      }
      const size_t head = std::min(len, kSlotBytes);
      const sockaddr_in& src = recvSrc_[k];
      const bool haveSrc = mh.msg_hdr.msg_namelen >= sizeof(sockaddr_in);
      if (!batch_->Append(id, serial, recvSlots_.get() + k * kSlotBytes, head,
                          recvOverflow_.get() + k * kOverflowBytes, len - head,
                          haveSrc ? ntohl(src.sin_addr.s_addr) : 0, haveSrc ? ntohs(src.sin_port) : 0)) {
        recvErrors_.fetch_add(1, std::memory_order_relaxed);
        RecordError("out of memory for a receive batch");
      }
    }
    *read += static_cast<uint32_t>(r);
    if (batch_->count >= maxBatch_) return Flush();
    // Fewer than asked for: the queue is empty (or an error is pending, which the next round reads).
    if (static_cast<unsigned>(r) < want) return true;
  }
}

// Hands JS a copy of the batch with buffers exactly as large as their contents, allocated in one go
// (a few small mallocs per batch, none per datagram), and keeps the worker's batch and its capacity
// for the next one. Recycling big fixed-size buffers instead costs page faults: JS frees them only
// when the GC gets to them, and the allocator returns such blocks to the kernel.
bool UdpMux::Flush() {
  std::unique_ptr<UdpMuxItem> out;
  try {
    out = std::make_unique<UdpMuxItem>();
    if (batch_->length > 0) {
      out->data = static_cast<uint8_t*>(std::malloc(batch_->length));
      if (!out->data) throw std::bad_alloc();
      std::memcpy(out->data, batch_->data, batch_->length);
      out->length = out->capacity = batch_->length;
    }
    out->meta.assign(batch_->meta.begin(), batch_->meta.end());
    out->serials.assign(batch_->serials.begin(), batch_->serials.end());
    out->count = batch_->count;
  } catch (const std::bad_alloc&) {
    recvErrors_.fetch_add(batch_->count, std::memory_order_relaxed);
    RecordError("out of memory for a receive batch");
    batch_->Clear();
    return true;
  }
  batch_->Clear();
  if (tsfn_.BlockingCall(out.get()) != napi_ok) return false;  // closing
  out.release();
  return true;
}

}  // namespace rsock
