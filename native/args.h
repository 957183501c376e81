// Argument checks shared by every binding. Anything coming from JS is validated here before a
// pointer or length reaches native code, so bad input throws instead of crashing the process.
#pragma once

#include <napi.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace rsock {

struct ByteView {
  uint8_t* data;
  size_t length;
};

struct WordView {
  uint32_t* data;
  size_t length;  // in elements
};

// The checks below run several times per batch, on the data path: each makes one N-API call and
// builds its message (`what`, then `part` when given) only when it throws.
// A Buffer or any Uint8Array.
ByteView ArgBytes(const Napi::Value& v, const char* what, const char* part = nullptr);
WordView ArgUint32Array(const Napi::Value& v, const char* what, const char* part = nullptr);
// An integer in [min, max]; TypeError if not an integer, RangeError if outside.
uint32_t ArgUint(const Napi::Value& v, const char* what, uint32_t min, uint32_t max, const char* part = nullptr);
int64_t ArgInt(const Napi::Value& v, const char* what, int64_t min, int64_t max, const char* part = nullptr);
// opts[key] when present, else `def`; checked like ArgUint.
uint32_t ArgOptUint(const Napi::Object& opts, const char* key, const char* what, uint32_t def, uint32_t min,
                    uint32_t max);
std::string ArgString(const Napi::Value& v, const char* what);
Napi::Function ArgFunction(const Napi::Value& v, const char* what);
bool ArgBool(const Napi::Value& v, const char* what);

union SockAddr;
// IPv4 or IPv6 text and a port; TypeError naming `what` when the text is neither.
SockAddr ParseSockAddr(Napi::Env env, const std::string& s, uint16_t port, const char* what);

// strerror_r's text (strerror's buffer is shared by all threads of the process).
std::string ErrnoText(int err);

// For exceptions that reach the addon's loop callbacks: they go to process 'uncaughtException' like
// an event handler's would. Left pending instead, Node 20 only prints a deprecation warning (DEP0168)
// and swallows them.
void ReportUncaught(Napi::Env env, const Napi::Error& error);

[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& msg);
[[noreturn]] void ThrowRangeError(Napi::Env env, const std::string& msg);
[[noreturn]] void ThrowError(Napi::Env env, const std::string& msg);

}  // namespace rsock
