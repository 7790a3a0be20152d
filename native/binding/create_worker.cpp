#include "create_worker.h"

#include <utility>

#include "args.h"

namespace pmu_binding {

CreateWorker::CreateWorker(Napi::Function done, Napi::Function progress, std::string path, uint64_t size,
                           uint32_t max_regions)
    : Napi::AsyncProgressQueueWorker<CreateProgress>(done, "pmu:create"),
      progress_(Napi::Persistent(progress)), path_(std::move(path)), size_(size), max_regions_(max_regions) {}

void CreateWorker::Execute(const ExecutionProgress& progress) {
  // Pool thread: the core only; progress is copied into the queue, never touched as N-API.
  status_ = pmu::Unit::create(path_, size_, max_regions_, &detail_, [&progress](uint64_t done, uint64_t total) {
    CreateProgress p{done, total};
    progress.Send(&p, 1);
  });
}

void CreateWorker::OnProgress(const CreateProgress* data, size_t count) {
  if (count == 0 || data == nullptr) return;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  for (size_t i = 0; i < count; i++) {
    progress_.Call({Napi::Number::New(env, static_cast<double>(data[i].done)),
                    Napi::Number::New(env, static_cast<double>(data[i].total))});
    if (env.IsExceptionPending()) return;  // a throwing callback: the rest would throw too
  }
}

void CreateWorker::OnOK() {
  Napi::Env env = Env();
  Callback().Call({Napi::Number::New(env, static_cast<int>(status_)), Napi::String::New(env, detail_)});
}

Napi::Value CreateFileAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size;
  uint32_t max_regions;
  if (!info[0].IsString() || !ToU64(info[1], &size) || !ToU32(info[2], &max_regions) || !info[3].IsFunction() ||
      !info[4].IsFunction())
    return ThrowStatus(env, pmu::Status::kInvalid, "createFileAsync(path, size, maxRegions, progress, done)");
  auto* worker = new CreateWorker(info[4].As<Napi::Function>(), info[3].As<Napi::Function>(),
                                  info[0].As<Napi::String>().Utf8Value(), size, max_regions);
  worker->Queue();
  return env.Undefined();
}

}  // namespace pmu_binding
