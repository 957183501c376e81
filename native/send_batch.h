#pragma once
// sendmmsg() until a batch is out, never blocking. A failing message is reported and skipped (for UDP
// that is typically ECONNREFUSED, an ICMP error of an earlier datagram reported here); when the socket
// is out of buffer space the rest is given up at once, since retrying message by message would only
// burn syscalls.
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace rsock {

/** The socket's buffer is full: what is left of a batch would fail the same way. */
inline bool OutOfBuffer(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

/**
 * The loop itself, by message index: onSent(first, end) for messages the kernel took, onFailed(errno,
 * first, end) for messages it did not (one skipped message, or all that are left when OutOfBuffer).
 */
template <typename OnSent, typename OnFailed>
void SendMessages(int fd, mmsghdr* msgs, size_t n, OnSent onSent, OnFailed onFailed) {
  size_t i = 0;
  while (i < n) {
    int r = sendmmsg(fd, &msgs[i], static_cast<unsigned>(n - i), MSG_DONTWAIT);
    if (r > 0) {
      onSent(i, i + static_cast<size_t>(r));
      i += static_cast<size_t>(r);
      continue;
    }
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (OutOfBuffer(err)) {
      onFailed(err, i, n);
      break;
    }
    onFailed(err, i, i + 1);
    ++i;
  }
}

/** Messages sent; `onError(errno, messages)` is told what was lost. */
template <typename OnError>
uint32_t SendBatch(int fd, mmsghdr* msgs, size_t n, OnError onError) {
  uint32_t sent = 0;
  SendMessages(
      fd, msgs, n, [&sent](size_t first, size_t end) { sent += static_cast<uint32_t>(end - first); },
      [&onError](int err, size_t first, size_t end) { onError(err, end - first); });
  return sent;
}

}  // namespace rsock
