// Self-pipe used to interrupt a worker thread blocked in poll(). Both ends are non-blocking: a full
// pipe already means "wake up", so a failed write loses nothing.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace rsock {

class WakePipe {
 public:
  WakePipe() = default;
  WakePipe(const WakePipe&) = delete;
  WakePipe& operator=(const WakePipe&) = delete;
  ~WakePipe() { Close(); }

  // Returns 0 or an errno value.
  int Open() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
    read_ = fds[0];
    write_ = fds[1];
    return 0;
  }

  int ReadFd() const { return read_; }

  void Notify() const {
    if (write_ < 0) return;
    const char b = 1;
    ssize_t r;
    do r = write(write_, &b, 1);
    while (r < 0 && errno == EINTR);
  }

  void Drain() const {
    char buf[64];
    while (read(read_, buf, sizeof buf) > 0) {
    }
  }

  void Close() {
    if (read_ >= 0) close(read_);
    if (write_ >= 0) close(write_);
    read_ = write_ = -1;
  }

 private:
  int read_ = -1;
  int write_ = -1;
};

}  // namespace rsock
