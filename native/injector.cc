#include "injector.h"

#include <arpa/inet.h>
#include <errno.h>

#include <cstring>

#include "args.h"
#include "net_util.h"
#include "records.h"
#include "send_batch.h"

namespace rsock {

namespace {

constexpr int kSendBufferBytes = 4 << 20;
constexpr uint32_t kKnownOptions = tx_rec::kOptTimestamp;
constexpr uint8_t kDefaultTtl = 64;

}  // namespace

namespace rec = tx_rec;

void Injector::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Injector",
                                    {
                                        InstanceMethod<&Injector::Send>("send"),
                                        InstanceMethod<&Injector::Stats>("stats"),
                                        InstanceMethod<&Injector::Close>("close"),
                                    });
  exports.Set("Injector", ctor);
}

Injector::Injector(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Injector>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) ThrowTypeError(env, "Injector must be called with new");
  // IPPROTO_RAW implies IP_HDRINCL, and such a socket never receives: nothing queues up on it.
  fd_.reset(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
  if (!fd_.valid()) {
    ThrowError(env, "Injector: cannot open a raw IPv4 socket (" + ErrnoText(errno) +
                        "); injecting packets needs CAP_NET_RAW (run as root or grant the capability)");
  }
  // Bursts of whole batches must fit.
  SetSocketBuffer(fd_.get(), SO_SNDBUFFORCE, SO_SNDBUF, kSendBufferBytes);
  // An AF_INET6 raw socket with IPPROTO_RAW sends the IPv6 header we write (hdrincl), like IPv4's.
  fd6_.reset(socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
  if (fd6_.valid()) {
    SetSocketBuffer(fd6_.get(), SO_SNDBUFFORCE, SO_SNDBUF, kSendBufferBytes);
  } else {
    fd6Error_ = "cannot open a raw IPv6 socket: " + ErrnoText(errno);
  }
  for (size_t i = 0; i < kChunk; ++i) {
    msgs_[i].msg_hdr.msg_iov = iov_[i].data();
    iov_[i][0].iov_base = headers_[i].data();
  }
}

void Injector::Close(const Napi::CallbackInfo&) {
  fd_.reset();
  fd6_.reset();
}

void Injector::RecordError(const std::string& text, uint64_t packets) {
  errors_ += packets;
  lastError_ = text;
}

Napi::Value Injector::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!fd_.valid()) ThrowError(env, "Injector.send: injector is closed");
  ByteView data = ArgBytes(info[0], "Injector.send: data");
  WordView meta = ArgUint32Array(info[1], "Injector.send: meta");
  uint32_t count = ArgUint(info[2], "Injector.send: count", 0, static_cast<uint32_t>(meta.length / rec::kStride));

  // Validate the whole batch first so a bad record never leaves half a batch on the wire.
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t* m = meta.data + static_cast<size_t>(i) * rec::kStride;
    auto bad = [&](const char* what) {
      ThrowRangeError(env, "Injector.send: packet " + std::to_string(i) + ": " + what);
    };
    if (m[rec::kSrcPort] > 0xffff || m[rec::kDstPort] > 0xffff) bad("port out of range");
    if (m[rec::kFlags] > 0xff) bad("flags must fit in 8 bits");
    if (m[rec::kWindow] > 0xffff) bad("window must fit in 16 bits");
    if (m[rec::kOptions] & ~kKnownOptions) bad("unknown OPTIONS bits");
    if (m[rec::kIpId] > 0xffff) bad("IP_ID must fit in 16 bits");
    if (m[rec::kTtl] > 0xff) bad("TTL must be at most 255");
    if (m[rec::kFlowLabel] > 0xfffff) bad("FLOW_LABEL must fit in 20 bits");
    const bool v6 = m[rec::kIpVersion] == 6;
    // IPv6's payload length leaves out its own header; IPv4's total length does not.
    const size_t headers = (v6 ? 0 : kIpHeaderBytes) + kTcpHeaderBytes +
                           ((m[rec::kOptions] & rec::kOptTimestamp) ? kTimestampOptionBytes : 0);
    if (m[rec::kPayloadLen] > 65535 - headers) bad("payload longer than an IP packet can carry");
    if (static_cast<uint64_t>(m[rec::kPayloadOff]) + m[rec::kPayloadLen] > data.length) bad("payload range outside data");
  }

  uint32_t sent = 0;
  uint32_t i = 0;
  while (i < count) {
    // One sendmmsg per run of segments of one family, at most kChunk long.
    const bool v6 = meta.data[static_cast<size_t>(i) * rec::kStride + rec::kIpVersion] == 6;
    size_t n = 0;
    for (; i < count && n < kChunk; ++i, ++n) {
      const uint32_t* m = meta.data + static_cast<size_t>(i) * rec::kStride;
      if ((m[rec::kIpVersion] == 6) != v6) break;
      const uint32_t len = m[rec::kPayloadLen];
      uint8_t* payload = data.data + m[rec::kPayloadOff];
      SegmentFields f{};
      f.srcIp = m[rec::kSrcIp];
      f.dstIp = m[rec::kDstIp];
      f.srcPort = static_cast<uint16_t>(m[rec::kSrcPort]);
      f.dstPort = static_cast<uint16_t>(m[rec::kDstPort]);
      f.seq = m[rec::kSeq];
      f.ack = m[rec::kAck];
      f.flags = static_cast<uint8_t>(m[rec::kFlags]);
      f.window = static_cast<uint16_t>(m[rec::kWindow]);
      f.timestamp = (m[rec::kOptions] & rec::kOptTimestamp) != 0;
      f.tsVal = m[rec::kTsVal];
      f.tsEcr = m[rec::kTsEcr];
      f.ipId = static_cast<uint16_t>(m[rec::kIpId]);
      f.ttl = m[rec::kTtl] ? static_cast<uint8_t>(m[rec::kTtl]) : kDefaultTtl;
      f.ipv6 = v6;
      if (v6) {
        for (int w = 0; w < 4; ++w) {
          PutBe32(f.src6 + 4 * w, m[rec::kSrcIp6 + w]);
          PutBe32(f.dst6 + 4 * w, m[rec::kDstIp6 + w]);
        }
        f.flowLabel = m[rec::kFlowLabel];
        sockaddr_in6& d = dst6_[n];
        d = sockaddr_in6{};
        d.sin6_family = AF_INET6;
        std::memcpy(&d.sin6_addr, f.dst6, 16);
        msgs_[n].msg_hdr.msg_name = &d;
        msgs_[n].msg_hdr.msg_namelen = sizeof d;
      } else {
        dst_[n] = MakeAddr(htonl(f.dstIp), 0);
        msgs_[n].msg_hdr.msg_name = &dst_[n];
        msgs_[n].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      iov_[n][0].iov_len = WriteHeaders(headers_[n].data(), f, payload, len);
      iov_[n][1].iov_base = payload;  // read by sendmmsg() before Send returns
      iov_[n][1].iov_len = len;
      msgs_[n].msg_hdr.msg_iovlen = len ? 2 : 1;
    }
    if (v6 && !fd6_.valid()) {
      RecordError(fd6Error_, n);
      continue;
    }
    sent += SendChunk(v6 ? fd6_.get() : fd_.get(), n);
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

uint32_t Injector::SendChunk(int fd, size_t n) {
  return SendBatch(fd, &msgs_[0], n, [this](int err, size_t lost) { RecordError(ErrnoText(err), lost); });
}

Napi::Value Injector::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sent", Napi::Number::New(env, static_cast<double>(sent_)));
  o.Set("errors", Napi::Number::New(env, static_cast<double>(errors_)));
  o.Set("lastError", Napi::String::New(env, lastError_));
  return o;
}

}  // namespace rsock
