// Module entry: defines NativeUnit and the module functions, and keeps per-environment state
// (the PmuError constructor, the units to close at teardown) as instance data, so the addon
// also works in worker threads.
#include <napi.h>

#include <set>
#include <string>

#include "../core/crc32c.h"
#include "../core/unit.h"
#include "args.h"
#include "create_worker.h"
#include "unit_wrap.h"
#ifdef PMU_CRASH_RECORD
#include "../crash/crash_binding.h"  // native/crash/binding.gyp only: not in the npm package
#endif

namespace pmu_binding {

namespace {

struct AddonData {
  Napi::FunctionReference error_class;
};

AddonData* Data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// registerErrorClass(PmuError): called once by lib/unit/native.ts.
Napi::Value RegisterErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "registerErrorClass(PmuError)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Data(info.Env())->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// statusCodes(): the status table, in enum order.
Napi::Value StatusCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int n = pmu::status_count();
  Napi::Array out = Napi::Array::New(env, n);
  for (int i = 0; i < n; i++) {
    Napi::Object row = Napi::Object::New(env);
    row.Set("code", pmu::status_code(static_cast<pmu::Status>(i)));
    row.Set("message", pmu::status_message(static_cast<pmu::Status>(i)));
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

// createFile(path, size, maxRegions)
Napi::Value CreateFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size;
  uint32_t max_regions;
  if (!info[0].IsString() || !ToU64(info[1], &size) || !ToU32(info[2], &max_regions))
    return ThrowStatus(env, pmu::Status::kInvalid, "createFile(path, size, maxRegions)");
  std::string detail;
  pmu::Status s = pmu::Unit::create(info[0].As<Napi::String>().Utf8Value(), size, max_regions, &detail);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, detail);
  return env.Undefined();
}

const char* CommitStateName(pmu::CommitState s) {
  switch (s) {
    case pmu::CommitState::kValid: return "valid";
    case pmu::CommitState::kOldFormat: return "old-format";
    case pmu::CommitState::kUnsupported: return "unsupported";
    default: return "damaged";
  }
}

const char* CopyStateName(pmu::CopyState s) {
  switch (s) {
    case pmu::CopyState::kValid: return "valid";
    case pmu::CopyState::kTorn: return "torn";
    default: return "invalid";
  }
}

// inspect(path): the commit record's and both metadata copies' state, and the table if the
// file opens. Never locks.
Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowStatus(env, pmu::Status::kInvalid, "inspect(path)");
  pmu::Unit unit;
  pmu::CopyReport reports[2];
  pmu::CommitReport commit;
  std::string detail;
  pmu::Status s = unit.open_for_inspection(info[0].As<Napi::String>().Utf8Value(), reports, &detail, &commit);
  if (s == pmu::Status::kNotFound || s == pmu::Status::kSys) return ThrowStatus(env, s, detail);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array copies = Napi::Array::New(env, 2);
  for (uint32_t i = 0; i < 2; i++) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("state", CopyStateName(reports[i].state));
    c.Set("generation", Napi::Number::New(env, static_cast<double>(reports[i].generation)));
    c.Set("problem", reports[i].why);
    copies.Set(i, c);
  }
  out.Set("copies", copies);
  Napi::Object c = Napi::Object::New(env);
  c.Set("state", CommitStateName(commit.state));
  c.Set("generation", Napi::Number::New(env, static_cast<double>(commit.generation)));
  c.Set("problem", commit.why);
  out.Set("commit", c);
  out.Set("status", pmu::status_code(s));
  out.Set("problem", detail);
  if (s == pmu::Status::kOk) {
    out.Set("info", InfoToObject(env, unit.info()));
    out.Set("recoveryNote", unit.recovery_note());
    const auto& regions = unit.regions();
    Napi::Array list = Napi::Array::New(env, regions.size());
    for (size_t i = 0; i < regions.size(); i++) list.Set(static_cast<uint32_t>(i), EntryToObject(env, regions[i]));
    out.Set("regions", list);
  }
  if (unit.is_open()) unit.close();
  return out;
}

// crc32c(bytes, seed?)
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes bytes;
  uint32_t seed = 0;
  if (!ToBytes(info[0], &bytes) || (info.Length() > 1 && !info[1].IsUndefined() && !ToU32(info[1], &seed)))
    return ThrowStatus(env, pmu::Status::kInvalid, "crc32c(bytes: Uint8Array, seed?: integer)");
  return Napi::Number::New(env, pmu::crc32c(bytes.data, bytes.length, seed));
}

}  // namespace

Napi::Value ThrowStatus(Napi::Env env, pmu::Status status, const std::string& detail) {
  std::string message = detail.empty() ? pmu::status_message(status) : detail;
  AddonData* data = Data(env);
  if (data != nullptr && !data->error_class.IsEmpty()) {
    Napi::Object error = data->error_class.New({Napi::String::New(env, pmu::status_code(status)),
                                                Napi::String::New(env, message)});
    if (!env.IsExceptionPending()) Napi::Error(env, error).ThrowAsJavaScriptException();
  } else {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", pmu::status_code(status));
    error.ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("NativeUnit", NativeUnit::Define(env));
  exports.Set("registerErrorClass", Napi::Function::New(env, RegisterErrorClass));
  exports.Set("statusCodes", Napi::Function::New(env, StatusCodes));
  exports.Set("createFile", Napi::Function::New(env, CreateFile));
  exports.Set("createFileAsync", Napi::Function::New(env, CreateFileAsync));
  exports.Set("inspect", Napi::Function::New(env, Inspect));
  exports.Set("crc32c", Napi::Function::New(env, Crc32c));
#ifdef PMU_CRASH_RECORD
  exports.Set("crashRecorder", CrashRecorderObject(env));  // the recording build only
#endif
  return exports;
}

}  // namespace pmu_binding

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return pmu_binding::Init(env, exports); }

NODE_API_MODULE(pmu, InitModule)
