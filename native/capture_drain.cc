// The capture's poll callback, on the JS thread: drain the socket into batches and hand them to JS.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "args.h"
#include "capture.h"
#include "capture_socket.h"
#include "records.h"

namespace rsock {

namespace {

// Full batches delivered per wake-up before the loop gets a turn: the capture runs on the JS
// thread, and a socket that never empties must not starve timers and sockets. The descriptor stays
// readable (libuv polls level-triggered), so the next loop iteration comes straight back.
constexpr uint32_t kFlushesPerWake = 4;

// Error wake-ups (POLLERR) normally clear once the error is read; this many in a row, each within
// kErrorSpinMs of the last, mean the error does not clear: give up.
constexpr uint32_t kErrorSpinLimit = 10;
constexpr uint64_t kErrorSpinMs = 100;

// While its device is down the socket hears nothing, not even the device being deleted, so it is
// checked at this interval until it is up again or gone.
constexpr uint64_t kDeviceCheckMs = 200;

}  // namespace

void Capture::OnLoopPoll(int status) {
  // Timers and other callbacks ran JS since the last batch; Drain checks the arrays before it writes.
  arrays_.Lent();
  std::string error;
  if (status >= 0) {
    if (Drain(kFlushesPerWake, &error) == DrainResult::kError) Fail(error);
    return;
  }
  // libuv reports POLLERR as UV_EBADF and has already stopped the handle. The socket's error (the
  // device went down or away) comes out of recvmmsg ahead of the packets, which are delivered too.
  const DrainResult r = Drain(UINT32_MAX, &error);
  if (r == DrainResult::kGone) return;
  if (r != DrainResult::kError) {
    const uint64_t now = loop_.Now();
    errorWakeups_ = now - lastErrorWakeup_ < kErrorSpinMs ? errorWakeups_ + 1 : 1;
    lastErrorWakeup_ = now;
    if (errorWakeups_ < kErrorSpinLimit && loop_.StartPolling() == 0) return;
    error = "capture on \"" + device_ + "\": poll: " + uv_strerror(status);
  }
  Fail(error);
}

void Capture::OnLoopTimer() {
  if (!watchingDevice_) return;
  switch (CheckDevice(device_, ifindex_)) {
    case DeviceState::kUp:  // the kernel has bound the socket again
      watchingDevice_ = false;
      return;
    case DeviceState::kDown:
      loop_.StartTimer(kDeviceCheckMs);
      return;
    case DeviceState::kGone:
      watchingDevice_ = false;
      Fail("capture on \"" + device_ + "\": The interface disappeared");
      return;
  }
}

// ENETDOWN: the device went down (the socket resumes by itself when it comes up) or was deleted
// (the socket is dead). False with *error set when it is gone.
bool Capture::DeviceDown(std::string* error) {
  if (CheckDevice(device_, ifindex_) == DeviceState::kGone) {
    *error = "capture on \"" + device_ + "\": The interface disappeared";
    return false;
  }
  watchingDevice_ = true;
  loop_.StartTimer(kDeviceCheckMs);
  return true;
}

// Reads what the socket holds, delivering every maxBatch packets and once more when it is empty: a
// partial batch is never held back waiting for company. Stops after maxFlushes full batches
// (kBudget) so that the rest of the loop gets a turn.
Capture::DrainResult Capture::Drain(uint32_t maxFlushes, std::string* error) {
  uint32_t flushes = 0;
  for (;;) {
    // Never write through a pointer JS may have detached (a no-op unless JS ran since the last check).
    if (!RefreshBuffers()) return DrainResult::kGone;
    // The batch ends at maxBatch packets, or when the buffer could not take a full snaplen more.
    const size_t room = (dataCapacity_ - used_) / snapshot_;
    const uint32_t want = static_cast<uint32_t>(std::min<size_t>({maxBatch_ - count_, room, msgs_.size()}));
    if (want == 0) {
      if (!Flush()) return DrainResult::kGone;
      if (++flushes >= maxFlushes) return DrainResult::kBudget;
      continue;
    }
    // Each packet lands a whole snaplen apart, past the packets already in the batch; Take() then
    // packs their IP parts together. Most wake-ups start an empty batch in the same buffer, and
    // find the iovecs already pointing where they should.
    uint8_t* const base = arrays_.data + used_;
    if (base != iovBase_ || want > iovReady_) {
      for (uint32_t i = 0; i < want; ++i) iovs_[i].iov_base = base + size_t{i} * snapshot_;
      iovBase_ = base;
      iovReady_ = want;
    }
    const int n = recvmmsg(fd_, msgs_.data(), want, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      const int err = errno;
      bool ok = err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
      if (err == ENETDOWN) {
        ok = DeviceDown(error);
      } else if (!ok) {
        *error = "capture on \"" + device_ + "\": recvmmsg: " + ErrnoText(err);
      }
      // Deliver what came before the error.
      if (count_ > 0 && !Flush()) return DrainResult::kGone;
      return ok ? DrainResult::kEmpty : DrainResult::kError;
    }
    Take(static_cast<uint32_t>(n), used_);
    if (static_cast<uint32_t>(n) < want) {  // the socket is empty
      if (count_ > 0 && !Flush()) return DrainResult::kGone;
      return DrainResult::kEmpty;
    }
  }
}

// Records the n packets recvmmsg put at base + i * snaplen, moving each IP packet down to follow
// the previous one: the batch stays packed, and a batch of small packets is not cut short by the
// snaplen-sized room each one was read into.
void Capture::Take(uint32_t n, size_t base) {
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* bytes = arrays_.data + base + size_t{i} * snapshot_;
    const uint32_t caplen = std::min<uint32_t>(msgs_[i].msg_len, snapshot_);
    const int off = IpOffset(link_, bytes, caplen);
    if (off < 0) {
      ++skipped_;
      continue;
    }
    const uint8_t* ip = bytes + off;
    const uint32_t avail = caplen - static_cast<uint32_t>(off);
    // IPv6's payload length leaves out its 40-byte header.
    const bool v6 = (ip[0] >> 4) == 6;
    const uint32_t totalLength = v6 ? 40 + ((static_cast<uint32_t>(ip[4]) << 8) | ip[5])
                                    : (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
    // Trims link-layer padding of short frames. A packet cut short by snaplen (a GRO-merged giant) is
    // delivered as captured: its total length, larger than what arrives, tells the protocol how much
    // it lost. A total length of 0 (BIG TCP; IPv6 uses a jumbogram option) also keeps everything captured.
    const uint32_t len = (totalLength >= (v6 ? 41u : 20u) && totalLength <= avail) ? totalLength : avail;
    // Never forward: used_ <= base + i * snaplen, so the move only goes down (memmove: it may overlap).
    if (arrays_.data + used_ != ip) std::memmove(arrays_.data + used_, ip, len);
    uint32_t* m = arrays_.meta + static_cast<size_t>(count_) * capture_rec::kStride;
    m[capture_rec::kOffset] = static_cast<uint32_t>(used_);
    m[capture_rec::kLength] = len;
    ++count_;
    used_ += len;
  }
}

bool Capture::Flush() {
  napi_env env = Env();
  const uint32_t count = count_;
  count_ = 0;
  used_ = 0;
  ++batches_;
  delivered_ += count;
  Napi::HandleScope scope(env);
  napi_value argv[3] = {arrays_.DataValue(env), arrays_.MetaValue(env), Napi::Number::New(env, count)};
  arrays_.Lent();
  return loop_.Call(Value(), onBatch_.Value(), 3, argv);
}

// AcquireBuffers for the poll callback: a failure (out of memory) ends the capture through onError
// rather than leaving a readable descriptor that nothing reads.
bool Capture::RefreshBuffers() {
  std::string error;
  try {
    AcquireBuffers();
    return true;
  } catch (const std::exception& e) {
    error = e.what();
  }
  Fail("capture on \"" + device_ + "\": cannot allocate the batch buffer" + (error.empty() ? "" : ": " + error));
  return false;
}

bool Capture::Fail(const std::string& message) {
  // A dead capture stops polling, so it no longer keeps the process alive waiting for close().
  loop_.StopPolling();
  loop_.StopTimer();
  watchingDevice_ = false;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value argv[1] = {Napi::Error::New(env, message).Value()};
  return loop_.Call(Value(), onError_.Value(), 1, argv);
}

}  // namespace rsock
