#include "create_region_worker.h"

#include <utility>

namespace pmu_binding {

CreateRegionWorker::CreateRegionWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object,
                                       pmu::Unit::CreateReservation reservation)
    : Napi::AsyncWorker(callback, "pmu:create-region"), owner_(owner), owner_ref_(Napi::Persistent(owner_object)),
      reservation_(std::move(reservation)) {
  owner_->inflight++;
}

void CreateRegionWorker::Execute() {
  // Pool thread: file I/O on the reserved extent only (no region maps it yet).
  status_ = owner_->unit().zero_for_create(reservation_, &detail_);
}

void CreateRegionWorker::OnOK() {
  owner_->inflight--;
  Napi::Env env = Env();
  pmu::Unit& unit = owner_->unit();
  const pmu::RegionEntry* created = nullptr;
  if (status_ == pmu::Status::kOk) {
    status_ = unit.finish_create_region(reservation_, &created, &detail_);
  } else {
    unit.abort_create_region(reservation_);
  }
  Napi::Value entry = status_ == pmu::Status::kOk && created != nullptr ? Napi::Value(EntryToObject(env, *created)) : env.Undefined();
  Callback().Call({Napi::Number::New(env, static_cast<int>(status_)), entry, Napi::String::New(env, detail_)});
}

}  // namespace pmu_binding
