#include "mac.h"

#include <sodium.h>

#include <cstring>

#include "args.h"
#include "records.h"

namespace rsock {

namespace {

namespace rec = mac_rec;

constexpr size_t kTagBytes = crypto_shorthash_siphash24_BYTES;
static_assert(kTagBytes == 8, "SipHash-2-4 tags are 8 bytes");
static_assert(crypto_shorthash_siphash24_KEYBYTES == 16, "SipHash-2-4 keys are 16 bytes");

struct MacArgs {
  const uint8_t* key;
  ByteView data;
  const uint32_t* meta;
  uint32_t count;
};

// Every range is checked before any is hashed, so a bad record cannot leave a half-signed batch.
MacArgs ParseArgs(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  std::string name = std::string("mac.") + fn;
  ByteView key = ArgBytes(info[0], (name + ": key").c_str());
  if (key.length != crypto_shorthash_siphash24_KEYBYTES) {
    ThrowRangeError(env, name + ": key must be 16 bytes (got " + std::to_string(key.length) + ")");
  }
  ByteView data = ArgBytes(info[1], (name + ": data").c_str());
  WordView meta = ArgUint32Array(info[2], (name + ": meta").c_str());
  uint32_t count = ArgUint(info[3], (name + ": count").c_str(), 0, static_cast<uint32_t>(meta.length / rec::kStride));
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t* m = meta.data + rec::kStride * static_cast<size_t>(i);
    if (static_cast<uint64_t>(m[rec::kOffset]) + m[rec::kLength] > data.length) {
      ThrowRangeError(env, name + ": range " + std::to_string(i) + " lies outside data");
    }
    if (static_cast<uint64_t>(m[rec::kTag]) + kTagBytes > data.length) {
      ThrowRangeError(env, name + ": tag " + std::to_string(i) + " lies outside data");
    }
  }
  return MacArgs{key.data, data, meta.data, count};
}

void Sign(const Napi::CallbackInfo& info) {
  MacArgs a = ParseArgs(info, "sign");
  uint8_t tag[kTagBytes];
  for (uint32_t i = 0; i < a.count; ++i) {
    const uint32_t* m = a.meta + rec::kStride * static_cast<size_t>(i);
    crypto_shorthash_siphash24(tag, a.data.data + m[rec::kOffset], m[rec::kLength], a.key);
    // Through a copy: the tag may overlap the range it authenticates.
    std::memcpy(a.data.data + m[rec::kTag], tag, kTagBytes);
  }
}

void Verify(const Napi::CallbackInfo& info) {
  MacArgs a = ParseArgs(info, "verify");
  ByteView ok = ArgBytes(info[4], "mac.verify: ok");
  if (ok.length < a.count) {
    ThrowRangeError(info.Env(), "mac.verify: ok must hold at least count (" + std::to_string(a.count) + ") entries");
  }
  uint8_t tag[kTagBytes];
  for (uint32_t i = 0; i < a.count; ++i) {
    const uint32_t* m = a.meta + rec::kStride * static_cast<size_t>(i);
    crypto_shorthash_siphash24(tag, a.data.data + m[rec::kOffset], m[rec::kLength], a.key);
    ok.data[i] = sodium_memcmp(tag, a.data.data + m[rec::kTag], kTagBytes) == 0 ? 1 : 0;
  }
}

// A 16-byte subkey for `label`: BLAKE2b-128(label) keyed with BLAKE2b-256(secret). Done here rather
// than with node:crypto because loading OpenSSL into the process costs ~2 MiB of RSS for one call.
Napi::Value DeriveKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView secret = ArgBytes(info[0], "mac.deriveKey: secret");
  ByteView label = ArgBytes(info[1], "mac.deriveKey: label");
  uint8_t k[crypto_generichash_BYTES];
  crypto_generichash(k, sizeof k, secret.data, secret.length, nullptr, 0);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, crypto_shorthash_siphash24_KEYBYTES);
  crypto_generichash(out.Data(), out.Length(), label.data, label.length, k, sizeof k);
  sodium_memzero(k, sizeof k);
  return out;
}

// An unpredictable 32-bit number (the client's session id), from the kernel's CSPRNG.
Napi::Value RandomU32(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), randombytes_random());
}

}  // namespace

void InitMac(Napi::Env env, Napi::Object exports) {
  Napi::Object mac = Napi::Object::New(env);
  mac.Set("sign", Napi::Function::New<Sign>(env, "sign"));
  mac.Set("verify", Napi::Function::New<Verify>(env, "verify"));
  mac.Set("deriveKey", Napi::Function::New<DeriveKey>(env, "deriveKey"));
  mac.Set("randomU32", Napi::Function::New<RandomU32>(env, "randomU32"));
  exports.Set("mac", mac);
}

}  // namespace rsock
