#include "flush_worker.h"

namespace pmu_binding {

FlushWorker::FlushWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object)
    : Napi::AsyncWorker(callback, "pmu:flush"), owner_(owner),
      owner_ref_(Napi::Persistent(owner_object)), span_(owner->unit().take_pending_span()) {
  owner_->inflight++;
}

void FlushWorker::Execute() {
  // Pool thread: only the core's flush, which reads the immutable mapping address and size.
  if (!span_.empty()) status_ = owner_->unit().flush_span(span_);
}

void FlushWorker::OnOK() {
  owner_->inflight--;
  Napi::Env env = Env();
  Callback().Call({Napi::Number::New(env, static_cast<int>(status_))});
}

}  // namespace pmu_binding
