// Module entry: raw I/O primitives for rsock. Protocol decisions all live in TypeScript.
#include <napi.h>
#include <pcap/pcap.h>
#include <sodium.h>

#include "capture.h"
#include "crypto.h"
#include "injector.h"
#include "records.h"
#include "socket_watcher.h"
#include "udp_mux.h"

namespace {

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("pcap", pcap_lib_version());
  o.Set("sodium", sodium_version_string());
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Idempotent and thread-safe; needed before any libsodium primitive.
  if (sodium_init() < 0) throw Napi::Error::New(env, "rsock_native: libsodium failed to initialise");
  rsock::Capture::Init(env, exports);
  rsock::Injector::Init(env, exports);
  rsock::SocketWatcher::Init(env, exports);
  rsock::UdpMux::Init(env, exports);
  rsock::InitCrypto(env, exports);
  rsock::InitLayouts(env, exports);
  exports.Set("versions", Napi::Function::New<Versions>(env, "versions"));
  return exports;
}

}  // namespace

NODE_API_MODULE(rsock_native, Init)
