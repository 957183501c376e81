// UdpMux.send(): records to sendmmsg() runs, straight from the JS thread.
#include <arpa/inet.h>
#include <netinet/udp.h>

#include <cstring>

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
    // The run's datagrams become messages: one per datagram, or one per group that UDP GSO carries
    // (UDP_SEGMENT): the kernel then builds, routes and filters one packet and splits it at the end of
    // its output path, which costs about half as much per datagram as sendmmsg() does per message.
    const size_t n = end - i;
    size_t msgs = 0;
    for (size_t k = 0; k < n;) {
      const uint32_t* m = record(i + static_cast<uint32_t>(k));
      const size_t take = GroupLength(meta.data, i + static_cast<uint32_t>(k), end, slots_[id].gsoMax);
      for (size_t q = 0; q < take; ++q) {
        const uint32_t* mq = record(i + static_cast<uint32_t>(k + q));
        sendIov_[k + q].iov_base = data.data + mq[rec::kOffset];
        sendIov_[k + q].iov_len = mq[rec::kLength];
      }
      msghdr& h = sendMsgs_[msgs].msg_hdr;
      h.msg_iov = &sendIov_[k];
      h.msg_iovlen = take;
      h.msg_control = nullptr;
      h.msg_controllen = 0;
      if (take > 1) {
        h.msg_control = sendCmsg_[msgs].bytes;
        h.msg_controllen = sizeof(sendCmsg_[msgs].bytes);
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t size = static_cast<uint16_t>(m[rec::kLength]);
        std::memcpy(CMSG_DATA(c), &size, sizeof(size));
      }
      SetDestination(h, sendDst_[msgs], m, slots_[id].v6);
      ++msgs;
      k += take;
    }
    sent += SendRun(fd, id, msgs);
    i = end;
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

size_t UdpMux::GroupLength(const uint32_t* meta, uint32_t first, uint32_t end, uint32_t gsoMax) {
  auto record = [meta](uint32_t k) { return meta + static_cast<size_t>(k) * rec::kStride; };
  const uint32_t* a = record(first);
  const uint32_t size = a[rec::kLength];
  if (size == 0 || size > gsoMax) return 1;
  auto sameDestination = [a](const uint32_t* b) {
    if (a[rec::kIpVersion] != b[rec::kIpVersion] || a[rec::kDstPort] != b[rec::kDstPort]) return false;
    if (a[rec::kIpVersion] == 6) return std::memcmp(a + rec::kDstIp6, b + rec::kDstIp6, 16) == 0;
    return a[rec::kDstIp] == b[rec::kDstIp];
  };
  // Every datagram of a group has the first one's size but the last, which may be shorter (not empty:
  // the split would not see it); the whole group fits one IP packet's length field.
  size_t total = size;
  uint32_t j = first + 1;
  while (j < end && j - first < kGsoSegments) {
    const uint32_t* b = record(j);
    const uint32_t len = b[rec::kLength];
    if (len == 0 || len > size || !sameDestination(b) || total + len > kMaxDatagram) break;
    total += len;
    ++j;
    if (len < size) break;
  }
  return j - first;
}

void UdpMux::SetDestination(msghdr& h, SockAddr& d, const uint32_t* m, bool v6Socket) {
  if (m[rec::kIpVersion] != 6 && m[rec::kDstIp] == 0) {
    h.msg_name = nullptr;  // the connected peer
    h.msg_namelen = 0;
    return;
  }
  d = SockAddr{};
  const uint16_t port = htons(static_cast<uint16_t>(m[rec::kDstPort]));
  if (m[rec::kIpVersion] == 6 || v6Socket) {
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

uint32_t UdpMux::SendRun(int fd, uint32_t id, size_t msgs) {
  uint32_t sent = 0;
  auto datagrams = [this](size_t q) { return static_cast<uint32_t>(sendMsgs_[q].msg_hdr.msg_iovlen); };
  auto onSent = [&](size_t first, size_t end) {
    for (size_t q = first; q < end; ++q) {
      sent += datagrams(q);
      if (datagrams(q) > 1) coalesced_ += datagrams(q);
    }
  };
  auto onFailed = [&](int err, size_t first, size_t end) {
    RecordError(ErrnoText(err));
    if (end - first == 1 && datagrams(first) > 1 && !OutOfBuffer(err)) {
      // A group the kernel refused (EIO: no checksum offload on the route's device; EMSGSIZE or
      // EINVAL: a segment above the route's MTU, or a kernel before 4.18): this socket groups only
      // smaller datagrams from now on, or none. Any other error (ECONNREFUSED from an earlier ICMP,
      // consumed by this attempt) concerns the socket, not the group. Either way its datagrams go
      // one by one.
      if (err == EINVAL || err == EMSGSIZE || err == EIO || err == ENOPROTOOPT || err == EOPNOTSUPP) {
        const uint32_t size = static_cast<uint32_t>(sendMsgs_[first].msg_hdr.msg_iov[0].iov_len);
        slots_[id].gsoMax = (err == EINVAL || err == EMSGSIZE) && size > kSafeSegment ? size - 1 : 0;
        ++gsoRefused_;
      }
      sent += SendEach(fd, first);
      return;
    }
    for (size_t q = first; q < end; ++q) sendErrors_ += datagrams(q);
  };
  SendMessages(fd, &sendMsgs_[0], msgs, onSent, onFailed);
  return sent;
}

uint32_t UdpMux::SendEach(int fd, size_t msg) {
  const msghdr& g = sendMsgs_[msg].msg_hdr;
  for (size_t q = 0; q < g.msg_iovlen; ++q) {
    msghdr& h = splitMsgs_[q].msg_hdr;
    h = msghdr{};
    h.msg_name = g.msg_name;
    h.msg_namelen = g.msg_namelen;
    h.msg_iov = &g.msg_iov[q];
    h.msg_iovlen = 1;
  }
  return SendBatch(fd, &splitMsgs_[0], g.msg_iovlen, [this](int err, size_t lost) {
    sendErrors_ += lost;
    RecordError(ErrnoText(err));
  });
}

}  // namespace rsock
