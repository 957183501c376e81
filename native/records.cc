#include "records.h"

namespace rsock {

void InitLayouts(Napi::Env env, Napi::Object exports) {
  Napi::Object layouts = Napi::Object::New(env);
  auto add = [&](const char* record, Napi::Object words, uint32_t stride) {
    words.Set("STRIDE", stride);
    layouts.Set(record, words);
  };
#define RSOCK_EXPORT_WORD(id, name) o.Set(#name, static_cast<uint32_t>(ns::id));
#define RSOCK_EXPORT_RECORD(record, nsName, WORDS) \
  {                                                \
    namespace ns = nsName;                         \
    Napi::Object o = Napi::Object::New(env);       \
    WORDS(RSOCK_EXPORT_WORD)                       \
    add(record, o, ns::kStride);                   \
  }
  RSOCK_EXPORT_RECORD("CAPTURE", capture_rec, RSOCK_CAPTURE_WORDS)
  RSOCK_EXPORT_RECORD("TX", tx_rec, RSOCK_TX_WORDS)
  RSOCK_EXPORT_RECORD("UDP_RX", udp_rx_rec, RSOCK_UDP_RX_WORDS)
  RSOCK_EXPORT_RECORD("UDP_TX", udp_tx_rec, RSOCK_UDP_TX_WORDS)
  RSOCK_EXPORT_RECORD("CRYPTO", crypto_rec, RSOCK_CRYPTO_WORDS)
#undef RSOCK_EXPORT_RECORD
#undef RSOCK_EXPORT_WORD
  Napi::Object slot = Napi::Object::New(env);
  slot.Set("BYTES", static_cast<uint32_t>(key_slot::kBytes));
  slot.Set("MASK", static_cast<uint32_t>(key_slot::kMask));
  slot.Set("MAC", static_cast<uint32_t>(key_slot::kMac));
  slot.Set("AEAD", static_cast<uint32_t>(key_slot::kAead));
  layouts.Set("KEY_SLOT", slot);
  exports.Set("layouts", layouts);
}

}  // namespace rsock
