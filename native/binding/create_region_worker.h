// Creating a region off the main thread. Life cycle: the main thread runs every check and
// reserves the extent and the name (Unit::begin_create_region, so a bad request fails before
// any pool work); Execute() writes zeros over the part of the extent a deleted region used
// (seconds per GiB) on a libuv pool thread and touches no N-API and no table state; OnOK()
// runs on the main thread, commits the table (only now does it name the region: a crash
// before leaves the extent free) and calls back with (status, entry | undefined, detail). Like
// FlushWorker it counts itself in the unit's `inflight` and holds a reference to the
// NativeUnit, so close() refuses (EBUSY) and the file stays open while it runs.
#pragma once
#include <napi.h>

#include <string>

#include "unit_wrap.h"

namespace pmu_binding {

class CreateRegionWorker : public Napi::AsyncWorker {
 public:
  CreateRegionWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object,
                     pmu::Unit::CreateReservation reservation);
  void Execute() override;
  void OnOK() override;

 private:
  NativeUnit* owner_;
  Napi::ObjectReference owner_ref_;
  pmu::Unit::CreateReservation reservation_;
  pmu::Status status_ = pmu::Status::kOk;
  std::string detail_;
};

}  // namespace pmu_binding
