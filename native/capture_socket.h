// The capture's packet socket: a plain AF_PACKET socket on one device (or every device, "any"), whose
// classic BPF filter the kernel runs before queueing anything, read with recvmmsg. No JS here.
#pragma once

#include <cstdint>
#include <string>

#include "link_layer.h"
#include "unique_fd.h"

namespace rsock {

struct CaptureSocketSpec {
  std::string device;
  std::string filter;  // libpcap syntax; libpcap only compiles it
  uint32_t snaplen = 65535;
  uint32_t bufferBytes = 32u << 20;
  bool inboundOnly = true;
};

struct CaptureSocket {
  UniqueFd fd;  // non-blocking
  LinkKind link = LinkKind::kCooked;
  int ifindex = 0;  // 0: every device
};

// False with *error set (starting `capture on "DEV": `, or `bad capture filter "F": `) on failure.
bool OpenCaptureSocket(const CaptureSocketSpec& spec, CaptureSocket* out, std::string* error);

// Packets the kernel dropped (receive buffer full) since the previous call: reading resets the counter.
uint64_t TakeKernelDrops(int fd);

// The receive drops the device itself counts (/proc/net/dev, this thread's namespace); 0 for "any".
uint64_t DeviceRxDrops(const std::string& device);

enum class DeviceState { kUp, kDown, kGone };
// kGone also when the name now belongs to another device: the socket stays bound to the old index.
DeviceState CheckDevice(const std::string& device, int ifindex);

}  // namespace rsock
