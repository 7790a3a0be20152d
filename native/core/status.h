// One table of every status the native layer can return. The binding exports the codes
// in this order, so lib/unit/errors.ts maps a numeric status to the same string code the
// server sends on the wire: there is no second list to keep in step.
#pragma once

#define PMU_STATUS_LIST(X)                                                                 \
  X(kOk, "OK", "success")                                                                   \
  X(kInvalid, "EINVAL", "invalid argument")                                                  \
  X(kBounds, "EBOUNDS", "address range is outside the region")                             \
  X(kCorrupt, "ECORRUPT", "the PMU file is corrupt")                                       \
  X(kLocked, "ELOCKED", "the PMU file is open in another process")                        \
  X(kNoSpace, "ENOSPC", "not enough free space in the PMU file")                             \
  X(kExists, "EEXIST", "a region with that name already exists")                           \
  X(kNotFound, "ENOENT", "no such region")                                                    \
  X(kTooMany, "ETOOMANY", "the address translation table is full")                        \
  X(kIo, "EIO", "an msync or file operation failed; the unit no longer accepts writes")   \
  X(kClosed, "ECLOSED", "the unit is closed")                                              \
  X(kBusy, "EBUSY", "a flush is still in flight")                                          \
  X(kAlign, "EALIGN", "address is not 8-byte aligned")                                     \
  X(kFenced, "EFENCED", "this writer was fenced: another writer took over the region")    \
  X(kSys, "ESYS", "a system call failed")

namespace pmu {

enum class Status : int {
#define PMU_STATUS_ENUM(name, code, message) name,
  PMU_STATUS_LIST(PMU_STATUS_ENUM)
#undef PMU_STATUS_ENUM
};

const char* status_code(Status s);
const char* status_message(Status s);
int status_count();

}  // namespace pmu
