// The socket watcher's loop side, on the JS thread: completed handshakes become events for JS.
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

#include "args.h"
#include "bpf_filters.h"
#include "socket_watcher.h"

namespace rsock {

namespace {

constexpr int kMaxEvents = 64;
constexpr int kMaxAcceptsPerWake = 256;
// A listener out of descriptors stays readable; polling it again at once would spin.
constexpr uint64_t kAcceptBackoffMs = 100;

// IPv4 addresses as unsigned 32-bit numbers in host order, like every other record handed to JS; 0
// for IPv6, whose address JS reads from the text.
Napi::Number IpToJs(Napi::Env env, const SockAddr& sa) {
  return Napi::Number::New(env, sa.any.sa_family == AF_INET ? ntohl(sa.v4.sin_addr.s_addr) : 0);
}

}  // namespace

bool SocketWatcher::Deliver(const Event& ev) {
  // A queued event whose socket JS has closed meanwhile is dropped: the fd may name another socket.
  if (!Alive(ev.fd, ev.serial)) return true;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object o = Napi::Object::New(env);
  if (ev.type == Event::Type::kFailed) {
    o.Set("type", "failed");
    o.Set("fd", ev.fd);
    o.Set("errno", ev.err);
    o.Set("error", ev.error);
  } else {
    o.Set("type", ev.type == Event::Type::kAccepted ? "accepted" : "connected");
    if (ev.type == Event::Type::kAccepted) o.Set("listenFd", ev.listenFd);
    o.Set("fd", ev.fd);
    o.Set("ipVersion", ev.hs.remote.any.sa_family == AF_INET6 ? 6 : 4);
    o.Set("localIp", IpToJs(env, ev.hs.local));
    o.Set("localAddr", IpText(ev.hs.local));
    o.Set("localPort", PortOf(ev.hs.local));
    o.Set("remoteIp", IpToJs(env, ev.hs.remote));
    o.Set("remoteAddr", IpText(ev.hs.remote));
    o.Set("remotePort", PortOf(ev.hs.remote));
    o.Set("sndNxt", Napi::Number::New(env, ev.hs.sndNxt));
    o.Set("rcvNxt", Napi::Number::New(env, ev.hs.rcvNxt));
    o.Set("rcvWscale", ev.hs.rcvWscale);
    o.Set("sndWscale", ev.hs.sndWscale);
    o.Set("mss", Napi::Number::New(env, ev.hs.mss));
    o.Set("tsOk", Napi::Boolean::New(env, ev.hs.tsOk));
    o.Set("tsVal", Napi::Number::New(env, ev.hs.tsVal));
    o.Set("ttl", ev.hs.ttl);
    o.Set("rcvWnd", Napi::Number::New(env, ev.hs.rcvWnd));
  }
  napi_value argv[1] = {o};
  return loop_.Call(Value(), onEvent_.Value(), 1, argv);
}

void SocketWatcher::OnLoopPoll(int status) {
  if (status < 0) {
    // Not expected from an epoll descriptor, and libuv has stopped polling: try again shortly.
    pollPaused_ = true;
    Schedule();
    return;
  }
  std::array<epoll_event, kMaxEvents> events;
  int n;
  do n = epoll_wait(epfd_, events.data(), kMaxEvents, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; ++i) {
    const int fd = static_cast<int>(static_cast<uint32_t>(events[i].data.u64));
    const uint32_t serial = static_cast<uint32_t>(events[i].data.u64 >> 32);
    auto it = fds_.find(fd);
    if (it == fds_.end() || it->second.serial != serial) continue;  // closed by an earlier callback
    const bool alive = it->second.kind == Kind::kListening ? HandleListener(fd, serial)
                       : it->second.kind == Kind::kConnecting ? HandleConnecting(fd, serial, events[i].events)
                                                                : true;
    if (!alive) return;
  }
  Schedule();
  UpdateRef();
}

void SocketWatcher::OnLoopTimer() {
  std::vector<Event> due;
  due.swap(pending_);
  for (const Event& ev : due) {
    if (!Deliver(ev)) return;
  }
  const uint64_t now = loop_.Now();
  std::vector<Backoff> waiting;
  for (const Backoff& b : backoff_) {
    if (!Alive(b.fd, b.serial)) continue;
    if (b.retryAt > now) {
      waiting.push_back(b);
      continue;
    }
    (void)Watch(EPOLL_CTL_MOD, b.fd, b.serial, EPOLLIN);
  }
  backoff_.swap(waiting);
  if (pollPaused_ && loop_.StartPolling() == 0) pollPaused_ = false;
  Schedule();
  UpdateRef();
}

namespace {

// A finished handshake becomes ours: silence the socket first, then read its state (the order shrinks
// the time in which an injected pure ACK could still draw a reply), and make a close that is not
// silent (the process died) an abort, so no orphan keeps the 4-tuple. `step` names what failed.
int TakeOver(int fd, HandshakeState* hs, const char** step) {
  *step = "SO_ATTACH_FILTER";
  if (int err = AttachFilter(fd, kDropAllFilter)) return err;
  if (int err = LearnHandshake(fd, hs, step)) return err;
  *step = "SO_LINGER";
  return SetAbortOnClose(fd, true);
}

}  // namespace

bool SocketWatcher::HandleListener(int listenFd, uint32_t listenSerial) {
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    const int fd = accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        (void)Watch(EPOLL_CTL_MOD, listenFd, listenSerial, 0);
        backoff_.push_back(Backoff{listenFd, listenSerial, loop_.Now() + kAcceptBackoffMs});
      }
      return true;
    }
    Event ev;
    const char* step = nullptr;
    int err = TakeOver(fd, &ev.hs, &step);
    if (err != 0) {
      // listen() proved TCP_REPAIR works, so this means the connection died between handshake and
      // accept (getpeername fails). There is nothing to hand over; the peer's dial times out.
      CloseSilently(fd);
      continue;
    }
    ev.type = Event::Type::kAccepted;
    ev.fd = fd;
    ev.serial = NextSerial();
    fds_[fd] = Entry{ev.serial, Kind::kEstablished};
    ev.listenFd = listenFd;
    if (!Deliver(ev)) return false;
    if (!Alive(listenFd, listenSerial)) return true;  // JS closed the listener
  }
  return true;
}

bool SocketWatcher::HandleConnecting(int fd, uint32_t serial, uint32_t revents) {
  int soErr = 0;
  socklen_t len = sizeof soErr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soErr, &len) != 0) soErr = errno;
  if (soErr == 0 && !(revents & EPOLLOUT)) {
    if (!(revents & (EPOLLERR | EPOLLHUP))) return true;  // not decided yet
    soErr = ECONNABORTED;
  }
  Event ev;
  ev.fd = fd;
  ev.serial = serial;
  ev.type = Event::Type::kFailed;
  if (soErr == 0) {
    const char* step = nullptr;
    int err = TakeOver(fd, &ev.hs, &step);
    if (err == 0) {
      ev.type = Event::Type::kConnected;
    } else {
      ev.err = err;
      ev.error = std::string(step) + ": " + ErrnoText(err);
    }
  } else {
    ev.err = soErr;
    ev.error = ErrnoText(soErr);
  }
  SetKind(fds_[fd], fd, ev.type == Event::Type::kConnected ? Kind::kEstablished : Kind::kFailed);
  return Deliver(ev);
}

}  // namespace rsock
