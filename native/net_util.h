#pragma once
// Small socket set-up steps shared by the bindings that open sockets.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace rsock {

inline sockaddr_in MakeAddr(in_addr_t networkOrderIp, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = networkOrderIp;
  sa.sin_port = htons(port);
  return sa;
}

// The FORCE variant (SO_RCVBUFFORCE, SO_SNDBUFFORCE) lifts rmem_max/wmem_max but needs CAP_NET_ADMIN;
// without it the plain option gets what the limit allows.
inline void SetSocketBuffer(int fd, int forceOpt, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &bytes, sizeof bytes) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

}  // namespace rsock
