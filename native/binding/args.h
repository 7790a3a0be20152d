// Argument unpacking shared by the glue. The TypeScript layer validates first with precise
// messages; these checks are the second line, so that no JS value can reach the core as a
// wrapped, negative or fractional offset.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>

#include "../core/status.h"

namespace pmu_binding {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// A non-negative integer from a Number (exact, <= 2^53 - 1) or a BigInt (lossless). One N-API
// call for a Number (the hot path's case); napi_get_value_double refuses anything else.
inline bool ToU64(const Napi::Value& value, uint64_t* out) {
  napi_env env = value.Env();
  double d = 0;
  napi_status status = napi_get_value_double(env, value, &d);
  if (status == napi_ok) {
    if (!std::isfinite(d) || d < 0 || d > kMaxSafeInteger || std::floor(d) != d) return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  if (status != napi_number_expected) return false;
  bool lossless = false;
  uint64_t v = 0;
  if (napi_get_value_bigint_uint64(env, value, &v, &lossless) != napi_ok || !lossless) return false;
  *out = v;
  return true;
}

inline bool ToU32(const Napi::Value& value, uint32_t* out) {
  uint64_t v;
  if (!ToU64(value, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// The bytes of a Uint8Array (a Buffer included), without copying.
struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

inline bool ToBytes(const Napi::Value& value, Bytes* out) {
  // One call: it fails (napi_invalid_arg) for anything but a typed array.
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(value.Env(), value, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array)
    return false;
  out->data = static_cast<uint8_t*>(data);
  out->length = length;
  return true;
}

// Throws a PmuError (the class lib/unit/errors.ts registers at load) and returns undefined.
Napi::Value ThrowStatus(Napi::Env env, pmu::Status status, const std::string& detail);

}  // namespace pmu_binding
