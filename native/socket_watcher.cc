#include "socket_watcher.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "args.h"
#include "bpf_filters.h"
#include "net_util.h"
#include "unique_fd.h"

namespace rsock {

namespace {

constexpr uint64_t kPollRetryMs = 10;

std::string RepairError(int err) {
  if (err == EPERM) {
    return "TCP_REPAIR is not permitted: taking over kernel TCP connections needs CAP_NET_ADMIN "
           "(run as root or grant the capability)";
  }
  return "TCP_REPAIR: " + ErrnoText(err);
}

// Socket set up the way both listen() and connect() need it; throws with `where` as prefix.
UniqueFd NewTcpSocket(Napi::Env env, int family, const std::string& where) {
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) ThrowError(env, where + "socket: " + ErrnoText(errno));
  if (int err = ProbeRepair(fd.get())) ThrowError(env, where + RepairError(err));
  if (int err = SetReuseAddr(fd.get())) ThrowError(env, where + "SO_REUSEADDR: " + ErrnoText(err));
  // Before the handshake: attaching later lets injected data slip into the kernel's TCP.
  if (int err = AttachFilter(fd.get(), kPayloadDropFilter)) {
    ThrowError(env, where + "SO_ATTACH_FILTER: " + ErrnoText(err));
  }
  return fd;
}

}  // namespace

void SocketWatcher::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "SocketWatcher",
                                    {
                                        InstanceMethod<&SocketWatcher::Listen>("listen"),
                                        InstanceMethod<&SocketWatcher::Connect>("connect"),
                                        InstanceMethod<&SocketWatcher::CloseFd>("close"),
                                        InstanceMethod<&SocketWatcher::HandBack>("handBack"),
                                        InstanceMethod<&SocketWatcher::Stop>("stop"),
                                    });
  exports.Set("SocketWatcher", ctor);
}

SocketWatcher::SocketWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketWatcher>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) ThrowTypeError(env, "SocketWatcher must be called with new");
  onEvent_ = Napi::Persistent(ArgFunction(info[0], "SocketWatcher: onEvent"));
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) ThrowError(env, "SocketWatcher: epoll_create1: " + ErrnoText(errno));
  loop_.Open(env, Value(), "rsock.SocketWatcher", this, epfd, [epfd] { close(epfd); }, "SocketWatcher: ");
  epfd_ = epfd;
  UpdateRef();
  if (int rc = loop_.StartPolling()) {
    Shutdown(Caller::kFinalizer);  // no Unref: not Ref'd yet
    ThrowError(env, std::string("SocketWatcher: cannot poll the epoll descriptor: ") + uv_strerror(rc));
  }
  // The watcher owns sockets; it must not be collected until stop().
  Ref();
  selfRef_ = true;
}

SocketWatcher::~SocketWatcher() { Shutdown(Caller::kFinalizer); }

void SocketWatcher::EnsureRunning(Napi::Env env, const char* method) const {
  if (stopped_) ThrowError(env, std::string("SocketWatcher.") + method + ": watcher is stopped");
}

// A listener waits for connections, a dial for its outcome; the other sockets are JS's to use and
// only wait for close().
uint32_t SocketWatcher::Interest(Kind kind) {
  if (kind == Kind::kListening) return EPOLLIN;
  return kind == Kind::kConnecting ? static_cast<uint32_t>(EPOLLOUT) : 0;
}

uint32_t SocketWatcher::NextSerial() {
  const uint32_t serial = nextSerial_;
  if (++nextSerial_ == 0) nextSerial_ = 1;
  return serial;
}

int SocketWatcher::Watch(int op, int fd, uint32_t serial, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  // The serial travels with the readiness event: an fd closed and reused by a callback earlier in
  // the same round is recognised and skipped.
  ev.data.u64 = (static_cast<uint64_t>(serial) << 32) | static_cast<uint32_t>(fd);
  return epoll_ctl(epfd_, op, fd, &ev) == 0 ? 0 : errno;
}

uint32_t SocketWatcher::Add(Napi::Env env, int fd, Kind kind, const std::string& where) {
  const uint32_t serial = nextSerial_;
  if (const uint32_t events = Interest(kind)) {
    if (int err = Watch(EPOLL_CTL_ADD, fd, serial, events)) ThrowError(env, where + "epoll_ctl: " + ErrnoText(err));
  }
  NextSerial();
  fds_[fd] = Entry{serial, kind};
  if (Busy(kind)) ++busyFds_;
  return serial;
}

void SocketWatcher::SetKind(Entry& entry, int fd, Kind kind) {
  if (Busy(entry.kind)) {
    --busyFds_;
    (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  }
  entry.kind = kind;
}

bool SocketWatcher::Alive(int fd, uint32_t serial) const {
  auto it = fds_.find(fd);
  return it != fds_.end() && it->second.serial == serial;
}

// Closing a listener would reset the connections still in its accept queue; they are taken and
// closed in repair mode instead, so that closing stays silent.
void SocketWatcher::Release(int fd, Kind kind) {
  if (kind == Kind::kListening) {
    int child;
    while ((child = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0 || errno == EINTR ||
           errno == ECONNABORTED) {
      if (child >= 0) CloseSilently(child);
    }
  }
  CloseSilently(fd);  // also takes it out of the epoll set
}

// "" listens on IPv6 and IPv4 at once (:: with IPV6_V6ONLY off), or on IPv4 alone when the kernel has
// no IPv6; "0.0.0.0" and "::" take one family, any other address just itself.
Napi::Value SocketWatcher::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureRunning(env, "listen");
  std::string ipText = ArgString(info[0], "SocketWatcher.listen: ip");
  uint16_t port = static_cast<uint16_t>(ArgUint(info[1], "SocketWatcher.listen: port", 0, 65535));
  int backlog = static_cast<int>(ArgUint(info[2], "SocketWatcher.listen: backlog", 1, 65535));
  const bool dual = ipText.empty();
  SockAddr sa = ParseSockAddr(env, dual ? "::" : ipText, port, "SocketWatcher.listen: ip");
  UniqueFd fd;
  if (dual) {
    fd.reset(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() && errno == EAFNOSUPPORT) sa = ParseSockAddr(env, "0.0.0.0", port, "");
    fd.reset();
  }
  std::string where = "listen " + SockAddrText(sa) + ": ";
  fd = NewTcpSocket(env, sa.any.sa_family, where);
  if (sa.any.sa_family == AF_INET6) {
    const int v6only = dual ? 0 : 1;
    if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
      ThrowError(env, where + "IPV6_V6ONLY: " + ErrnoText(errno));
    }
  }
  if (bind(fd.get(), &sa.any, SockAddrLen(sa)) != 0) ThrowError(env, where + ErrnoText(errno));
  if (listen(fd.get(), backlog) != 0) ThrowError(env, where + ErrnoText(errno));
  Add(env, fd.get(), Kind::kListening, where);
  UpdateRef();
  return Napi::Number::New(env, fd.release());
}

Napi::Value SocketWatcher::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureRunning(env, "connect");
  std::string srcText = ArgString(info[0], "SocketWatcher.connect: srcIp");
  std::string dstText = ArgString(info[1], "SocketWatcher.connect: dstIp");
  uint16_t port = static_cast<uint16_t>(ArgUint(info[2], "SocketWatcher.connect: dstPort", 1, 65535));
  SockAddr dst = ParseSockAddr(env, dstText, port, "SocketWatcher.connect: dstIp");
  std::string where = "connect " + SockAddrText(dst) + ": ";
  // srcPort (optional, 0: the kernel's choice): a client worker dials from its own range of local
  // ports, so that its capture filter takes its own connections' segments and no other worker's.
  const uint16_t srcPort = info.Length() > 3 && !info[3].IsUndefined()
                               ? static_cast<uint16_t>(ArgUint(info[3], "SocketWatcher.connect: srcPort", 0, 65535))
                               : 0;
  SockAddr src{};
  const bool bindSrc = !srcText.empty() || srcPort != 0;
  if (bindSrc) {
    const std::string anyText = dst.any.sa_family == AF_INET6 ? "::" : "0.0.0.0";
    src = ParseSockAddr(env, srcText.empty() ? anyText : srcText, srcPort, "SocketWatcher.connect: srcIp");
    if (src.any.sa_family != dst.any.sa_family) {
      ThrowTypeError(env, where + "the source address " + srcText + " is not of the destination's IP version");
    }
  }

  UniqueFd fd = NewTcpSocket(env, dst.any.sa_family, where);
  if (bindSrc && bind(fd.get(), &src.any, SockAddrLen(src)) != 0) {
    ThrowError(env, where + "bind " + (srcPort != 0 ? SockAddrText(src) : srcText) + ": " + ErrnoText(errno));
  }
  const int rc = connect(fd.get(), &dst.any, SockAddrLen(dst));
  const int err = rc == 0 ? 0 : errno;
  if (rc == 0 || err == EINPROGRESS || err == EINTR) {
    Add(env, fd.get(), Kind::kConnecting, where);
  } else {
    // Any outcome is reported as an event, immediate failures included, so callers handle one path;
    // but never from inside connect(): the caller does not have the fd yet.
    Event ev;
    ev.type = Event::Type::kFailed;
    ev.fd = fd.get();
    ev.err = err;
    ev.error = ErrnoText(err);
    ev.serial = Add(env, fd.get(), Kind::kFailed, where);
    pending_.push_back(std::move(ev));
    Schedule();
  }
  UpdateRef();
  return Napi::Number::New(env, fd.release());
}

void SocketWatcher::CloseFd(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(ArgInt(info[0], "SocketWatcher.close: fd", INT_MIN, INT_MAX));
  if (stopped_) return;
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  const Kind kind = it->second.kind;
  if (Busy(kind)) --busyFds_;
  fds_.erase(it);
  // Its queued event and backoff, if any, no longer match a socket and are dropped when due.
  Release(fd, kind);
  UpdateRef();
}

// For a connection JS gives back to the kernel (a probe to be served as plain TCP): without its filter
// the kernel takes the segments it dropped so far from the peer's retransmissions.
void SocketWatcher::HandBack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info[0], "SocketWatcher.handBack: fd", INT_MIN, INT_MAX));
  EnsureRunning(env, "handBack");
  const std::string where = "SocketWatcher.handBack(" + std::to_string(fd) + "): ";
  auto it = fds_.find(fd);
  if (it == fds_.end()) ThrowError(env, where + "not a socket of this watcher");
  if (it->second.kind != Kind::kEstablished) ThrowError(env, where + "not an established connection");
  int unused = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) != 0) {
    ThrowError(env, where + "SO_DETACH_FILTER: " + ErrnoText(errno));
  }
  // A probe served as plain TCP ends as plain TCP does, with a FIN.
  if (int err = SetAbortOnClose(fd, false)) ThrowError(env, where + "SO_LINGER: " + ErrnoText(err));
  // Established sockets are not in the epoll set and have no queued event: forgetting is all.
  fds_.erase(it);
}

void SocketWatcher::Shutdown(Caller caller) {
  if (stopped_) return;
  stopped_ = true;
  for (const auto& kv : fds_) Release(kv.first, kv.second.kind);
  fds_.clear();
  busyFds_ = 0;
  pending_.clear();
  backoff_.clear();
  loop_.Close(caller);
  epfd_ = -1;
  if (caller == Caller::kEnvTeardown) return;
  onEvent_.Reset();
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void SocketWatcher::UpdateRef() {
  const bool busy = busyFds_ > 0 || !pending_.empty();
  if (stopped_ || busy == loopRefd_) return;
  loop_.SetRef(busy);
  loopRefd_ = busy;
}

void SocketWatcher::Schedule() {
  if (stopped_) return;
  if (!pending_.empty()) {
    loop_.StartTimer(0);
    return;
  }
  uint64_t due = pollPaused_ ? loop_.Now() + kPollRetryMs : UINT64_MAX;
  for (const Backoff& b : backoff_) due = std::min(due, b.retryAt);
  if (due == UINT64_MAX) {
    loop_.StopTimer();
    return;
  }
  const uint64_t now = loop_.Now();
  loop_.StartTimer(due > now ? due - now : 0);
}

}  // namespace rsock
