#pragma once
#include <napi.h>

namespace pmu_binding {
Napi::Value MeasureFloor(const Napi::CallbackInfo& info);
}
