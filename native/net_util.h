#pragma once
// Small socket set-up steps shared by the bindings that open sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace rsock {

inline sockaddr_in MakeAddr(in_addr_t networkOrderIp, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = networkOrderIp;
  sa.sin_port = htons(port);
  return sa;
}

// An IPv4 or IPv6 socket address.
union SockAddr {
  sockaddr any;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

inline socklen_t SockAddrLen(const SockAddr& a) {
  return a.any.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// ::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 peer, becomes the IPv4 address it is.
inline SockAddr Unmapped(const SockAddr& a) {
  if (a.any.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a.v6.sin6_addr)) return a;
  SockAddr out{};
  out.v4.sin_family = AF_INET;
  out.v4.sin_port = a.v6.sin6_port;
  std::memcpy(&out.v4.sin_addr, a.v6.sin6_addr.s6_addr + 12, 4);
  return out;
}

// IPv4 or IPv6 text (no brackets) and a port; false when the text is neither.
inline bool MakeSockAddr(const std::string& text, uint16_t port, SockAddr* out) {
  *out = SockAddr{};
  if (inet_pton(AF_INET, text.c_str(), &out->v4.sin_addr) == 1) {
    out->v4.sin_family = AF_INET;
    out->v4.sin_port = htons(port);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &out->v6.sin6_addr) == 1) {
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = htons(port);
    return true;
  }
  return false;
}

inline std::string IpText(const SockAddr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.any.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &a.v6.sin6_addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET, &a.v4.sin_addr, buf, sizeof buf);
  }
  return buf;
}

inline uint16_t PortOf(const SockAddr& a) {
  return ntohs(a.any.sa_family == AF_INET6 ? a.v6.sin6_port : a.v4.sin_port);
}

// "1.2.3.4:80" or "[2001:db8::1]:80".
inline std::string SockAddrText(const SockAddr& a) {
  const std::string ip = IpText(a);
  return (a.any.sa_family == AF_INET6 ? "[" + ip + "]" : ip) + ":" + std::to_string(PortOf(a));
}

// The FORCE variant (SO_RCVBUFFORCE, SO_SNDBUFFORCE) lifts rmem_max/wmem_max but needs CAP_NET_ADMIN;
// without it the plain option gets what the limit allows.
inline void SetSocketBuffer(int fd, int forceOpt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &bytes, sizeof bytes) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

}  // namespace rsock
