#include "args.h"

#include "net_util.h"

#include <arpa/inet.h>
#include <string.h>

#include <cmath>

namespace rsock {

void ReportUncaught(Napi::Env env, const Napi::Error& error) { napi_fatal_exception(env, error.Value()); }

void ThrowTypeError(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
void ThrowRangeError(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }
void ThrowError(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

namespace {

std::string What(const char* what, const char* part) { return part ? std::string(what) + part : std::string(what); }

// One call gives the type, element count and data; it fails (without throwing) for anything else.
bool TypedArrayData(const Napi::Value& v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  if (napi_get_typedarray_info(v.Env(), v, &type, length, data, nullptr, nullptr) != napi_ok) return false;
  return type == want;
}

}  // namespace

ByteView ArgBytes(const Napi::Value& v, const char* what, const char* part) {
  void* data = nullptr;
  size_t length = 0;
  if (!TypedArrayData(v, napi_uint8_array, &data, &length)) {
    ThrowTypeError(v.Env(), What(what, part) + " must be a Buffer or Uint8Array");
  }
  return ByteView{static_cast<uint8_t*>(data), length};
}

WordView ArgUint32Array(const Napi::Value& v, const char* what, const char* part) {
  void* data = nullptr;
  size_t length = 0;
  if (!TypedArrayData(v, napi_uint32_array, &data, &length)) ThrowTypeError(v.Env(), What(what, part) + " must be a Uint32Array");
  return WordView{static_cast<uint32_t*>(data), length};
}

int64_t ArgInt(const Napi::Value& v, const char* what, int64_t min, int64_t max, const char* part) {
  double d = 0;
  if (napi_get_value_double(v.Env(), v, &d) != napi_ok) ThrowTypeError(v.Env(), What(what, part) + " must be a number");
  if (!std::isfinite(d) || std::floor(d) != d) {
    ThrowTypeError(v.Env(), What(what, part) + " must be an integer");
  }
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowRangeError(v.Env(), What(what, part) + " must be between " + std::to_string(min) + " and " +
                                 std::to_string(max) + " (got " + Napi::Number::New(v.Env(), d).ToString().Utf8Value() + ")");
  }
  return static_cast<int64_t>(d);
}

uint32_t ArgUint(const Napi::Value& v, const char* what, uint32_t min, uint32_t max, const char* part) {
  return static_cast<uint32_t>(ArgInt(v, what, min, max, part));
}

uint32_t ArgOptUint(const Napi::Object& opts, const char* key, const char* what, uint32_t def, uint32_t min,
                    uint32_t max) {
  Napi::Value v = opts.Get(key);
  return v.IsUndefined() ? def : ArgUint(v, what, min, max);
}

std::string ArgString(const Napi::Value& v, const char* what) {
  if (!v.IsString()) ThrowTypeError(v.Env(), std::string(what) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  // An embedded NUL would silently truncate the name C libraries see.
  if (s.find('\0') != std::string::npos) ThrowTypeError(v.Env(), std::string(what) + " must not contain NUL");
  return s;
}

Napi::Function ArgFunction(const Napi::Value& v, const char* what) {
  if (!v.IsFunction()) ThrowTypeError(v.Env(), std::string(what) + " must be a function");
  return v.As<Napi::Function>();
}

bool ArgBool(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) ThrowTypeError(v.Env(), std::string(what) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

SockAddr ParseSockAddr(Napi::Env env, const std::string& s, uint16_t port, const char* what) {
  SockAddr a;
  if (!MakeSockAddr(s, port, &a)) ThrowTypeError(env, std::string(what) + " is not an IPv4 or IPv6 address: \"" + s + "\"");
  return a;
}

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
  const char* s = strerror_r(err, buf, sizeof buf);
  return s;
}

}  // namespace rsock
