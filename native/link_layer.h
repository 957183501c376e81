// Locates the IPv4 header behind the link header libpcap delivers for each supported link type.
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

// Offset of the IPv4 header in a captured frame, or -1 when the frame is not IPv4 (or is too short
// to hold an IPv4 header) or the link type is unknown.
inline int Ipv4Offset(int dlt, const uint8_t* p, uint32_t caplen) {
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
      if (type != 0x0800) return -1;
      break;
    }
    case DLT_LINUX_SLL:
      if (caplen < 16 || be16(14) != 0x0800) return -1;
      off = 16;
      break;
    case DLT_LINUX_SLL2:
      if (caplen < 20 || be16(0) != 0x0800) return -1;
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
      uint32_t want = dlt == DLT_NULL ? static_cast<uint32_t>(AF_INET) : htonl(AF_INET);
      if (family != want) return -1;
      off = 4;
      break;
    }
    default:
      return -1;
  }
  if (caplen < off + 20 || (p[off] >> 4) != 4) return -1;
  return static_cast<int>(off);
}

}  // namespace rsock
