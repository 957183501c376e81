// UdpMux.send(): records to sendmmsg() runs, straight from the JS thread.
#include <arpa/inet.h>

#include "args.h"
#include "net_util.h"
#include "records.h"
#include "send_batch.h"
#include "udp_mux.h"

namespace rsock {

namespace rec = udp_tx_rec;

Napi::Value UdpMux::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) ThrowError(env, "UdpMux.send: mux is stopped");
  ByteView data = ArgBytes(info[0], "UdpMux.send: data");
  WordView meta = ArgUint32Array(info[1], "UdpMux.send: meta");
  uint32_t count = ArgUint(info[2], "UdpMux.send: count", 0, static_cast<uint32_t>(meta.length / rec::kStride));
  auto record = [&](uint32_t i) { return meta.data + static_cast<size_t>(i) * rec::kStride; };

  // Validate the whole batch first so a bad record never leaves half a batch on the wire.
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t* m = record(i);
    auto bad = [&](const char* what) {
      ThrowRangeError(env, "UdpMux.send: datagram " + std::to_string(i) + ": " + what);
    };
    if (static_cast<uint64_t>(m[rec::kOffset]) + m[rec::kLength] > data.length) bad("range outside data");
    if (m[rec::kLength] > kMaxDatagram) bad("longer than a UDP datagram can carry (65507 bytes)");
    if (m[rec::kDstPort] > 0xffff) bad("dstPort out of range");
    const bool toPeer = m[rec::kIpVersion] != 6 && m[rec::kDstIp] == 0;
    if (!toPeer && m[rec::kDstPort] == 0) bad("dstPort must not be 0");
  }

  uint32_t sent = 0;
  uint32_t i = 0;
  while (i < count) {
    // A run: consecutive datagrams for the same socket, at most one sendmmsg() worth.
    const uint32_t id = record(i)[rec::kSocket];
    uint32_t end = i + 1;
    while (end < count && end - i < kSendChunk && record(end)[rec::kSocket] == id) ++end;
    const int fd = id < slots_.size() ? slots_[id].fd : -1;
    if (fd < 0) {
      sendErrors_ += end - i;
      RecordError("send on a socket id that is not open");
      i = end;
      continue;
    }
    const size_t n = end - i;
    for (size_t k = 0; k < n; ++k) {
      const uint32_t* m = record(i + static_cast<uint32_t>(k));
      sendIov_[k].iov_base = data.data + m[rec::kOffset];
      sendIov_[k].iov_len = m[rec::kLength];
      msghdr& h = sendMsgs_[k].msg_hdr;
      if (m[rec::kIpVersion] != 6 && m[rec::kDstIp] == 0) {
        h.msg_name = nullptr;  // the connected peer
        h.msg_namelen = 0;
        continue;
      }
      SockAddr& d = sendDst_[k];
      d = SockAddr{};
      const uint16_t port = htons(static_cast<uint16_t>(m[rec::kDstPort]));
      if (m[rec::kIpVersion] == 6 || slots_[id].v6) {
        d.v6.sin6_family = AF_INET6;
        d.v6.sin6_port = port;
        uint32_t words[4];
        if (m[rec::kIpVersion] == 6) {
          for (int w = 0; w < 4; ++w) words[w] = htonl(m[rec::kDstIp6 + w]);
        } else {
          words[0] = words[1] = 0;
          words[2] = htonl(0xffff);
          words[3] = htonl(m[rec::kDstIp]);
        }
        std::memcpy(&d.v6.sin6_addr, words, 16);
      } else {
        d.v4 = MakeAddr(htonl(m[rec::kDstIp]), 0);
        d.v4.sin_port = port;
      }
      h.msg_name = &d;
      h.msg_namelen = SockAddrLen(d);
    }
    sent += SendRun(fd, n);
    i = end;
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

uint32_t UdpMux::SendRun(int fd, size_t n) {
  return SendBatch(fd, &sendMsgs_[0], n, [this](int err, size_t lost) {
    sendErrors_ += lost;
    RecordError(ErrnoText(err));
  });
}

}  // namespace rsock
