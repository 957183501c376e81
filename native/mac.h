#pragma once

#include <napi.h>

namespace rsock {

// Exposes `mac` = { sign, verify }: batched SipHash-2-4 over ranges of one buffer.
void InitMac(Napi::Env env, Napi::Object exports);

}  // namespace rsock
