// The capture's poll callback, on the JS thread: drain the ring into batches and hand them to JS.
#include <algorithm>
#include <cstring>

#include "capture.h"
#include "link_layer.h"
#include "records.h"

namespace rsock {

namespace {

// Full batches delivered per wake-up before the loop gets a turn: the capture runs on the JS
// thread, and a ring that never empties must not starve timers and sockets. The descriptor stays
// readable (libuv polls level-triggered), so the next loop iteration comes straight back.
constexpr uint32_t kFlushesPerWake = 4;

// Error wake-ups (POLLERR) that libpcap shrugs off are normal when the interface goes down; this
// many in a row, each within kErrorSpinMs of the last, mean the error does not clear: give up.
constexpr uint32_t kErrorSpinLimit = 10;
constexpr uint64_t kErrorSpinMs = 100;

}  // namespace

void Capture::OnLoopPoll(int status) {
  // Every wake-up: JS may have detached the arrays since the last batch; never write through a stale pointer.
  if (!RefreshBuffers()) return;
  std::string error;
  if (status >= 0) {
    if (Drain(kFlushesPerWake, &error) == DrainResult::kError) Fail(error);
    return;
  }
  // libuv reports POLLERR as UV_EBADF and has already stopped the handle. libpcap knows the reason
  // (interface down or gone): deliver what the ring still holds, then ask it. It answers when it
  // finds the ring empty, so a second round is needed when the first one found packets.
  for (int round = 0; round < 2; round++) {
    DrainResult r = Drain(UINT32_MAX, &error);
    if (r == DrainResult::kGone) return;
    if (r == DrainResult::kError) break;
  }
  if (error.empty()) {
    // libpcap took the socket error and carries on: an interface that went down may come up again
    // and the ring stays bound to it. Poll again, unless errors keep coming straight back.
    const uint64_t now = loop_.Now();
    errorWakeups_ = now - lastErrorWakeup_ < kErrorSpinMs ? errorWakeups_ + 1 : 1;
    lastErrorWakeup_ = now;
    if (errorWakeups_ < kErrorSpinLimit && loop_.StartPolling() == 0) return;
    error = "capture on \"" + device_ + "\": poll: " + uv_strerror(status);
  }
  Fail(error);
}

// Reads what the ring holds, delivering every maxBatch packets and once more when the ring is
// empty: a partial batch is never held back waiting for company. Stops after maxFlushes full
// batches (kBudget) so that the rest of the loop gets a turn.
Capture::DrainResult Capture::Drain(uint32_t maxFlushes, std::string* error) {
  uint32_t flushes = 0;
  for (;;) {
    // The batch ends at maxBatch packets, or when the buffer could not take a full snaplen more.
    const size_t room = (dataCapacity_ - used_) / snapshot_;
    const int want = static_cast<int>(std::min<size_t>(maxBatch_ - count_, room));
    if (want == 0) {
      if (!Flush()) return DrainResult::kGone;
      if (++flushes >= maxFlushes) return DrainResult::kBudget;
      continue;
    }
    const int n = pcap_dispatch(pcap_, want, OnPacket, reinterpret_cast<u_char*>(this));
    if (n < 0 && n != PCAP_ERROR_BREAK) {
      // The interface went down or away: deliver what came before the error.
      *error = "capture on \"" + device_ + "\": " + pcap_geterr(pcap_);
      if (count_ > 0 && !Flush()) return DrainResult::kGone;
      return DrainResult::kError;
    }
    if (n < want) {  // the ring is empty
      if (count_ > 0 && !Flush()) return DrainResult::kGone;
      return DrainResult::kEmpty;
    }
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
  napi_value argv[3] = {arrays_.DataValue(), arrays_.MetaValue(), Napi::Number::New(env, count)};
  if (!loop_.Call(Value(), onBatch_.Value(), 3, argv)) return false;
  return RefreshBuffers();
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
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value argv[1] = {Napi::Error::New(env, message).Value()};
  return loop_.Call(Value(), onError_.Value(), 1, argv);
}

void Capture::OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto* self = reinterpret_cast<Capture*>(user);
  int off = IpOffset(self->linkType_, bytes, h->caplen);
  if (off < 0) {
    ++self->skipped_;
    return;
  }
  const uint8_t* ip = bytes + off;
  const uint32_t avail = h->caplen - static_cast<uint32_t>(off);
  // IPv6's payload length leaves out its 40-byte header.
  const bool v6 = (ip[0] >> 4) == 6;
  const uint32_t totalLength = v6 ? 40 + ((static_cast<uint32_t>(ip[4]) << 8) | ip[5])
                                  : (static_cast<uint32_t>(ip[2]) << 8) | ip[3];
  // Trims link-layer padding of short frames. A packet cut short by snaplen (a GRO-merged giant) is
  // delivered as captured: its total length, larger than what arrives, tells the protocol how much
  // it lost. A total length of 0 (BIG TCP; IPv6 uses a jumbogram option) also keeps everything captured.
  const uint32_t len = (totalLength >= (v6 ? 41u : 20u) && totalLength <= avail) ? totalLength : avail;
  // The drain loop asks for no more packets than fit; this only guards against a libpcap that
  // delivered more than the snapshot length.
  if (self->count_ >= self->maxBatch_ || len > self->dataCapacity_ - self->used_) {
    ++self->skipped_;
    return;
  }
  std::memcpy(self->arrays_.data + self->used_, ip, len);
  uint32_t* m = self->arrays_.meta + static_cast<size_t>(self->count_) * capture_rec::kStride;
  m[capture_rec::kOffset] = static_cast<uint32_t>(self->used_);
  m[capture_rec::kLength] = len;
  ++self->count_;
  self->used_ += len;
}

}  // namespace rsock
