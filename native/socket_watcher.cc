#include "socket_watcher.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <memory>
#include <optional>

#include "args.h"
#include "bpf_filters.h"

namespace rsock {

namespace {

constexpr int kMaxAcceptsPerWake = 256;
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string RepairError(int err) {
  if (err == EPERM) {
    return "TCP_REPAIR is not permitted: taking over kernel TCP connections needs CAP_NET_ADMIN "
           "(run as root or grant the capability)";
  }
  return "TCP_REPAIR: " + ErrnoText(err);
}

// Socket set up the way both listen() and connect() need it; throws with `where` as prefix.
int NewTcpSocket(Napi::Env env, const std::string& where) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowError(env, where + "socket: " + ErrnoText(errno));
  FdGuard guard(fd);
  if (int err = ProbeRepair(fd)) ThrowError(env, where + RepairError(err));
  if (int err = SetReuseAddr(fd)) ThrowError(env, where + "SO_REUSEADDR: " + ErrnoText(err));
  // Before the handshake: attaching later lets injected data slip into the kernel's TCP.
  if (int err = AttachFilter(fd, kPayloadDropFilter)) {
    ThrowError(env, where + "SO_ATTACH_FILTER: " + ErrnoText(err));
  }
  return guard.release();
}

sockaddr_in MakeAddr(in_addr_t ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = ip;
  sa.sin_port = htons(port);
  return sa;
}

Napi::Object HandshakeToJs(Napi::Env env, const char* type, const WatcherEvent& ev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", type);
  if (ev.type == WatcherEvent::Type::kAccepted) o.Set("listenFd", ev.listenFd);
  o.Set("fd", ev.fd);
  o.Set("localIp", Ipv4ToString(ev.hs.local.sin_addr.s_addr));
  o.Set("localPort", ntohs(ev.hs.local.sin_port));
  o.Set("remoteIp", Ipv4ToString(ev.hs.remote.sin_addr.s_addr));
  o.Set("remotePort", ntohs(ev.hs.remote.sin_port));
  o.Set("sndNxt", Napi::Number::New(env, ev.hs.sndNxt));
  o.Set("rcvNxt", Napi::Number::New(env, ev.hs.rcvNxt));
  o.Set("rcvWscale", ev.hs.rcvWscale);
  o.Set("sndWscale", ev.hs.sndWscale);
  o.Set("mss", Napi::Number::New(env, ev.hs.mss));
  return o;
}

Napi::Object EventToJs(Napi::Env env, const WatcherEvent& ev) {
  switch (ev.type) {
    case WatcherEvent::Type::kAccepted:
      return HandshakeToJs(env, "accepted", ev);
    case WatcherEvent::Type::kConnected:
      return HandshakeToJs(env, "connected", ev);
    case WatcherEvent::Type::kFailed:
      break;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", "failed");
  o.Set("fd", ev.fd);
  o.Set("errno", ev.err);
  o.Set("error", ev.error);
  return o;
}

}  // namespace

void SocketWatcher::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "SocketWatcher",
                                    {
                                        InstanceMethod<&SocketWatcher::Listen>("listen"),
                                        InstanceMethod<&SocketWatcher::Connect>("connect"),
                                        InstanceMethod<&SocketWatcher::CloseFd>("close"),
                                        InstanceMethod<&SocketWatcher::Stop>("stop"),
                                    });
  exports.Set("SocketWatcher", ctor);
}

SocketWatcher::SocketWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketWatcher>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) ThrowTypeError(env, "SocketWatcher must be called with new");
  Napi::Function onEvent = ArgFunction(info[0], "SocketWatcher: onEvent");
  if (int err = wake_.Open()) ThrowError(env, "SocketWatcher: pipe: " + ErrnoText(err));
  // Unbounded queue: events are rare, and the worker must never block while owning sockets.
  tsfn_ = Tsfn::New(env, onEvent, "rsock.SocketWatcher", 0, 1, this);
  // Only pending work (a listener, a dial, an undelivered event) keeps the process alive.
  tsfn_.Unref(env);
  tsfnRefd_ = false;
  // Added after the TSFN so that it runs before the TSFN's own teardown hook.
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanupHook_ = true;
  // The watcher owns sockets; it must not be collected until stop().
  Ref();
  selfRef_ = true;
  try {
    thread_ = std::thread(&SocketWatcher::Run, this);
  } catch (const std::exception& e) {
    Shutdown(Caller::kJs);
    ThrowError(env, std::string("SocketWatcher: cannot start thread: ") + e.what());
  }
}

SocketWatcher::~SocketWatcher() { Shutdown(Caller::kFinalizer); }

void SocketWatcher::OnEnvCleanup(void* arg) {
  auto* self = static_cast<SocketWatcher*>(arg);
  self->cleanupHook_ = false;
  self->Shutdown(Caller::kEnvTeardown);
}

void SocketWatcher::EnsureRunning(Napi::Env env, const char* method) const {
  if (stopped_) ThrowError(env, std::string("SocketWatcher.") + method + ": watcher is stopped");
}

uint64_t SocketWatcher::AddLocked(int fd, Kind kind) {
  uint64_t serial = nextSerial_++;
  fds_[fd] = Entry{serial, kind, {}};
  return serial;
}

Napi::Value SocketWatcher::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureRunning(env, "listen");
  std::string ipText = ArgString(info[0], "SocketWatcher.listen: ip");
  in_addr_t ip = ParseIpv4(env, ipText, "SocketWatcher.listen: ip", true);
  uint16_t port = static_cast<uint16_t>(ArgUint(info[1], "SocketWatcher.listen: port", 0, 65535));
  int backlog = static_cast<int>(ArgUint(info[2], "SocketWatcher.listen: backlog", 1, 65535));
  std::string where = "listen " + Ipv4ToString(ip) + ":" + std::to_string(port) + ": ";

  FdGuard owned(NewTcpSocket(env, where));
  const int fd = owned.get();
  sockaddr_in sa = MakeAddr(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) ThrowError(env, where + ErrnoText(errno));
  if (listen(fd, backlog) != 0) ThrowError(env, where + ErrnoText(errno));
  {
    std::lock_guard<std::mutex> lock(mu_);
    AddLocked(fd, Kind::kListening);
  }
  owned.release();
  wake_.Notify();
  UpdateRef(env);
  return Napi::Number::New(env, fd);
}

Napi::Value SocketWatcher::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureRunning(env, "connect");
  std::string srcText = ArgString(info[0], "SocketWatcher.connect: srcIp");
  in_addr_t src = ParseIpv4(env, srcText, "SocketWatcher.connect: srcIp", true);
  std::string dstText = ArgString(info[1], "SocketWatcher.connect: dstIp");
  in_addr_t dst = ParseIpv4(env, dstText, "SocketWatcher.connect: dstIp", false);
  uint16_t port = static_cast<uint16_t>(ArgUint(info[2], "SocketWatcher.connect: dstPort", 1, 65535));
  std::string where = "connect " + dstText + ":" + std::to_string(port) + ": ";

  FdGuard guard(NewTcpSocket(env, where));
  const int fd = guard.get();
  if (src != htonl(INADDR_ANY)) {
    sockaddr_in sa = MakeAddr(src, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ThrowError(env, where + "bind " + srcText + ": " + ErrnoText(errno));
    }
  }
  sockaddr_in sa = MakeAddr(dst, port);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int err = rc == 0 ? 0 : errno;
  // Any outcome is reported as an event, immediate failures included, so callers handle one path.
  if (rc == 0 || err == EINPROGRESS || err == EINTR) {
    std::lock_guard<std::mutex> lock(mu_);
    AddLocked(fd, Kind::kConnecting);
  } else {
    auto events = std::make_unique<WatcherEvents>(1);
    WatcherEvent& ev = (*events)[0];
    ev.type = WatcherEvent::Type::kFailed;
    ev.fd = fd;
    ev.err = err;
    ev.error = ErrnoText(err);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ev.serial = AddLocked(fd, Kind::kFailed);
      ++inflight_;
    }
    if (tsfn_.NonBlockingCall(events.get()) != napi_ok) {
      std::lock_guard<std::mutex> lock(mu_);
      fds_.erase(fd);
      --inflight_;
      ThrowError(env, where + ErrnoText(err));  // guard closes fd
    }
    events.release();
  }
  guard.release();
  wake_.Notify();
  UpdateRef(env);
  return Napi::Number::New(env, fd);
}

void SocketWatcher::CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(ArgInt(info[0], "SocketWatcher.close: fd", INT_MIN, INT_MAX));
  if (stopped_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    fds_.erase(it);
    CloseSilently(fd);
  }
  wake_.Notify();
  UpdateRef(env);
}

void SocketWatcher::Stop(const Napi::CallbackInfo&) { Shutdown(Caller::kJs); }

void SocketWatcher::Shutdown(Caller caller) {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.Notify();
  tsfn_.Abort();  // undelivered events are dropped; their sockets are closed below
  if (thread_.joinable()) thread_.join();
  std::unordered_map<int, Entry> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned.swap(fds_);
    inflight_ = 0;
  }
  for (const auto& kv : owned) CloseSilently(kv.first);
  wake_.Close();
  if (caller == Caller::kEnvTeardown) return;
  if (cleanupHook_) {
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    cleanupHook_ = false;
  }
  if (selfRef_ && caller == Caller::kJs) Unref();
  selfRef_ = false;
}

void SocketWatcher::UpdateRef(Napi::Env env) {
  if (stopped_) return;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy = inflight_ > 0;
    for (auto it = fds_.begin(); !busy && it != fds_.end(); ++it) {
      busy = it->second.kind == Kind::kListening || it->second.kind == Kind::kConnecting;
    }
  }
  if (busy == tsfnRefd_) return;
  if (busy) {
    tsfn_.Ref(env);
  } else {
    tsfn_.Unref(env);
  }
  tsfnRefd_ = busy;
}

// ---- JS thread: delivery ----

void WatcherCallJs(Napi::Env env, Napi::Function onEvent, SocketWatcher* self, WatcherEvents* events) {
  std::unique_ptr<WatcherEvents> owned(events);
  if (env == nullptr || self == nullptr || events == nullptr) return;
  try {
    self->Deliver(env, onEvent, *events);
  } catch (const Napi::Error& e) {
    ReportUncaught(env, e);
  } catch (const std::exception& e) {
    ReportUncaught(env, Napi::Error::New(env, e.what()));
  }
}

// Events about sockets JS has closed meanwhile are dropped: the fd may already name another socket.
bool SocketWatcher::StillWanted(const WatcherEvent& ev) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(ev.fd);
  if (it == fds_.end() || it->second.serial != ev.serial) return false;
  if (ev.type == WatcherEvent::Type::kAccepted) {
    auto lit = fds_.find(ev.listenFd);
    if (lit == fds_.end() || lit->second.serial != ev.listenSerial) {
      // Its listener is gone, so nobody would ever close this connection.
      fds_.erase(it);
      CloseSilently(ev.fd);
      return false;
    }
  }
  return true;
}

void SocketWatcher::Deliver(Napi::Env env, Napi::Function onEvent, WatcherEvents& events) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_ -= std::min<uint64_t>(inflight_, events.size());
  }
  std::optional<Napi::Error> firstError;
  for (const WatcherEvent& ev : events) {
    // Checked per event: a callback may close sockets or stop the watcher.
    if (stopped_ || !StillWanted(ev)) continue;
    try {
      onEvent.Call({EventToJs(env, ev)});
    } catch (const Napi::Error& e) {
      // Keep delivering the rest; the first exception is rethrown as uncaught afterwards.
      if (!firstError) firstError = e;
    }
  }
  UpdateRef(env);
  if (firstError) throw *firstError;
}

// ---- worker thread ----

void SocketWatcher::Run() {
  // An exception must not end the thread (sockets would never be reported) nor unwind out of it.
  for (;;) {
    try {
      Loop();
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void SocketWatcher::Loop() {
  std::vector<pollfd> pfds;
  std::vector<uint64_t> serials;
  for (;;) {
    int timeoutMs = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      pfds.assign(1, pollfd{wake_.ReadFd(), POLLIN, 0});
      serials.assign(1, 0);
      const Clock::time_point now = Clock::now();
      for (const auto& kv : fds_) {
        const Entry& e = kv.second;
        short want = e.kind == Kind::kListening ? POLLIN : e.kind == Kind::kConnecting ? POLLOUT : 0;
        if (!want) continue;
        if (e.kind == Kind::kListening && e.retryAt > now) {
          auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.retryAt - now).count() + 1;
          timeoutMs = timeoutMs < 0 ? static_cast<int>(ms) : std::min(timeoutMs, static_cast<int>(ms));
          continue;
        }
        pfds.push_back(pollfd{kv.first, want, 0});
        serials.push_back(e.serial);
      }
    }
    // Polling may race with close() in JS; that is harmless because nothing is done with a ready fd
    // until its serial has been checked under the lock.
    int n = poll(pfds.data(), pfds.size(), timeoutMs);
    if (n < 0) {
      if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (pfds[0].revents) wake_.Drain();
    auto events = std::make_unique<WatcherEvents>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      for (size_t i = 1; i < pfds.size(); ++i) {
        if (!pfds[i].revents) continue;
        auto it = fds_.find(pfds[i].fd);
        if (it == fds_.end() || it->second.serial != serials[i]) continue;
        if (it->second.kind == Kind::kListening) {
          HandleListener(pfds[i].fd, serials[i], *events);
        } else if (it->second.kind == Kind::kConnecting) {
          HandleConnecting(pfds[i].fd, it->second, pfds[i].revents, *events);
        }
      }
      inflight_ += events->size();
    }
    if (events->empty()) continue;
    if (tsfn_.BlockingCall(events.get()) != napi_ok) return;  // stopping
    events.release();
  }
}

void SocketWatcher::HandleListener(int listenFd, uint64_t listenSerial, WatcherEvents& out) {
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    int fd = accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // Out of descriptors or memory: the listener stays readable, so polling it again at once
        // would spin.
        fds_[listenFd].retryAt = Clock::now() + kAcceptBackoff;
      }
      return;
    }
    WatcherEvent ev;
    const char* step = "SO_ATTACH_FILTER";
    // Silence the socket first, then read its state; the order shrinks the time in which an injected
    // pure ACK could still draw a reply.
    int err = AttachFilter(fd, kDropAllFilter);
    if (err == 0) err = LearnHandshake(fd, &ev.hs, &step);
    if (err != 0) {
      // listen() proved TCP_REPAIR works, so this means the connection died between handshake and
      // accept (getpeername fails). There is nothing to hand over; the peer's dial times out.
      CloseSilently(fd);
      continue;
    }
    ev.type = WatcherEvent::Type::kAccepted;
    ev.fd = fd;
    ev.serial = AddLocked(fd, Kind::kEstablished);
    ev.listenFd = listenFd;
    ev.listenSerial = listenSerial;
    out.push_back(std::move(ev));
  }
}

void SocketWatcher::HandleConnecting(int fd, Entry& entry, short revents, WatcherEvents& out) {
  int soErr = 0;
  socklen_t len = sizeof soErr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len) != 0) soErr = errno;
  WatcherEvent ev;
  ev.fd = fd;
  ev.serial = entry.serial;
  if (soErr == 0 && !(revents & POLLOUT)) {
    if (!(revents & (POLLERR | POLLHUP | POLLNVAL))) return;  // not decided yet
    soErr = ECONNABORTED;
  }
  if (soErr == 0) {
    const char* step = "SO_ATTACH_FILTER";
    int err = AttachFilter(fd, kDropAllFilter);
    if (err == 0) err = LearnHandshake(fd, &ev.hs, &step);
    if (err == 0) {
      entry.kind = Kind::kEstablished;
      ev.type = WatcherEvent::Type::kConnected;
      out.push_back(std::move(ev));
      return;
    }
    ev.err = err;
    ev.error = std::string(step) + ": " + ErrnoText(err);
  } else {
    ev.err = soErr;
    ev.error = ErrnoText(soErr);
  }
  entry.kind = Kind::kFailed;
  ev.type = WatcherEvent::Type::kFailed;
  out.push_back(std::move(ev));
}

}  // namespace rsock
