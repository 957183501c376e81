// Classic BPF programs for TCP sockets (SO_ATTACH_FILTER). A socket filter runs in tcp_filter(),
// before any TCP processing, and sees the TCP header at offset 0; "len" is header plus payload.
// Returning 0 drops the segment as if it never arrived, so the kernel neither ACKs nor resets.
#pragma once

#include <linux/filter.h>

namespace rsock {

// Drops every segment that carries payload. Installed on listening and connecting sockets before
// the handshake: SYN, SYN|ACK and the final ACK still pass, injected data never reaches the kernel.
// Accepted sockets inherit it from the listener, which closes the window between the handshake
// completing and accept() returning.
inline constexpr sock_filter kPayloadDropFilter[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 12),          // data offset byte
    BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 2),          // (doff >> 4) * 4 ...
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x3c),       // ... = TCP header length
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1),    // len > header length: has payload
    BPF_STMT(BPF_RET | BPF_K, 0),
    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
};

// Once the sequence numbers are known the kernel socket has nothing left to do: dropping even
// pure ACKs, FINs and RSTs keeps it from answering injected segments with challenge or dup ACKs.
inline constexpr sock_filter kDropAllFilter[] = {
    BPF_STMT(BPF_RET | BPF_K, 0),
};

}  // namespace rsock
