#pragma once
// The two JS arrays a batch is handed to JS in (capture and UDP mux alike): made once, lent to every
// callback, and re-made only when JS detached (transferred) one, which reads as a length change.
// Acquire() must run before every write into them, since any call into JS may have detached them.
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace rsock {

class BatchArrays {
 public:
  uint8_t* data = nullptr;
  uint32_t* meta = nullptr;

  // Throws a Napi::Error when the arrays cannot be allocated.
  void Acquire(Napi::Env env, size_t dataBytes, size_t metaWords) {
    data = nullptr;
    meta = nullptr;
    if (!dataRef_.IsEmpty()) {
      Napi::Buffer<uint8_t> b = dataRef_.Value();
      if (b.Length() == dataBytes) data = b.Data();
    }
    if (data == nullptr) {
      Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, dataBytes);
      dataRef_ = Napi::Persistent(b);
      data = b.Data();
    }
    if (!metaRef_.IsEmpty()) {
      Napi::Uint32Array m = metaRef_.Value();
      if (m.ElementLength() == metaWords) meta = m.Data();
    }
    if (meta == nullptr) {
      Napi::Uint32Array m = Napi::Uint32Array::New(env, metaWords);
      metaRef_ = Napi::Persistent(m);
      meta = m.Data();
    }
  }

  napi_value DataValue() { return dataRef_.Value(); }
  napi_value MetaValue() { return metaRef_.Value(); }

  void Reset() {
    dataRef_.Reset();
    metaRef_.Reset();
    data = nullptr;
    meta = nullptr;
  }

  // Drops the pointers only (at env teardown the references must not be touched).
  void Forget() {
    data = nullptr;
    meta = nullptr;
  }

 private:
  Napi::Reference<Napi::Buffer<uint8_t>> dataRef_;
  Napi::Reference<Napi::Uint32Array> metaRef_;
};

}  // namespace rsock
