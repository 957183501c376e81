#include "kernel_tcp.h"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace rsock {

namespace {

int SetInt(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value) == 0 ? 0 : errno;
}

int GetInt(int fd, int level, int opt, int* value) {
  socklen_t len = sizeof *value;
  return getsockopt(fd, level, opt, value, &len) == 0 ? 0 : errno;
}

int QueueSeq(int fd, int queue, uint32_t* seq) {
  if (int err = SetInt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)) return err;
  socklen_t len = sizeof *seq;
  return getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len) == 0 ? 0 : errno;
}

}  // namespace

int AttachFilter(int fd, const sock_filter* prog, unsigned short len) {
  sock_fprog fprog{len, const_cast<sock_filter*>(prog)};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) == 0 ? 0 : errno;
}

int SetReuseAddr(int fd) { return SetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1); }

int SetAbortOnClose(int fd, bool on) {
  linger l{};
  l.l_onoff = on ? 1 : 0;
  l.l_linger = 0;
  return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0 : errno;
}

int ProbeRepair(int fd) {
  if (int err = SetInt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) return err;
  return SetInt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
}

int LearnHandshake(int fd, HandshakeState* out, const char** step) {
  *step = "TCP_REPAIR";
  if (int err = SetInt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)) return err;
  *step = "TCP_QUEUE_SEQ";
  int err = QueueSeq(fd, TCP_SEND_QUEUE, &out->sndNxt);
  if (err == 0) err = QueueSeq(fd, TCP_RECV_QUEUE, &out->rcvNxt);
  if (err == 0) {
    // Only readable in repair mode.
    *step = "TCP_REPAIR_WINDOW";
    tcp_repair_window win{};
    socklen_t len = sizeof win;
    err = getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &win, &len) == 0 ? 0 : errno;
    out->rcvWnd = win.rcv_wnd;
  }
  // TCP_REPAIR_OFF would send a window probe; _NO_WP leaves the wire untouched.
  int offErr = SetInt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
  if (err) return err;
  *step = "TCP_REPAIR off";
  if (offErr) return offErr;
  // Leaving repair mode resets sk_reuse; without it a later bind() to this port would fail while
  // the socket lives.
  *step = "SO_REUSEADDR";
  if ((err = SetReuseAddr(fd))) return err;

  *step = "TCP_INFO";
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno;
  out->rcvWscale = info.tcpi_rcv_wscale;
  out->sndWscale = info.tcpi_snd_wscale;
  out->mss = info.tcpi_snd_mss;
  out->tsOk = (info.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;

  // The kernel's TS clock plus this connection's offset: what its next segment would carry. Linux
  // (6.7 on) uses the value's lowest bit to tell a microsecond clock (1) from the usual millisecond
  // one (0), so on a millisecond connection this reads up to 1 below what goes on the wire.
  *step = "TCP_TIMESTAMP";
  int value = 0;
  if ((err = GetInt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &value))) return err;
  out->tsVal = static_cast<uint32_t>(value);
  *step = "getsockname";
  SockAddr local{};
  len = sizeof local;
  if (getsockname(fd, &local.any, &len) != 0) return errno;
  *step = "getpeername";
  SockAddr remote{};
  len = sizeof remote;
  if (getpeername(fd, &remote.any, &len) != 0) return errno;
  out->local = Unmapped(local);
  out->remote = Unmapped(remote);
  // The socket's own TTL, else the namespace's net.ipv4.ip_default_ttl; for IPv6 the hop limit
  // (the route's or net.ipv6.conf.*.hop_limit unless set). A dual-stack socket's IPv4 connection
  // sends with IP_TTL.
  if (out->remote.any.sa_family == AF_INET6) {
    *step = "IPV6_UNICAST_HOPS";
    if ((err = GetInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &value))) return err;
  } else {
    *step = "IP_TTL";
    if ((err = GetInt(fd, IPPROTO_IP, IP_TTL, &value))) return err;
  }
  out->ttl = static_cast<uint8_t>(value);
  return 0;
}

void CloseSilently(int fd) {
  int on = TCP_REPAIR_ON;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on);
  close(fd);
}

}  // namespace rsock
