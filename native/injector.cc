#include "injector.h"
#include "send_batch.h"

#include <arpa/inet.h>
#include <errno.h>

#include <cstring>

#include "args.h"
#include "net_util.h"
#include "records.h"

namespace rsock {

namespace {

constexpr uint32_t kMaxPayload = 65535 - LIBNET_IPV4_H - LIBNET_TCP_H;
constexpr int kSendBufferBytes = 4 << 20;

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
  char errbuf[LIBNET_ERRBUF_SIZE] = "";
  net_ = libnet_init(LIBNET_RAW4, nullptr, errbuf);
  if (!net_) {
    std::string detail = errbuf;
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    ThrowError(env, "Injector: cannot open a raw IPv4 socket (" + detail +
                        "); injecting packets needs CAP_NET_RAW (run as root or grant the capability)");
  }
  fd_ = libnet_getfd(net_);
  // Bursts of whole batches must fit.
  SetSocketBuffer(fd_, SO_SNDBUFFORCE, SO_SNDBUF, kSendBufferBytes);
  for (size_t i = 0; i < kChunk; ++i) {
    msgs_[i].msg_hdr.msg_name = &dst_[i];
    msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    msgs_[i].msg_hdr.msg_iov = &iov_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
  }
}

Injector::~Injector() { Destroy(); }

void Injector::Destroy() {
  if (net_) libnet_destroy(net_);  // closes fd_
  net_ = nullptr;
  fd_ = -1;
}

void Injector::Close(const Napi::CallbackInfo&) { Destroy(); }

void Injector::RecordError(const std::string& text, uint64_t packets) {
  errors_ += packets;
  lastError_ = text;
}

Napi::Value Injector::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!net_) ThrowError(env, "Injector.send: injector is closed");
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
    if (m[rec::kPayloadLen] > kMaxPayload) bad("payload longer than an IPv4 packet can carry");
    if (static_cast<uint64_t>(m[rec::kPayloadOff]) + m[rec::kPayloadLen] > data.length) bad("payload range outside data");
  }

  uint32_t sent = 0;
  for (uint32_t base = 0; base < count; base += kChunk) {
    size_t n = 0;
    const uint32_t end = std::min<uint32_t>(count, base + kChunk);
    for (uint32_t i = base; i < end; ++i) {
      const uint32_t* m = meta.data + static_cast<size_t>(i) * rec::kStride;
      uint32_t size = 0;
      uint8_t* pkt = Build(m, data.data + m[rec::kPayloadOff], &size);
      if (!pkt) continue;
      packets_[n] = pkt;
      iov_[n].iov_base = pkt;
      iov_[n].iov_len = size;
      dst_[n] = MakeAddr(htonl(m[rec::kDstIp]), 0);
      ++n;
    }
    sent += SendChunk(n);
    for (size_t k = 0; k < n; ++k) libnet_adv_free_packet(net_, packets_[k]);
  }
  sent_ += sent;
  return Napi::Number::New(env, sent);
}

uint8_t* Injector::Build(const uint32_t* m, const uint8_t* payload, uint32_t* size) {
  const uint32_t len = m[rec::kPayloadLen];
  // Reusing the ptags rewrites the same pblocks in place instead of growing the packet.
  libnet_ptag_t tcp = libnet_build_tcp(static_cast<uint16_t>(m[rec::kSrcPort]), static_cast<uint16_t>(m[rec::kDstPort]),
                                       m[rec::kSeq], m[rec::kAck], static_cast<uint8_t>(m[rec::kFlags]),
                                       static_cast<uint16_t>(m[rec::kWindow]), 0, 0, LIBNET_TCP_H + len,
                                       len ? payload : nullptr, len, net_, tcpTag_);
  libnet_ptag_t ip = tcp < 0 ? -1
                             : libnet_build_ipv4(LIBNET_IPV4_H + LIBNET_TCP_H + len, 0, 0 /* id: kernel picks */,
                                                 IP_DF, 64, IPPROTO_TCP, 0, htonl(m[rec::kSrcIp]), htonl(m[rec::kDstIp]),
                                                 nullptr, 0, net_, ipTag_);
  uint8_t* pkt = nullptr;
  // libnet_adv_cull_packet() refuses raw4 contexts in libnet 1.1.6 ("advanced link mode not
  // enabled"); libnet_pblock_coalesce() is what it and libnet_write() use underneath: it assembles
  // the pblocks and fills in the TCP and IP checksums.
  if (ip < 0 || libnet_pblock_coalesce(net_, &pkt, size) < 0) {
    RecordError(std::string("libnet: ") + libnet_geterror(net_), 1);
    // A failed build may have deleted a pblock; start the next packet from scratch.
    libnet_clear_packet(net_);
    tcpTag_ = ipTag_ = LIBNET_PTAG_INITIALIZER;
    return nullptr;
  }
  tcpTag_ = tcp;
  ipTag_ = ip;
  return pkt;
}

uint32_t Injector::SendChunk(size_t n) {
  return SendBatch(fd_, &msgs_[0], n, [this](int err, size_t lost) { RecordError(ErrnoText(err), lost); });
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
