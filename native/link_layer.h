// Locates the IPv4 or IPv6 header in what the capture socket delivers: an Ethernet frame (SOCK_RAW
// on an Ethernet-like device, loopback included) or a cooked packet that starts at the IP header.
#pragma once

#include <cstdint>

namespace rsock {

// Ethernet-like devices are read raw so that the snap length counts the link header as libpcap's
// did; every other device (tun, WireGuard, PPP, tunnels, "any") is read cooked: the kernel strips
// whatever link header it has, so no link type needs parsing here.
enum class LinkKind { kEthernet, kCooked };

inline bool IpEtherType(uint16_t type) { return type == 0x0800 || type == 0x86dd; }

// Offset of the IP header in a captured packet, or -1 when it is neither IPv4 nor IPv6 (or is too
// short to hold its IP header).
inline int IpOffset(LinkKind link, const uint8_t* p, uint32_t caplen) {
  auto be16 = [p](uint32_t off) { return static_cast<uint16_t>((p[off] << 8) | p[off + 1]); };
  uint32_t off = 0;
  if (link == LinkKind::kEthernet) {
    if (caplen < 14) return -1;
    uint16_t type = be16(12);
    off = 14;
    // The kernel moves VLAN tags out of the frame before packet sockets see it; a tag still in
    // the data (a nested one, say) is stepped over. QinQ at most.
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8 || type == 0x9100); ++tags) {
      if (caplen < off + 4) return -1;
      type = be16(off + 2);
      off += 4;
    }
    if (!IpEtherType(type)) return -1;
  }
  const int version = caplen > off ? p[off] >> 4 : 0;
  if (version == 4 && caplen >= off + 20) return static_cast<int>(off);
  if (version == 6 && caplen >= off + 40) return static_cast<int>(off);
  return -1;
}

}  // namespace rsock
