#include "status.h"

namespace pmu {

namespace {
struct StatusInfo {
  const char* code;
  const char* message;
};
const StatusInfo kStatusTable[] = {
#define PMU_STATUS_ROW(name, code, message) {code, message},
    PMU_STATUS_LIST(PMU_STATUS_ROW)
#undef PMU_STATUS_ROW
};
constexpr int kStatusCount = sizeof(kStatusTable) / sizeof(kStatusTable[0]);
}  // namespace

const char* status_code(Status s) {
  int i = static_cast<int>(s);
  return (i >= 0 && i < kStatusCount) ? kStatusTable[i].code : "EUNKNOWN";
}

const char* status_message(Status s) {
  int i = static_cast<int>(s);
  return (i >= 0 && i < kStatusCount) ? kStatusTable[i].message : "unknown status";
}

int status_count() { return kStatusCount; }

}  // namespace pmu
