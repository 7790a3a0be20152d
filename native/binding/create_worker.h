// Creating a unit file off the main thread. Life cycle: constructed on the main thread with the
// arguments copied in; Execute() runs Unit::create (which writes the whole file with zeros, at
// disk speed: seconds for gigabytes) on a libuv pool thread and touches no N-API, sending its
// progress; OnProgress() runs on the main thread and calls the progress callback once per report
// (a queue worker: a busy event loop gets every 64 MiB step, not only the latest); OnOK() calls
// back with the status and its sentence, after the last report. The worker deletes itself afterwards.
#pragma once
#include <napi.h>

#include <string>

#include "../core/unit.h"

namespace pmu_binding {

struct CreateProgress {
  uint64_t done;
  uint64_t total;
};

class CreateWorker : public Napi::AsyncProgressQueueWorker<CreateProgress> {
 public:
  CreateWorker(Napi::Function done, Napi::Function progress, std::string path, uint64_t size,
               uint32_t max_regions);
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const CreateProgress* data, size_t count) override;
  void OnOK() override;

 private:
  Napi::FunctionReference progress_;
  std::string path_;
  uint64_t size_;
  uint32_t max_regions_;
  pmu::Status status_ = pmu::Status::kOk;
  std::string detail_;
};

// createFileAsync(path, size, maxRegions, progress(done, total), done(status, detail))
Napi::Value CreateFileAsync(const Napi::CallbackInfo& info);

}  // namespace pmu_binding
