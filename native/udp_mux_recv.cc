// UdpMux receiving: on the JS thread, from the loop's poll phase.
#include <arpa/inet.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "args.h"
#include "records.h"
#include "udp_mux.h"

namespace rsock {

namespace {

constexpr int kMaxEvents = 64;
// Wake-ups in a row in which sockets only reported errors before polling pauses: errors that
// reading does not clear must not turn the loop into a busy loop.
constexpr int kErrorRoundsBeforePause = 16;
constexpr uint64_t kErrorPauseMs = 1;
// Rounds of reading per wake-up while each round finds datagrams (see OnLoopPoll).
constexpr int kRoundsPerWake = 4;
// A round must have found this many datagrams for the next one to run: a few datagrams per wake-up
// mean a light load, where the extra read would mostly find nothing.
constexpr uint32_t kRepollAfter = 8;

}  // namespace

namespace rec = udp_rx_rec;

void UdpMux::OnLoopTimer() { (void)loop_.StartPolling(); }

// Stops polling for a moment; the timer starts it again. Used when wake-ups yield only errors.
void UdpMux::Pause() {
  loop_.StopPolling();
  loop_.StartTimer(kErrorPauseMs);
}

// One round: every socket epoll reports ready is read until it has no more or the batch is full,
// whichever comes first. A socket that fills the batch waits for the next round (the epoll
// descriptor stays readable, and libuv polls level-triggered), so one busy socket cannot starve the
// others, and the loop gets a turn between rounds. What is left in the batch is flushed at the end:
// a partial batch is never held back waiting for company.
//
// Under load more datagrams arrive while JS handles a batch: up to kRoundsPerWake rounds run back to
// back while each one finds at least kRepollAfter, which saves a sleep and a wake-up (epoll_pwait, a
// context switch, epoll_wait) per batch; under a light load nothing changes. With a single socket (the client's
// --ludp, a server with one flow) that socket is read at once, without asking epoll which is ready.
void UdpMux::OnLoopPoll(int status) {
  if (status < 0) {
    // Not expected from an epoll descriptor; libuv may have stopped the handle. Try again shortly.
    ++recvErrors_;
    RecordError(std::string("poll: ") + uv_strerror(status));
    Pause();
    return;
  }
  uint32_t read = 0;
  uint32_t errors = 0;
  // JS may have detached the arrays since the last batch (it should not keep them, but it could):
  // DrainSocket checks them again before it writes.
  arrays_.Lent();
  for (int round = 0; round < kRoundsPerWake; ++round) {
    const uint32_t before = read;
    const int rc = Round(&read, &errors);
    if (rc < 0) return;  // stopped during onBatch, or epoll failed (paused)
    if (count_ > 0 && !Flush()) return;
    if (read - before < kRepollAfter || stopped_) break;
  }
  // Reading clears the errors ICMP leaves on a connected socket, so they cannot repeat without
  // new datagrams; anything else that keeps a socket ready without yielding data is slowed down.
  errorRounds_ = (errors > 0 && read == 0) ? errorRounds_ + 1 : 0;
  if (errorRounds_ >= kErrorRoundsBeforePause) {
    errorRounds_ = 0;
    Pause();
  }
}

// Reads the ready sockets once (see OnLoopPoll). -1: the mux was stopped during onBatch, or epoll
// failed and polling is paused; the caller returns at once.
int UdpMux::Round(uint32_t* read, uint32_t* errors) {
  if (open_ == 1) {
    if (soleId_ >= slots_.size() || slots_[soleId_].fd < 0) {
      soleId_ = 0;
      while (soleId_ < slots_.size() && slots_[soleId_].fd < 0) ++soleId_;
    }
    if (soleId_ < slots_.size()) return DrainSocket(soleId_, slots_[soleId_].serial, read, errors) ? 0 : -1;
  }
  std::array<epoll_event, kMaxEvents> events;
  int n;
  do n = epoll_wait(epfd_, events.data(), kMaxEvents, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ++recvErrors_;
    RecordError("epoll_wait: " + ErrnoText(errno));
    Pause();
    return -1;
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (!DrainSocket(static_cast<uint32_t>(tag), static_cast<uint32_t>(tag >> 32), read, errors)) return -1;
  }
  return 0;
}

// Reads what one socket holds, up to the end of the current batch. False means that JS stopped the
// mux during a flush.
bool UdpMux::DrainSocket(uint32_t id, uint32_t serial, uint32_t* read, uint32_t* errors) {
  for (;;) {
    // Looked up afresh every time: onBatch may have closed the socket, reused its id, or grown the
    // table since the last look.
    if (id >= slots_.size() || slots_[id].serial != serial) return true;
    const int fd = slots_[id].fd;
    const unsigned want = static_cast<unsigned>(std::min<size_t>(kRecvChunk, maxBatch_ - count_));
    if (want == 0) return Flush();  // not reached: a full batch is flushed at once
    for (unsigned k = 0; k < want; ++k) recvMsgs_[k].msg_hdr.msg_namelen = sizeof(SockAddr);
    const int r = recvmmsg(fd, recvMsgs_.data(), want, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return true;
      // ECONNREFUSED after an ICMP port unreachable on a connected socket, and the like: the read
      // has cleared the error and the socket stays usable.
      ++recvErrors_;
      RecordError(ErrnoText(err));
      ++*errors;
      return true;
    }
    *read += static_cast<uint32_t>(r);
    for (int k = 0; k < r; ++k) {
      const mmsghdr& mh = recvMsgs_[k];
      const size_t len = mh.msg_len;
      // Cannot happen (slot + overflow hold 64 KiB), but a cut datagram must never pass as whole.
      if (mh.msg_hdr.msg_flags & MSG_TRUNC) {
        ++recvErrors_;
        RecordError("datagram truncated");
        continue;
      }
      if (len > dataCapacity_ - used_) {
        // The batch Buffer is full: deliver it and go on with an empty one. The rest of this
        // recvmmsg() is in the native slots, which JS cannot reach; but if onBatch closed the
        // socket, it is dropped, like everything a closed socket received.
        if (!Flush()) return false;
        if (id >= slots_.size() || slots_[id].serial != serial) return true;
      }
      AcquireBuffers();  // a no-op unless JS ran since the last check
      const size_t head = std::min(len, kSlotBytes);
      std::memcpy(arrays_.data + used_, recvSlots_.get() + k * kSlotBytes, head);
      if (len > head) std::memcpy(arrays_.data + used_ + head, recvOverflow_.get() + k * kOverflowBytes, len - head);
      const bool haveSrc = mh.msg_hdr.msg_namelen >= sizeof(sockaddr_in);
      const SockAddr src = haveSrc ? Unmapped(recvSrc_[k]) : SockAddr{};
      uint32_t* m = arrays_.meta + static_cast<size_t>(count_) * rec::kStride;
      m[rec::kSocket] = id;
      m[rec::kOffset] = static_cast<uint32_t>(used_);
      m[rec::kLength] = static_cast<uint32_t>(len);
      const bool v6 = src.any.sa_family == AF_INET6;
      m[rec::kSrcIp] = src.any.sa_family == AF_INET ? ntohl(src.v4.sin_addr.s_addr) : 0;
      m[rec::kSrcPort] = haveSrc ? PortOf(src) : 0;
      m[rec::kIpVersion] = v6 ? 6 : 4;
      for (int w = 0; w < 4; ++w) {
        uint32_t word = 0;
        if (v6) std::memcpy(&word, src.v6.sin6_addr.s6_addr + 4 * w, 4);
        m[rec::kSrcIp6 + w] = ntohl(word);
      }
      ++count_;
      used_ += len;
    }
    if (count_ >= maxBatch_) return Flush();  // this socket's turn ends with the batch
    // Fewer than asked for: the queue is empty (or an error is pending, which the next round reads).
    if (static_cast<unsigned>(r) < want) return true;
  }
}

// Hands the batch to onBatch: the same Buffer and Uint32Array every time, valid during the call.
bool UdpMux::Flush() {
  napi_env env = Env();
  const uint32_t count = count_;
  count_ = 0;
  used_ = 0;
  ++batches_;
  received_ += count;
  Napi::HandleScope scope(env);
  napi_value argv[3] = {arrays_.DataValue(env), arrays_.MetaValue(env), Napi::Number::New(env, count)};
  arrays_.Lent();
  return loop_.Call(Value(), onBatch_.Value(), 3, argv);  // false: stopped, perhaps destroyed
}

}  // namespace rsock
