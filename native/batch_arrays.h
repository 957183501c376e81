#pragma once
// The two JS arrays a batch is handed to JS in (capture and UDP mux alike): made once, lent to every
// callback, and re-made only when JS detached (transferred) one, which reads as a length change.
// Any run of JS may have detached them: whoever lets JS run calls Lent(), and Acquire() must run
// before every write. It checks the arrays again only after Lent(), so a wake-up that delivers one
// batch checks them once, not before and after the batch.
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace rsock {

class BatchArrays {
 public:
  uint8_t* data = nullptr;
  uint32_t* meta = nullptr;

  // JS has run (or may have) since the arrays were last checked.
  void Lent() { checked_ = false; }

  // Throws a Napi::Error when the arrays cannot be allocated. While they are intact a check costs two
  // N-API calls for each.
  void Acquire(Napi::Env env, size_t dataBytes, size_t metaWords) {
    if (checked_) return;
    data = static_cast<uint8_t*>(Intact(env, dataRef_, napi_uint8_array, dataBytes));
    if (data == nullptr) {
      Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, dataBytes);
      dataRef_ = Napi::Persistent(b);
      data = b.Data();
    }
    meta = static_cast<uint32_t*>(Intact(env, metaRef_, napi_uint32_array, metaWords));
    if (meta == nullptr) {
      Napi::Uint32Array m = Napi::Uint32Array::New(env, metaWords);
      metaRef_ = Napi::Persistent(m);
      meta = m.Data();
    }
    checked_ = true;
  }

  napi_value DataValue(Napi::Env env) const { return Value(env, dataRef_); }
  napi_value MetaValue(Napi::Env env) const { return Value(env, metaRef_); }

  void Reset() {
    dataRef_.Reset();
    metaRef_.Reset();
    data = nullptr;
    meta = nullptr;
    checked_ = false;
  }

  // Drops the pointers only (at env teardown the references must not be touched).
  void Forget() {
    data = nullptr;
    meta = nullptr;
    checked_ = false;
  }

 private:
  template <typename Ref>
  static napi_value Value(Napi::Env env, const Ref& ref) {
    napi_value v = nullptr;
    if (napi_get_reference_value(env, ref, &v) != napi_ok) v = nullptr;
    return v;
  }

  // The array's data while it still has `length` elements (a detached one has none); else null.
  template <typename Ref>
  static void* Intact(Napi::Env env, const Ref& ref, napi_typedarray_type type, size_t length) {
    if (ref.IsEmpty()) return nullptr;
    napi_value v = nullptr;
    napi_typedarray_type t;
    size_t n = 0;
    void* p = nullptr;
    if (napi_get_reference_value(env, ref, &v) != napi_ok || v == nullptr ||
        napi_get_typedarray_info(env, v, &t, &n, &p, nullptr, nullptr) != napi_ok) {
      return nullptr;
    }
    return t == type && n == length ? p : nullptr;
  }

  Napi::Reference<Napi::Buffer<uint8_t>> dataRef_;
  Napi::Reference<Napi::Uint32Array> metaRef_;
  bool checked_ = false;
};

}  // namespace rsock
