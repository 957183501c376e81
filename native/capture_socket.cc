#include "capture_socket.h"

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "args.h"

namespace rsock {

namespace {

// Any socket answers the device ioctls; AF_UNIX needs no privilege and exists in every namespace.
bool DeviceIoctl(const std::string& device, unsigned long request, ifreq* ifr) {
  UniqueFd s(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid() || device.size() >= IFNAMSIZ) return false;
  std::memset(ifr, 0, sizeof(*ifr));
  std::memcpy(ifr->ifr_name, device.c_str(), device.size());
  return ioctl(s.get(), request, ifr) == 0;
}

// libpcap compiles for a link type without a live handle; the kernel takes its instructions as
// they are (struct bpf_insn and struct sock_filter have the same layout).
bool Compile(const std::string& filter, int dlt, uint32_t snaplen, std::vector<sock_filter>* prog,
             std::string* error) {
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> dead(pcap_open_dead(dlt, static_cast<int>(snaplen)), pcap_close);
  if (!dead) {
    *error = "cannot compile the capture filter: out of memory";
    return false;
  }
  bpf_program code{};
  if (pcap_compile(dead.get(), &code, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    *error = "bad capture filter \"" + filter + "\": " + pcap_geterr(dead.get());
    return false;
  }
  for (u_int i = 0; i < code.bf_len; ++i) {
    const bpf_insn& in = code.bf_insns[i];
    prog->push_back(sock_filter{in.code, in.jt, in.jf, in.k});
  }
  pcap_freecode(&code);
  return true;
}

}  // namespace

bool OpenCaptureSocket(const CaptureSocketSpec& spec, CaptureSocket* out, std::string* error) {
  const std::string where = "capture on \"" + spec.device + "\": ";
  const bool any = spec.device == "any";
  int ifindex = 0;
  LinkKind link = LinkKind::kCooked;
  if (!any) {
    ifreq ifr;
    ifindex = static_cast<int>(if_nametoindex(spec.device.c_str()));
    if (ifindex == 0 || !DeviceIoctl(spec.device, SIOCGIFHWADDR, &ifr)) {
      *error = where + "no such device";
      return false;
    }
    const int type = ifr.ifr_hwaddr.sa_family;
    if (type == ARPHRD_ETHER || type == ARPHRD_LOOPBACK) link = LinkKind::kEthernet;
  }
  // Protocol 0: the socket receives nothing until bind(), by which time the filter is in place.
  UniqueFd fd(socket(AF_PACKET, (link == LinkKind::kEthernet ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    const int err = errno;
    *error = where + (err == EPERM || err == EACCES
                          ? "permission denied: packet capture needs CAP_NET_RAW (run as root or grant the capability)"
                          : "socket: " + ErrnoText(err));
    return false;
  }
  std::vector<sock_filter> prog;
  if (link == LinkKind::kCooked) {
    // A cooked packet has no link header to test: the kernel's protocol field says what it is.
    prog.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_ABS, static_cast<__u32>(SKF_AD_OFF + SKF_AD_PROTOCOL)));
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 2, 0));
    prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 1, 0));
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
  }
  if (spec.inboundOnly) {
    // PACKET_IGNORE_OUTGOING (Linux 4.20) keeps outgoing packets from reaching the socket at all,
    // which spares the send path a filter run per packet; older kernels drop them in the filter.
    const int one = 1;
    if (setsockopt(fd.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0) {
      prog.push_back(BPF_STMT(BPF_LD | BPF_B | BPF_ABS, static_cast<__u32>(SKF_AD_OFF + SKF_AD_PKTTYPE)));
      prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1));
      prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
    }
  }
  // Compiled for the bytes the filter sees: the Ethernet frame, or the IP packet of a cooked socket.
  if (!Compile(spec.filter, link == LinkKind::kEthernet ? DLT_EN10MB : DLT_RAW, spec.snaplen, &prog, error)) {
    return false;
  }
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (prog.size() > BPF_MAXINSNS || setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) != 0) {
    *error = where + "cannot attach the filter: " + ErrnoText(prog.size() > BPF_MAXINSNS ? E2BIG : errno);
    return false;
  }
  // The kernel doubles the value and charges each queued packet its buffer's true size. FORCE
  // (CAP_NET_ADMIN) passes net.core.rmem_max; without it the buffer is capped there.
  const int half = static_cast<int>(spec.bufferBytes / 2);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof half) != 0) {
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &half, sizeof half);
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    const int err = errno;
    *error = where + (err == ENODEV ? std::string("no such device") : "bind: " + ErrnoText(err));
    return false;
  }
  // Bound to a device that is down, the socket reports ENETDOWN at once and receives nothing.
  int soError = 0;
  socklen_t len = sizeof soError;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soError, &len) == 0 && soError == ENETDOWN) {
    *error = where + "interface is not up";
    return false;
  }
  out->fd = std::move(fd);
  out->link = link;
  out->ifindex = ifindex;
  return true;
}

uint64_t TakeKernelDrops(int fd) {
  tpacket_stats st{};
  socklen_t len = sizeof st;
  if (fd < 0 || getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return 0;
  return st.tp_drops;
}

uint64_t DeviceRxDrops(const std::string& device) {
  if (device == "any") return 0;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen("/proc/net/dev", "re"), std::fclose);
  if (!f) return 0;
  char line[512];
  while (std::fgets(line, sizeof line, f.get())) {
    char* colon = std::strchr(line, ':');
    if (!colon) continue;
    *colon = '\0';
    const char* name = line;
    while (*name == ' ') ++name;
    if (device != name) continue;
    // Receive columns: bytes packets errs drop ...
    unsigned long long bytes = 0, packets = 0, errs = 0, drop = 0;
    if (std::sscanf(colon + 1, "%llu %llu %llu %llu", &bytes, &packets, &errs, &drop) == 4) return drop;
    return 0;
  }
  return 0;
}

DeviceState CheckDevice(const std::string& device, int ifindex) {
  ifreq ifr;
  if (!DeviceIoctl(device, SIOCGIFINDEX, &ifr) || ifr.ifr_ifindex != ifindex) return DeviceState::kGone;
  if (!DeviceIoctl(device, SIOCGIFFLAGS, &ifr)) return DeviceState::kGone;
  return (ifr.ifr_flags & IFF_UP) ? DeviceState::kUp : DeviceState::kDown;
}

}  // namespace rsock
