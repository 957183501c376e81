#include "injector.h"

#include <arpa/inet.h>
#include <errno.h>

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
  for (size_t i = 0; i < kChunk; ++i) {
    msgs_[i].msg_hdr.msg_name = &dst_[i];
    msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    msgs_[i].msg_hdr.msg_iov = iov_[i].data();
    iov_[i][0].iov_base = headers_[i].data();
  }
}

void Injector::Close(const Napi::CallbackInfo&) { fd_.reset(); }

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
    const size_t headers = kIpHeaderBytes + kTcpHeaderBytes +
                           ((m[rec::kOptions] & rec::kOptTimestamp) ? kTimestampOptionBytes : 0);
    if (m[rec::kPayloadLen] > 65535 - headers) bad("payload longer than an IPv4 packet can carry");
    if (static_cast<uint64_t>(m[rec::kPayloadOff]) + m[rec::kPayloadLen] > data.length) bad("payload range outside data");
  }

  uint32_t sent = 0;
  for (uint32_t base = 0; base < count; base += kChunk) {
    size_t n = 0;
    const uint32_t end = std::min<uint32_t>(count, base + kChunk);
    for (uint32_t i = base; i < end; ++i, ++n) {
      const uint32_t* m = meta.data + static_cast<size_t>(i) * rec::kStride;
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
      iov_[n][0].iov_len = WriteHeaders(headers_[n].data(), f, payload, len);
      iov_[n][1].iov_base = payload;  // read by sendmmsg() before Send returns
      iov_[n][1].iov_len = len;
      msgs_[n].msg_hdr.msg_iovlen = len ? 2 : 1;
      dst_[n] = MakeAddr(htonl(f.dstIp), 0);
    }
    sent += SendChunk(n);
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

uint32_t Injector::SendChunk(size_t n) {
  return SendBatch(fd_.get(), &msgs_[0], n, [this](int err, size_t lost) { RecordError(ErrnoText(err), lost); });
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
