#include "checksum_worker.h"

namespace pmu_binding {

ChecksumWorker::ChecksumWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object,
                               const pmu::ChecksumSpan& span)
    : Napi::AsyncWorker(callback, "pmu:checksum"), owner_(owner), owner_ref_(Napi::Persistent(owner_object)),
      span_(span) {
  owner_->inflight++;
}

void ChecksumWorker::Execute() {
  // Pool thread: reads the mapping only (its address and size are fixed while inflight > 0).
  crc_ = owner_->unit().checksum_span(span_);
}

void ChecksumWorker::OnOK() {
  owner_->inflight--;
  Napi::Env env = Env();
  Callback().Call({Napi::Number::New(env, static_cast<int>(pmu::Status::kOk)), Napi::Number::New(env, crc_)});
}

}  // namespace pmu_binding
