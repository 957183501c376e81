// Sends fake-TCP segments on raw IPv4 and IPv6 sockets, many per syscall. The injector writes each segment's
// IP and TCP headers into memory of its own and hands the kernel the payload where it lies in the
// JS Buffer (a second iovec), so no payload byte is copied before the kernel's own copy.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

#include "segment.h"
#include "unique_fd.h"

namespace rsock {

class Injector : public Napi::ObjectWrap<Injector> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Injector(const Napi::CallbackInfo& info);

 private:
  static constexpr size_t kChunk = 64;  // packets per sendmmsg()

  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  uint32_t SendChunk(int fd, size_t n);
  void RecordError(const std::string& text, uint64_t packets);

  UniqueFd fd_;
  // Invalid when the kernel has no IPv6 (EAFNOSUPPORT); IPv6 segments then count as errors.
  UniqueFd fd6_;
  std::string fd6Error_;

  // Reused for every chunk so sending allocates nothing: message i sends headers_[i], then its payload.
  std::array<mmsghdr, kChunk> msgs_{};
  std::array<std::array<iovec, 2>, kChunk> iov_{};
  std::array<sockaddr_in, kChunk> dst_{};
  std::array<sockaddr_in6, kChunk> dst6_{};
  std::array<std::array<uint8_t, kMaxHeaderBytes>, kChunk> headers_{};

  uint64_t sent_ = 0;
  uint64_t errors_ = 0;
  std::string lastError_;
};

}  // namespace rsock
