#include "crash_binding.h"

#include <string>

#include "../binding/args.h"
#include "crash_recorder.h"

namespace pmu_binding {

namespace {

// watch(path): record this file (absolute path) from its next mapping on.
Napi::Value Watch(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) return ThrowStatus(info.Env(), pmu::Status::kInvalid, "watch(path)");
  pmu::crash::watch(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value Reset(const Napi::CallbackInfo& info) {
  pmu::crash::reset();
  return info.Env().Undefined();
}

Napi::Value BarrierCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pmu::crash::barrier_count()));
}

Napi::Value Mark(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pmu::crash::mark()));
}

Napi::Value PointCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pmu::crash::point_count()));
}

// point(index) -> { barriers, dirtyPages }
Napi::Value Point(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t index;
  pmu::crash::PointInfo p;
  if (!ToU64(info[0], &index) || !pmu::crash::point_info(index, &p))
    return ThrowStatus(env, pmu::Status::kInvalid, "point(index): no such crash point");
  Napi::Object out = Napi::Object::New(env);
  out.Set("barriers", Napi::Number::New(env, static_cast<double>(p.barriers)));
  out.Set("dirtyPages", Napi::Number::New(env, static_cast<double>(p.dirty_pages)));
  return out;
}

// materialise(index, seed, mode, outPath) -> { dirtyPages, newPages, tornPages }
// mode: 0 random, 1 durable image only, 2 every dirty page new, 3 sector mask = seed.
Napi::Value Materialise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t index, seed;
  uint32_t mode;
  if (!ToU64(info[0], &index) || !ToU64(info[1], &seed) || !ToU32(info[2], &mode) || mode > 3 || !info[3].IsString())
    return ThrowStatus(env, pmu::Status::kInvalid, "materialise(index, seed, mode 0..3, outPath)");
  pmu::crash::ImageStats stats;
  std::string detail;
  if (!pmu::crash::materialise(index, seed, static_cast<pmu::crash::ImageMode>(mode),
                               info[3].As<Napi::String>().Utf8Value(), &stats, &detail))
    return ThrowStatus(env, pmu::Status::kSys, detail);
  Napi::Object out = Napi::Object::New(env);
  out.Set("dirtyPages", Napi::Number::New(env, static_cast<double>(stats.dirty_pages)));
  out.Set("newPages", Napi::Number::New(env, static_cast<double>(stats.new_pages)));
  out.Set("tornPages", Napi::Number::New(env, static_cast<double>(stats.torn_pages)));
  return out;
}

}  // namespace

Napi::Object CrashRecorderObject(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("watch", Napi::Function::New(env, Watch));
  o.Set("reset", Napi::Function::New(env, Reset));
  o.Set("barrierCount", Napi::Function::New(env, BarrierCount));
  o.Set("mark", Napi::Function::New(env, Mark));
  o.Set("pointCount", Napi::Function::New(env, PointCount));
  o.Set("point", Napi::Function::New(env, Point));
  o.Set("materialise", Napi::Function::New(env, Materialise));
  return o;
}

}  // namespace pmu_binding
