// Scrub off the main thread. Life cycle: constructed on the main thread, which checks and
// translates the range (so a bad request fails before any pool work); Execute() computes the
// CRC32C on a libuv pool thread and touches no N-API; OnOK() runs on the main thread and calls
// back with (status, crc). Like FlushWorker it counts itself in the unit's `inflight` and
// holds a reference to the NativeUnit, so close() refuses (EBUSY) and the mapping stays while
// it runs.
//
// Why the pool and not inline: a checksum costs time in proportion to its bytes (and to the
// pages that must be read in from disk first), and the server's event loop also carries every
// other connection's writes; the range cap (kMaxChecksumBytes) bounds how long one request
// holds a pool thread instead.
#pragma once
#include <napi.h>

#include "unit_wrap.h"

namespace pmu_binding {

class ChecksumWorker : public Napi::AsyncWorker {
 public:
  ChecksumWorker(Napi::Function callback, NativeUnit* owner, Napi::Object owner_object, const pmu::ChecksumSpan& span);
  void Execute() override;
  void OnOK() override;

 private:
  NativeUnit* owner_;
  Napi::ObjectReference owner_ref_;
  pmu::ChecksumSpan span_;
  uint32_t crc_ = 0;
};

}  // namespace pmu_binding
