// Crash-state recorder (only in the recording build, PMU_CRASH_RECORD; never in the normal addon).
//
// Model of a power loss: every page dirtied since it was last made durable may hold its old
// (durable) content, its new content, or a mix of the two at 512-byte sector boundaries.
// Durable means: covered by an msync of the mapping, or written through the fd and then
// fsync'd/fdatasync'd. The recorder keeps a copy of the durable image; at every barrier (msync,
// fsync, fdatasync of the recorded file) it first records a crash point (the durable image so far
// plus the pages that differ from it right now), then moves the barrier's range into the durable
// image. Pages changed through the fd (pwrite, fallocate) are found the same way, by the diff.
//
// It sees the storage layer's syscalls by link-time wrapping (-Wl,--wrap=msync,...), so
// native/core/pm_file.cpp is compiled unchanged. One file is recorded at a time: the one named
// by watch(); it may be closed and opened again, the record carries on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pmu {
namespace crash {

constexpr uint64_t kSectorSize = 512;

struct PointInfo {
  uint64_t barriers;     // barriers completed before this point: acks counted at <= this are durable
  uint64_t dirty_pages;  // pages that may be old, new or torn in an image of this point
};

struct ImageStats {
  uint64_t dirty_pages = 0;
  uint64_t new_pages = 0;   // written whole with the new content
  uint64_t torn_pages = 0;  // a per-sector mix of old and new
};

// Records `path` (an absolute path, as /proc/self/fd shows it) from its next mapping on; forgets
// any earlier record.
void watch(const std::string& path);
// Stops recording and drops the record.
void reset();
// Barriers completed so far on the recorded file.
uint64_t barrier_count();
// Records a crash point now (the state a power loss at this instant may leave); returns its index.
// -1 if no file is mapped.
int64_t mark();
uint64_t point_count();
bool point_info(uint64_t index, PointInfo* out);
// Writes one crash image of point `index` to `out_path`: the durable image at that point plus,
// for each dirty page, chosen by `seed`: old, new, or torn at sector boundaries. kSectorMask
// tears every dirty page the same way: sector i is new iff bit i of `seed` is set (for tests
// that enumerate every torn form of one update).
enum class ImageMode { kRandom = 0, kDurableOnly = 1, kAllNew = 2, kSectorMask = 3 };
bool materialise(uint64_t index, uint64_t seed, ImageMode mode, const std::string& out_path,
                 ImageStats* stats, std::string* detail);

}  // namespace crash
}  // namespace pmu
