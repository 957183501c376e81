#include "crypto.h"

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "args.h"
#include "records.h"

namespace rsock {

namespace {

namespace rec = crypto_rec;

constexpr size_t kHeader = 7;
// One ChaCha20 block masks the header and as much of the payload as fits with it: a single block
// costs the same whether 7 or 64 of its bytes are used.
constexpr size_t kMaskBytes = 64;
constexpr size_t kTagPlain = crypto_shorthash_siphash24_BYTES;
constexpr size_t kTagAead = crypto_aead_chacha20poly1305_ietf_ABYTES;
constexpr size_t kNonceBytes = crypto_aead_chacha20poly1305_ietf_NPUBBYTES;
// The keystream starts at block 1, where ChaCha20-Poly1305-IETF starts encrypting (block 0 makes its
// Poly1305 key), so that libsodium's WebAssembly build, which has the AEAD but not the bare stream,
// can compute the same bytes (test/sim/crypto.ts).
constexpr uint32_t kMaskBlockCounter = 1;
// Larger requests are a caller's bug (rsock wants nonces and keys); refusing them keeps a typo from
// allocating gigabytes.
constexpr uint32_t kMaxRandomBytes = 1u << 20;

static_assert(kTagPlain == 8 && kTagAead == 16, "tag sizes are part of the wire format");
static_assert(kNonceBytes == 12 && crypto_stream_chacha20_ietf_NONCEBYTES == kNonceBytes, "IETF 96-bit nonces");
static_assert(key_slot::kMask == 0 && key_slot::kMac == key_slot::kMask + crypto_stream_chacha20_ietf_KEYBYTES,
              "MASK is a 32-byte ChaCha20 key at the start of the slot");
static_assert(key_slot::kAead == key_slot::kMac + crypto_shorthash_siphash24_KEYBYTES,
              "MAC is a 16-byte SipHash-2-4 key after MASK");
static_assert(key_slot::kBytes == key_slot::kAead + crypto_aead_chacha20poly1305_ietf_KEYBYTES,
              "AEAD is a 32-byte ChaCha20-Poly1305 key ending the slot");

struct Batch {
  ByteView keys;
  ByteView data;
  WordView meta;
  uint32_t count;

  const uint32_t* Record(uint32_t i) const { return meta.data + rec::kStride * static_cast<size_t>(i); }
  const uint8_t* Slot(const uint32_t* m) const { return keys.data + size_t{key_slot::kBytes} * m[rec::kKey]; }
  uint8_t* Frame(const uint32_t* m) const { return data.data + m[rec::kOffset]; }
};

bool Overlap(const ByteView& a, const void* b, size_t bLength) {
  auto x = reinterpret_cast<uintptr_t>(a.data);
  auto y = reinterpret_cast<uintptr_t>(b);
  return a.length > 0 && bLength > 0 && x < y + bLength && y < x + a.length;
}

// Every record is checked before any frame is touched, so a bad record cannot leave a half-sealed
// batch. With withPayload each frame must hold header, LENGTH payload bytes and tagBytes of tag (seal,
// open); without, the header only (unmaskHeaders, which runs before JS knows the frame's length). Records and keys must not lie inside
// the bytes being rewritten: a record rewritten mid-batch would escape the checks made here.
Batch ParseBatch(const Napi::CallbackInfo& info, const char* name, bool withPayload, size_t tagBytes) {
  Napi::Env env = info.Env();
  ByteView keys = ArgBytes(info[0], name, ": keys");
  if (keys.length % key_slot::kBytes != 0) {
    ThrowRangeError(env, std::string(name) + ": keys must hold whole " + std::to_string(key_slot::kBytes) + "-byte slots (got " +
                             std::to_string(keys.length) + " bytes)");
  }
  const uint64_t slots = keys.length / key_slot::kBytes;
  ByteView data = ArgBytes(info[1], name, ": data");
  WordView meta = ArgUint32Array(info[2], name, ": meta");
  uint32_t count = ArgUint(info[3], name, 0, static_cast<uint32_t>(meta.length / rec::kStride), ": count");
  if (Overlap(data, meta.data, meta.length * sizeof(uint32_t)) || Overlap(data, keys.data, keys.length)) {
    ThrowRangeError(env, std::string(name) + ": data must not share memory with keys or meta");
  }
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t* m = meta.data + rec::kStride * static_cast<size_t>(i);
    if (m[rec::kKey] >= slots) {
      ThrowRangeError(env, std::string(name) + ": record " + std::to_string(i) + " names key slot " + std::to_string(m[rec::kKey]) +
                               " of a table of " + std::to_string(slots));
    }
    uint64_t bytes = kHeader + (withPayload ? uint64_t{m[rec::kLength]} + tagBytes : 0);
    if (m[rec::kOffset] + bytes > data.length) {
      ThrowRangeError(env, std::string(name) + ": frame " + std::to_string(i) + " (" + std::to_string(bytes) + " bytes at " +
                               std::to_string(m[rec::kOffset]) + ") lies outside data (" +
                               std::to_string(data.length) + " bytes)");
    }
  }
  return Batch{keys, data, meta, count};
}

// nonce12 = u64le(NONCE_HI << 32 | NONCE_LO) || 00000000.
void Nonce(const uint32_t* m, uint8_t n[kNonceBytes]) {
  const uint32_t halves[2] = {m[rec::kNonceLo], m[rec::kNonceHi]};
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 4; ++k) n[4 * h + k] = static_cast<uint8_t>(halves[h] >> (8 * k));
  }
  std::memset(n + 8, 0, kNonceBytes - 8);
}

// frame[from, to) ^= ks[from, to), ks being the record's 64-byte mask block.
void Mask(const uint8_t* slot, const uint8_t nonce[kNonceBytes], uint8_t* frame, size_t from, size_t to,
          uint8_t ks[kMaskBytes]) {
  std::memset(ks, 0, kMaskBytes);
  crypto_stream_chacha20_ietf_xor_ic(ks, ks, kMaskBytes, nonce, kMaskBlockCounter, slot + key_slot::kMask);
  for (size_t i = from; i < to; ++i) frame[i] ^= ks[i];
}

size_t MaskedEnd(uint32_t length) { return std::min<size_t>(kMaskBytes, kHeader + size_t{length}); }

void Seal(const Napi::CallbackInfo& info) {
  bool aead = ArgBool(info[4], "crypto.seal: aead");
  Batch b = ParseBatch(info, "crypto.seal", true, aead ? kTagAead : kTagPlain);
  uint8_t nonce[kNonceBytes];
  uint8_t ks[kMaskBytes];
  for (uint32_t i = 0; i < b.count; ++i) {
    const uint32_t* m = b.Record(i);
    const uint8_t* slot = b.Slot(m);
    uint8_t* f = b.Frame(m);
    uint8_t* payload = f + kHeader;
    const size_t len = m[rec::kLength];
    Nonce(m, nonce);
    if (aead) {
      // In place (libsodium allows c == m); the plaintext header is the associated data.
      crypto_aead_chacha20poly1305_ietf_encrypt_detached(payload, payload + len, nullptr, payload, len, f, kHeader,
                                                         nullptr, nonce, slot + key_slot::kAead);
      Mask(slot, nonce, f, 0, kHeader, ks);
    } else {
      // The tag covers the plaintext and stays unmasked: the receiver checks it after unmasking.
      crypto_shorthash_siphash24(payload + len, f, kHeader + len, slot + key_slot::kMac);
      Mask(slot, nonce, f, 0, MaskedEnd(m[rec::kLength]), ks);
    }
  }
  sodium_memzero(ks, sizeof ks);
}

void UnmaskHeaders(const Napi::CallbackInfo& info) {
  Batch b = ParseBatch(info, "crypto.unmaskHeaders", false, 0);
  uint8_t nonce[kNonceBytes];
  uint8_t ks[kMaskBytes];
  for (uint32_t i = 0; i < b.count; ++i) {
    const uint32_t* m = b.Record(i);
    Nonce(m, nonce);
    Mask(b.Slot(m), nonce, b.Frame(m), 0, kHeader, ks);
  }
  sodium_memzero(ks, sizeof ks);
}

void Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool aead = ArgBool(info[4], "crypto.open: aead");
  Batch b = ParseBatch(info, "crypto.open", true, aead ? kTagAead : kTagPlain);
  ByteView ok = ArgBytes(info[5], "crypto.open: ok");
  if (ok.length < b.count) {
    ThrowRangeError(env, "crypto.open: ok must hold at least count (" + std::to_string(b.count) + ") entries");
  }
  // ok is written while records are still being read: it must not alias them (nor frames, nor keys).
  if (Overlap(ok, b.meta.data, b.meta.length * sizeof(uint32_t)) || Overlap(ok, b.keys.data, b.keys.length) ||
      Overlap(ok, b.data.data, b.data.length)) {
    ThrowRangeError(env, "crypto.open: ok must not share memory with keys, data or meta");
  }
  uint8_t nonce[kNonceBytes];
  uint8_t ks[kMaskBytes];
  uint8_t tag[kTagPlain];
  for (uint32_t i = 0; i < b.count; ++i) {
    const uint32_t* m = b.Record(i);
    const uint8_t* slot = b.Slot(m);
    uint8_t* f = b.Frame(m);
    uint8_t* payload = f + kHeader;
    const size_t len = m[rec::kLength];
    Nonce(m, nonce);
    if (aead) {
      // Checks the tag before decrypting; on a wrong tag libsodium zeroes the payload (the WASM build
      // in test/sim does the same), so no unauthenticated plaintext is left for a careless caller.
      ok.data[i] = crypto_aead_chacha20poly1305_ietf_decrypt_detached(payload, nullptr, payload, len, payload + len, f,
                                                                     kHeader, nonce, slot + key_slot::kAead) == 0;
    } else {
      Mask(slot, nonce, f, kHeader, MaskedEnd(m[rec::kLength]), ks);
      crypto_shorthash_siphash24(tag, f, kHeader + len, slot + key_slot::kMac);
      ok.data[i] = sodium_memcmp(tag, payload + len, kTagPlain) == 0;
    }
  }
  sodium_memzero(ks, sizeof ks);
}

// BLAKE2b (for key derivation and handshake transcripts), keyed or not.
Napi::Value Hash(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* key = nullptr;
  size_t keyLength = 0;
  if (!info[0].IsNull()) {
    ByteView k = ArgBytes(info[0], "crypto.hash: key (or null)");
    if (k.length < crypto_generichash_KEYBYTES_MIN || k.length > crypto_generichash_KEYBYTES_MAX) {
      ThrowRangeError(env, "crypto.hash: key must be null or " + std::to_string(crypto_generichash_KEYBYTES_MIN) +
                               ".." + std::to_string(crypto_generichash_KEYBYTES_MAX) + " bytes (got " +
                               std::to_string(k.length) + ")");
    }
    key = k.data;
    keyLength = k.length;
  }
  ByteView msg = ArgBytes(info[1], "crypto.hash: msg");
  uint32_t outLength = ArgUint(info[2], "crypto.hash: outLen", crypto_generichash_BYTES_MIN, crypto_generichash_BYTES_MAX);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, outLength);
  crypto_generichash(out.Data(), outLength, msg.data, msg.length, key, keyLength);
  return out;
}

// Bytes from the kernel's CSPRNG (handshake randoms, session ids).
Napi::Value RandomBytes(const Napi::CallbackInfo& info) {
  uint32_t n = ArgUint(info[0], "crypto.randomBytes: n", 0, kMaxRandomBytes);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), n);
  randombytes_buf(out.Data(), n);
  return out;
}

Napi::Value RandomU32(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), randombytes_random()); }

}  // namespace

void InitCrypto(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("seal", Napi::Function::New<Seal>(env, "seal"));
  c.Set("open", Napi::Function::New<Open>(env, "open"));
  c.Set("unmaskHeaders", Napi::Function::New<UnmaskHeaders>(env, "unmaskHeaders"));
  c.Set("hash", Napi::Function::New<Hash>(env, "hash"));
  c.Set("randomBytes", Napi::Function::New<RandomBytes>(env, "randomBytes"));
  c.Set("randomU32", Napi::Function::New<RandomU32>(env, "randomU32"));
  exports.Set("crypto", c);
}

}  // namespace rsock
