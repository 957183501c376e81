#pragma once

#include <napi.h>

namespace rsock {

// Exposes `crypto` = { seal, open, unmaskHeaders, hash, randomBytes, randomU32 }: the frame crypto of
// protocol v2 in batches (one call for many frames of one buffer, keys from a table of 80-byte slots).
// The construction is specified in src/core/crypto.ts; this file only carries it out with libsodium.
void InitCrypto(Napi::Env env, Napi::Object exports);

}  // namespace rsock
