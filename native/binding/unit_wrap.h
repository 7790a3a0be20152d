// NativeUnit: the JS object that owns one pmu::Unit. Glue only: every method unpacks its
// arguments, calls the core, and converts the result. Hot-path methods (write, read, flush)
// return a numeric status instead of throwing, so the caller pays for an error object only
// when there is one; everything else throws PmuError.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/unit.h"

namespace pmu_binding {

class NativeUnit : public Napi::ObjectWrap<NativeUnit> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NativeUnit(const Napi::CallbackInfo& info);
  ~NativeUnit() override;

  pmu::Unit& unit() { return unit_; }
  // Flush, checksum and region-create workers in flight; close() refuses while any is, so the mapping outlives them.
  int inflight = 0;

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Regions(const Napi::CallbackInfo& info);
  Napi::Value CreateRegion(const Napi::CallbackInfo& info);
  Napi::Value CreateRegionAsync(const Napi::CallbackInfo& info);
  Napi::Value DeleteRegion(const Napi::CallbackInfo& info);
  Napi::Value SetGrants(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value MarkForFlush(const Napi::CallbackInfo& info);
  Napi::Value FlushGroup(const Napi::CallbackInfo& info);
  Napi::Value FlushGroupSync(const Napi::CallbackInfo& info);
  Napi::Value CompareAndSwap(const Napi::CallbackInfo& info);
  Napi::Value Checksum(const Napi::CallbackInfo& info);
  Napi::Value Failed(const Napi::CallbackInfo& info);

  pmu::Unit unit_;
};

Napi::Object EntryToObject(Napi::Env env, const pmu::RegionEntry& e);
Napi::Object InfoToObject(Napi::Env env, const pmu::UnitInfo& info);

}  // namespace pmu_binding
