// Group commit off the main thread. Life cycle: constructed on the main thread, which takes
// the unit's pending span (every write that joined the group before this point); Execute()
// runs msync on a libuv pool thread and touches no N-API; OnOK() runs on the main thread and
// calls back with the status. The worker holds a reference to the NativeUnit so neither the
// object nor its mapping can go away while msync runs.
#pragma once
#include <napi.h>

#include "unit_wrap.h"

namespace pmu_binding {

class FlushWorker : public Napi::AsyncWorker {
 public:
  FlushWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object);
  void Execute() override;
  void OnOK() override;

 private:
  NativeUnit* owner_;
  Napi::ObjectReference owner_ref_;
  pmu::FlushSpan span_;
  pmu::Status status_ = pmu::Status::kOk;
};

}  // namespace pmu_binding
