// Locates the IPv4 or IPv6 header behind the link header libpcap delivers for each supported link type.
#pragma once

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>

namespace rsock {

inline bool SupportedLinkType(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

inline bool IpEtherType(uint16_t type) { return type == 0x0800 || type == 0x86dd; }

// Offset of the IP header in a captured frame, or -1 when the frame is neither IPv4 nor IPv6 (or is
// too short to hold its IP header) or the link type is unknown.
inline int IpOffset(int dlt, const uint8_t* p, uint32_t caplen) {
  auto be16 = [p](uint32_t off) { return static_cast<uint16_t>((p[off] << 8) | p[off + 1]); };
  uint32_t off;
  switch (dlt) {
    case DLT_EN10MB: {
      if (caplen < 14) return -1;
      uint16_t type = be16(12);
      off = 14;
      // libpcap re-inserts the VLAN tags the NIC stripped; allow QinQ.
      for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8 || type == 0x9100); ++tags) {
        if (caplen < off + 4) return -1;
        type = be16(off + 2);
        off += 4;
      }
      if (!IpEtherType(type)) return -1;
      break;
    }
    case DLT_LINUX_SLL:
      if (caplen < 16 || !IpEtherType(be16(14))) return -1;
      off = 16;
      break;
    case DLT_LINUX_SLL2:
      if (caplen < 20 || !IpEtherType(be16(0))) return -1;
      off = 20;
      break;
    case DLT_RAW:
    case DLT_IPV4:
      off = 0;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (caplen < 4) return -1;
      uint32_t family;
      std::memcpy(&family, p, 4);
      // DLT_NULL carries the family in the capturing host's byte order, DLT_LOOP in network order.
      if (dlt == DLT_LOOP) family = ntohl(family);
      if (family != AF_INET && family != AF_INET6) return -1;
      off = 4;
      break;
    }
    default:
      return -1;
  }
  const int version = caplen > off ? p[off] >> 4 : 0;
  if (version == 4 && caplen >= off + 20) return static_cast<int>(off);
  if (version == 6 && caplen >= off + 40) return static_cast<int>(off);
  return -1;
}

}  // namespace rsock
