#pragma once
// sendmmsg() until a batch is out, never blocking. A failing message is counted and skipped (for UDP
// that is typically ECONNREFUSED, an ICMP error of an earlier datagram reported here); when the socket
// is out of buffer space the rest is dropped at once, since retrying message by message would only
// burn syscalls. `onError(errno, messages)` is told what was lost.
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace rsock {

template <typename OnError>
uint32_t SendBatch(int fd, mmsghdr* msgs, size_t n, OnError onError) {
  uint32_t sent = 0;
  size_t i = 0;
  while (i < n) {
    int r = sendmmsg(fd, &msgs[i], static_cast<unsigned>(n - i), MSG_DONTWAIT);
    if (r > 0) {
      sent += static_cast<uint32_t>(r);
      i += static_cast<size_t>(r);
      continue;
    }
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      onError(err, n - i);
      break;
    }
    onError(err, size_t{1});
    ++i;
  }
  return sent;
}

}  // namespace rsock
