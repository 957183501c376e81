#pragma once
// Word layouts of the Uint32Array records exchanged with JS. Each field is named once, here: the
// enums index the records in C++, and `layouts` (records.cc) hands the same names and numbers to JS,
// where a test holds them against the constants of src/io/native.ts.
#include <napi.h>

#include <cstdint>

// X(enumerator, JS name), in word order.
// An IPv6 address: four words, most significant first; the field is named by its first word.
#define RSOCK_IP6_WORDS(X, id, name) X(id, name) X(id##_1, name##_1) X(id##_2, name##_2) X(id##_3, name##_3)
// IP_VERSION is 6 for IPv6 (the *_IP6 words hold the addresses), else IPv4 (the *_IP words).
#define RSOCK_CAPTURE_WORDS(X) X(kOffset, OFFSET) X(kLength, LENGTH)
#define RSOCK_TX_WORDS(X)                                                                                     \
  X(kSrcIp, SRC_IP) X(kDstIp, DST_IP) X(kSrcPort, SRC_PORT) X(kDstPort, DST_PORT) X(kSeq, SEQ) X(kAck, ACK) \
  X(kFlags, FLAGS) X(kWindow, WINDOW) X(kPayloadOff, PAYLOAD_OFF) X(kPayloadLen, PAYLOAD_LEN)              \
  X(kTsVal, TS_VAL) X(kTsEcr, TS_ECR) X(kOptions, OPTIONS) X(kIpId, IP_ID) X(kTtl, TTL)                \
  X(kIpVersion, IP_VERSION) RSOCK_IP6_WORDS(X, kSrcIp6, SRC_IP6) RSOCK_IP6_WORDS(X, kDstIp6, DST_IP6)     \
  X(kFlowLabel, FLOW_LABEL)
#define RSOCK_UDP_RX_WORDS(X)                                                                       \
  X(kSocket, SOCKET) X(kOffset, OFFSET) X(kLength, LENGTH) X(kSrcIp, SRC_IP) X(kSrcPort, SRC_PORT) \
  X(kIpVersion, IP_VERSION) RSOCK_IP6_WORDS(X, kSrcIp6, SRC_IP6)
#define RSOCK_UDP_TX_WORDS(X)                                                                       \
  X(kSocket, SOCKET) X(kOffset, OFFSET) X(kLength, LENGTH) X(kDstIp, DST_IP) X(kDstPort, DST_PORT) \
  X(kIpVersion, IP_VERSION) RSOCK_IP6_WORDS(X, kDstIp6, DST_IP6)
#define RSOCK_CRYPTO_WORDS(X) \
  X(kKey, KEY) X(kOffset, OFFSET) X(kLength, LENGTH) X(kNonceLo, NONCE_LO) X(kNonceHi, NONCE_HI)

#define RSOCK_ENUMERATOR(id, name) id,

namespace rsock {

// A packet of a capture batch: where its IP (v4 or v6) bytes lie in the batch Buffer.
namespace capture_rec {
enum Word : uint32_t { RSOCK_CAPTURE_WORDS(RSOCK_ENUMERATOR) kStride };
}
// A segment for Injector.send(); IPs in host byte order.
namespace tx_rec {
enum Word : uint32_t { RSOCK_TX_WORDS(RSOCK_ENUMERATOR) kStride };
// Bits of the OPTIONS word (TX_OPT_* in src/io/records.ts).
enum Option : uint32_t { kOptTimestamp = 1 };
}
// A datagram of a UdpMux receive batch.
namespace udp_rx_rec {
enum Word : uint32_t { RSOCK_UDP_RX_WORDS(RSOCK_ENUMERATOR) kStride };
}
// A datagram for UdpMux.send().
namespace udp_tx_rec {
enum Word : uint32_t { RSOCK_UDP_TX_WORDS(RSOCK_ENUMERATOR) kStride };
}
// A frame for crypto.seal()/open()/unmaskHeaders(): its key slot, where its 7-byte header starts, its
// payload length, and its 64-bit nonce (the frame's stream offset) in two halves.
namespace crypto_rec {
enum Word : uint32_t { RSOCK_CRYPTO_WORDS(RSOCK_ENUMERATOR) kStride };
}
// Byte offsets inside one 80-byte slot of the crypto key table (not words: keys are bytes). Exported
// as layouts.KEY_SLOT so that the slot's layout, too, is named on both sides and checked.
namespace key_slot {
enum Byte : uint32_t { kMask = 0, kMac = 32, kAead = 48, kBytes = 80 };
}

// Exposes `layouts` = { CAPTURE, TX, UDP_RX, UDP_TX, CRYPTO }, each { STRIDE, <field>: word, ... },
// and KEY_SLOT = { BYTES, MASK, MAC, AEAD } (byte offsets).
void InitLayouts(Napi::Env env, Napi::Object exports);

}  // namespace rsock
