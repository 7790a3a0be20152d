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

// A non-negative integer from a Number (exact, <= 2^53 - 1) or a BigInt (lossless).
inline bool ToU64(const Napi::Value& value, uint64_t* out) {
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d > kMaxSafeInteger || std::floor(d) != d) return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  if (value.IsBigInt()) {
    bool lossless = false;
    uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) return false;
    *out = v;
    return true;
  }
  return false;
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
  if (!value.IsTypedArray()) return false;
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array bytes = array.As<Napi::Uint8Array>();
  out->data = bytes.Data();
  out->length = bytes.ByteLength();
  return true;
}

// Throws a PmuError (the class lib/unit/errors.ts registers at load) and returns undefined.
Napi::Value ThrowStatus(Napi::Env env, pmu::Status status, const std::string& detail);

}  // namespace pmu_binding
