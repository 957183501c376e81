// Operations on kernel TCP sockets whose handshake we borrow. Plain syscalls, no N-API; all return 0
// or an errno value.
#pragma once

#include <linux/filter.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

#include "net_util.h"

namespace rsock {

struct HandshakeState {
  SockAddr local;   // unmapped: an IPv4 peer of a dual-stack socket is AF_INET here
  SockAddr remote;
  uint32_t sndNxt;     // own ISN+1
  uint32_t rcvNxt;     // peer ISN+1
  uint8_t rcvWscale;   // what we advertised
  uint8_t sndWscale;   // what the peer advertised
  uint32_t mss;
  bool tsOk;           // timestamps negotiated
  uint32_t tsVal;      // the TSval the kernel would send now (TCP_TIMESTAMP)
  uint8_t ttl;         // the TTL the kernel sends with (IP_TTL; IPv6: IPV6_UNICAST_HOPS)
  uint32_t rcvWnd;     // the receive window the kernel last advertised, in bytes (TCP_REPAIR_WINDOW)
};

int AttachFilter(int fd, const sock_filter* prog, unsigned short len);
template <size_t N>
int AttachFilter(int fd, const sock_filter (&prog)[N]) {
  return AttachFilter(fd, prog, static_cast<unsigned short>(N));
}

// Fails early (EPERM) when TCP_REPAIR is not allowed, i.e. without CAP_NET_ADMIN. Only valid on a
// socket that is not listening yet; leaves it as it found it apart from SO_REUSEADDR, which leaving
// repair mode clears and the caller sets afterwards.
int ProbeRepair(int fd);

// Reads both next sequence numbers and the receive window through TCP_REPAIR, window scales, MSS
// and whether timestamps were negotiated through TCP_INFO, the current TSval, the TTL and both
// addresses. `step` names the call that failed.
int LearnHandshake(int fd, HandshakeState* out, const char** step);

// Closes without putting anything on the wire: a socket in repair mode skips FIN and RST on
// close(). Listening sockets refuse repair mode; for them a plain close is silent anyway.
void CloseSilently(int fd);

int SetReuseAddr(int fd);

// SO_LINGER {1, 0}: a close() that is not silent (the process died; CloseSilently goes through repair
// mode and stays silent anyway) aborts the socket with an RST instead of a FIN. Without it the dead
// process's sockets linger as orphans in FIN-WAIT-1, still holding their 4-tuples behind the drop-all
// filter, so the peer's probes meet silence instead of the restarted host's RST.
int SetAbortOnClose(int fd, bool on);

}  // namespace rsock
