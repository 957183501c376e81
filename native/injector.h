// Builds fake-TCP segments with libnet and sends them on a raw IPv4 socket, many per syscall.
#pragma once

#include <libnet.h>
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

namespace rsock {

class Injector : public Napi::ObjectWrap<Injector> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit Injector(const Napi::CallbackInfo& info);
  ~Injector() override;

 private:
  static constexpr size_t kChunk = 64;  // packets per sendmmsg()

  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  // Assembles one segment; returns libnet's buffer (to be freed with libnet_adv_free_packet) or null.
  uint8_t* Build(const uint32_t* m, const uint8_t* payload, uint32_t* size);
  uint32_t SendChunk(size_t n);
  void RecordError(const std::string& text, uint64_t packets);
  void Destroy();

  libnet_t* net_ = nullptr;
  int fd_ = -1;
  libnet_ptag_t tcpTag_ = LIBNET_PTAG_INITIALIZER;
  libnet_ptag_t ipTag_ = LIBNET_PTAG_INITIALIZER;

  // Reused for every chunk so sending allocates nothing of its own.
  std::array<mmsghdr, kChunk> msgs_{};
  std::array<iovec, kChunk> iov_{};
  std::array<sockaddr_in, kChunk> dst_{};
  std::array<uint8_t*, kChunk> packets_{};

  uint64_t sent_ = 0;
  uint64_t errors_ = 0;
  std::string lastError_;
};

}  // namespace rsock
