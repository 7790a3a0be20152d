// The crash recorder's JS face (recording build only): see crash_recorder.h.
#pragma once
#include <napi.h>

namespace pmu_binding {
Napi::Object CrashRecorderObject(Napi::Env env);
}
