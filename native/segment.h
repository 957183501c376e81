// IPv4 or IPv6 + TCP headers of one injected segment, written into memory the injector owns; the payload
// stays where JS put it and is only read here, for the TCP checksum. Plain functions, no N-API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rsock {

constexpr size_t kIpHeaderBytes = 20;
constexpr size_t kTcpHeaderBytes = 20;
// NOP, NOP, Timestamp(kind 8, length 10): the 12 option bytes Linux puts on every segment of an
// established connection that negotiated timestamps.
constexpr size_t kTimestampOptionBytes = 12;
constexpr size_t kIp6HeaderBytes = 40;
constexpr size_t kMaxHeaderBytes = kIp6HeaderBytes + kTcpHeaderBytes + kTimestampOptionBytes;

// RFC 1071 one's-complement sum of `len` bytes, accumulated into `sum`. Words are loaded in host byte
// order: the one's-complement sum does not depend on it, as long as the folded result is stored back
// the same way (Fold16 + StoreChecksum). `p` must start at an even offset of the checksummed stream.
inline uint64_t OnesSum(const uint8_t* p, size_t len, uint64_t sum) {
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    sum += w;
    sum += sum < w;  // end-around carry
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    sum += sum < w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    sum += sum < w;
    p += 2;
    len -= 2;
  }
  if (len) {
    // An odd last byte is the high-order byte of a word padded with zero (RFC 1071 4.1).
    const uint8_t pad[2] = {p[0], 0};
    uint16_t w;
    std::memcpy(&w, pad, 2);
    sum += w;
    sum += sum < w;
  }
  return sum;
}

// The checksum field's value for a sum: folded to 16 bits and complemented, still in host word order.
inline uint16_t Fold16(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline void StoreChecksum(uint8_t* at, uint16_t folded) { std::memcpy(at, &folded, 2); }

inline void PutBe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Everything that varies per segment; IPs in host byte order, like the TX record.
struct SegmentFields {
  uint32_t srcIp, dstIp;
  uint16_t srcPort, dstPort;
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t window;
  bool timestamp;
  uint32_t tsVal, tsEcr;
  uint16_t ipId;  // 0: the kernel leaves it 0 (DF set) or picks one
  uint8_t ttl;    // IPv6: the hop limit
  bool ipv6;
  uint8_t src6[16], dst6[16];  // IPv6 only, network order
  uint32_t flowLabel;          // IPv6 only, 20 bits
};

// Writes the TCP header at `tcp` and its checksum, given the one's-complement sum of the pseudo-header's
// addresses; returns the TCP header length.
inline size_t WriteTcp(uint8_t* tcp, const SegmentFields& f, uint64_t addrSum, const uint8_t* payload, uint32_t len) {
  const size_t tcpLen = kTcpHeaderBytes + (f.timestamp ? kTimestampOptionBytes : 0);
  PutBe16(tcp, f.srcPort);
  PutBe16(tcp + 2, f.dstPort);
  PutBe32(tcp + 4, f.seq);
  PutBe32(tcp + 8, f.ack);
  tcp[12] = static_cast<uint8_t>((tcpLen / 4) << 4);
  tcp[13] = f.flags;
  PutBe16(tcp + 14, f.window);
  tcp[16] = tcp[17] = 0;  // checksum, below
  tcp[18] = tcp[19] = 0;  // urgent pointer
  if (f.timestamp) {
    uint8_t* o = tcp + kTcpHeaderBytes;
    o[0] = 1;  // NOP
    o[1] = 1;  // NOP
    o[2] = 8;  // kind: timestamp
    o[3] = 10;
    PutBe32(o + 4, f.tsVal);
    PutBe32(o + 8, f.tsEcr);
  }
  // The rest of the pseudo-header: protocol and TCP length. IPv4's (zero, protocol, 16-bit length) and
  // IPv6's (32-bit length, three zero bytes, next header) have the same one's-complement sum.
  uint8_t pseudo[4] = {0, 6, 0, 0};
  PutBe16(pseudo + 2, static_cast<uint32_t>(tcpLen + len));
  uint64_t sum = OnesSum(pseudo, sizeof pseudo, addrSum);
  sum = OnesSum(tcp, tcpLen, sum);  // even length: the payload starts at an even offset
  sum = OnesSum(payload, len, sum);
  StoreChecksum(tcp + 16, Fold16(sum));
  return tcpLen;
}

// Writes both headers into `out` (kMaxHeaderBytes of room) with valid IP and TCP checksums over
// `payload`; returns the header bytes written (IPv4: 40, or 52 with the timestamp option; IPv6: 20 more).
inline size_t WriteHeaders(uint8_t* out, const SegmentFields& f, const uint8_t* payload, uint32_t len) {
  const size_t tcpLen = kTcpHeaderBytes + (f.timestamp ? kTimestampOptionBytes : 0);
  uint8_t* ip = out;
  if (f.ipv6) {
    PutBe32(ip, (6u << 28) | (f.flowLabel & 0xfffff));  // version 6, traffic class 0
    PutBe16(ip + 4, static_cast<uint32_t>(tcpLen + len));
    ip[6] = 6;  // next header: TCP, no extension headers
    ip[7] = f.ttl;
    std::memcpy(ip + 8, f.src6, 16);
    std::memcpy(ip + 24, f.dst6, 16);
    return kIp6HeaderBytes + WriteTcp(ip + kIp6HeaderBytes, f, OnesSum(ip + 8, 32, 0), payload, len);
  }
  const size_t headers = kIpHeaderBytes + tcpLen;
  ip[0] = 0x45;  // version 4, 5 words
  ip[1] = 0;
  PutBe16(ip + 2, static_cast<uint32_t>(headers + len));
  PutBe16(ip + 4, f.ipId);
  PutBe16(ip + 6, 0x4000);  // DF, offset 0
  ip[8] = f.ttl;
  ip[9] = 6;  // TCP
  ip[10] = ip[11] = 0;
  PutBe32(ip + 12, f.srcIp);
  PutBe32(ip + 16, f.dstIp);
  // The kernel recomputes it for IP_HDRINCL sockets; a correct one costs little and holds anywhere.
  StoreChecksum(ip + 10, Fold16(OnesSum(ip, kIpHeaderBytes, 0)));
  return kIpHeaderBytes + WriteTcp(ip + kIpHeaderBytes, f, OnesSum(ip + 12, 8, 0), payload, len);
}

}  // namespace rsock
