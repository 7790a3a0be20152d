#include "crash_recorder.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/pm_file.h"

// The real syscalls, reached through the linker's --wrap.
extern "C" {
void* __real_mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset);
void* __real_mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset);
int __real_munmap(void* addr, size_t length);
int __real_msync(void* addr, size_t length, int flags);
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __real_fallocate64(int fd, int mode, off_t offset, off_t length);
int __real_posix_fallocate64(int fd, off_t offset, off_t length);
int __real_fallocate(int fd, int mode, off_t offset, off_t length);
int __real_posix_fallocate(int fd, off_t offset, off_t length);
}

namespace pmu {
namespace crash {

namespace {

using Page = std::vector<uint8_t>;
using PageRef = std::shared_ptr<const Page>;

struct DirtyPage {
  uint64_t page;
  PageRef data;
};

struct Point {
  uint64_t barriers;
  std::vector<DirtyPage> dirty;
};

// Everything below is guarded by `mu`: barriers run on libuv pool threads, the driver on the
// main thread.
struct Recorder {
  std::mutex mu;
  std::string path;  // the watched file
  uint8_t* map = nullptr;
  uint64_t size = 0;
  int fd = -1;
  bool have_base = false;
  std::vector<uint8_t> base;     // durable image when the record started
  std::vector<uint8_t> durable;  // durable image now
  std::vector<PageRef> last;     // last captured content of each page (shares identical copies)
  std::vector<std::vector<DirtyPage>> barriers;  // pages each barrier made durable
  std::vector<Point> points;
  // Pages whose blocks fallocate changed (a hole punched, blocks allocated): a metadata change,
  // so the next journal commit (any barrier on the file) makes it durable, whatever its range.
  std::vector<DirtyPage> pending_meta;
  // Materialising walks forward from `base`; keep the last reconstruction to resume from.
  std::vector<uint8_t> work;
  uint64_t work_barriers = 0;
  bool work_valid = false;
};

Recorder& rec() {
  static Recorder* r = new Recorder();  // never destroyed: wrappers may run during exit
  return *r;
}

std::atomic<uint64_t> g_barriers{0};

std::string fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char buf[4096];
  ssize_t n = ::readlink(link, buf, sizeof buf - 1);
  if (n <= 0) return std::string();
  return std::string(buf, static_cast<size_t>(n));
}

PageRef capture(Recorder& r, uint64_t page) {
  const uint8_t* p = r.map + page * kPageSize;
  const PageRef& prev = r.last[page];
  if (prev && std::memcmp(prev->data(), p, kPageSize) == 0) return prev;
  auto copy = std::make_shared<Page>(p, p + kPageSize);
  r.last[page] = copy;
  return copy;
}

// The pages whose current content differs from the durable image. Caller holds mu. The main
// thread may be writing into the mapping meanwhile (a barrier runs on the libuv pool): a page
// copied mid-write is one the kernel's write-back could have taken in the same state.
std::vector<DirtyPage> dirty_pages(Recorder& r) {
  std::vector<DirtyPage> out;
  uint64_t pages = r.size / kPageSize;
  for (uint64_t i = 0; i < pages; i++) {
    if (std::memcmp(r.map + i * kPageSize, r.durable.data() + i * kPageSize, kPageSize) != 0) {
      out.push_back({i, capture(r, i)});
    }
  }
  return out;
}

void record_point_locked(Recorder& r, std::vector<DirtyPage> dirty) {
  r.points.push_back({g_barriers.load(std::memory_order_acquire), std::move(dirty)});
}

// A barrier over [start, end) of the mapping (page-aligned). Caller holds mu.
void barrier_locked(Recorder& r, uint64_t start, uint64_t end) {
  std::vector<DirtyPage> dirty = dirty_pages(r);
  std::vector<DirtyPage> made;
  for (const DirtyPage& d : dirty) {
    uint64_t at = d.page * kPageSize;
    if (at >= start && at < end) {
      std::memcpy(r.durable.data() + at, d.data->data(), kPageSize);
      made.push_back(d);
    }
  }
  for (const DirtyPage& d : r.pending_meta) {
    uint64_t at = d.page * kPageSize;
    if (at >= start && at < end) continue;  // already taken above, with its newest content
    std::memcpy(r.durable.data() + at, d.data->data(), kPageSize);
    made.push_back(d);
  }
  r.pending_meta.clear();
  record_point_locked(r, std::move(dirty));
  r.barriers.push_back(std::move(made));
  g_barriers.fetch_add(1, std::memory_order_acq_rel);
}

void attach_locked(Recorder& r, uint8_t* map, uint64_t size, int fd) {
  if (r.have_base && r.size != size) {
    // A different file at the same name: start over.
    r.have_base = false;
  }
  r.map = map;
  r.size = size;
  r.fd = fd;
  if (!r.have_base) {
    // The file as it is when first mapped is taken as durable: it was made by create() (fsync'd)
    // or left by an earlier close (msync of everything).
    r.base.assign(map, map + size);
    r.durable = r.base;
    r.last.assign(size / kPageSize, nullptr);
    r.barriers.clear();
    r.points.clear();
    r.pending_meta.clear();
    r.work_valid = false;
    g_barriers.store(0, std::memory_order_release);
    r.have_base = true;
  }
}

uint64_t splitmix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool write_file(const std::string& path, const uint8_t* p, size_t n, std::string* detail) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *detail = "open " + path + ": " + std::strerror(errno);
    return false;
  }
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      *detail = "write " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  ::close(fd);
  return true;
}

}  // namespace

void watch(const std::string& path) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  r.path = path;
  r.map = nullptr;
  r.fd = -1;
  r.have_base = false;
  r.base.clear();
  r.durable.clear();
  r.last.clear();
  r.barriers.clear();
  r.points.clear();
  r.pending_meta.clear();
  r.work.clear();
  r.work_valid = false;
  g_barriers.store(0, std::memory_order_release);
}

void reset() { watch(std::string()); }

uint64_t barrier_count() { return g_barriers.load(std::memory_order_acquire); }

int64_t mark() {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.have_base) return -1;
  if (r.map != nullptr) {
    record_point_locked(r, dirty_pages(r));
  } else {
    // Not mapped (closed): nothing is dirty beyond what close made durable.
    record_point_locked(r, {});
  }
  return static_cast<int64_t>(r.points.size()) - 1;
}

uint64_t point_count() {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.points.size();
}

bool point_info(uint64_t index, PointInfo* out) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (index >= r.points.size()) return false;
  out->barriers = r.points[index].barriers;
  out->dirty_pages = r.points[index].dirty.size();
  return true;
}

bool materialise(uint64_t index, uint64_t seed, ImageMode mode, const std::string& out_path,
                 ImageStats* stats, std::string* detail) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (index >= r.points.size()) {
    *detail = "no crash point " + std::to_string(index);
    return false;
  }
  const Point& point = r.points[index];
  if (point.barriers > r.barriers.size()) {
    *detail = "crash point past the recorded barriers";
    return false;
  }
  if (!r.work_valid || r.work_barriers > point.barriers) {
    r.work = r.base;
    r.work_barriers = 0;
    r.work_valid = true;
  }
  for (; r.work_barriers < point.barriers; r.work_barriers++) {
    for (const DirtyPage& d : r.barriers[r.work_barriers]) {
      std::memcpy(r.work.data() + d.page * kPageSize, d.data->data(), kPageSize);
    }
  }
  std::vector<uint8_t> image = r.work;
  uint64_t state = seed * 0x2545f4914f6cdd1dull + index;
  // How eager write-back was for this image: from none of the dirty pages to all of them.
  double keep = static_cast<double>(splitmix(&state) % 1001) / 1000.0;
  double torn = static_cast<double>(splitmix(&state) % 1001) / 2000.0;  // up to half torn
  *stats = ImageStats();
  stats->dirty_pages = point.dirty.size();
  for (const DirtyPage& d : point.dirty) {
    uint8_t* at = image.data() + d.page * kPageSize;
    if (mode == ImageMode::kDurableOnly) continue;
    if (mode == ImageMode::kSectorMask) {
      uint64_t taken = 0;
      for (uint64_t sct = 0; sct < kPageSize / kSectorSize; sct++) {
        if ((seed >> sct) & 1) {
          std::memcpy(at + sct * kSectorSize, d.data->data() + sct * kSectorSize, kSectorSize);
          taken++;
        }
      }
      if (taken == kPageSize / kSectorSize) stats->new_pages++;
      else if (taken > 0) stats->torn_pages++;
      continue;
    }
    if (mode == ImageMode::kAllNew) {
      std::memcpy(at, d.data->data(), kPageSize);
      stats->new_pages++;
      continue;
    }
    double u = static_cast<double>(splitmix(&state) % 1000000) / 1000000.0;
    if (u < torn) {
      uint64_t bits = splitmix(&state);
      for (uint64_t s = 0; s < kPageSize / kSectorSize; s++) {
        if ((bits >> s) & 1) std::memcpy(at + s * kSectorSize, d.data->data() + s * kSectorSize, kSectorSize);
      }
      stats->torn_pages++;
    } else if (u < torn + (1.0 - torn) * keep) {
      std::memcpy(at, d.data->data(), kPageSize);
      stats->new_pages++;
    }
  }
  return write_file(out_path, image.data(), image.size(), detail);
}

}  // namespace crash
}  // namespace pmu

using pmu::crash::rec;

extern "C" {

static void* note_mapping(void* m, size_t length, int prot, int flags, int fd, off_t offset) {
  if (m == MAP_FAILED || fd < 0 || offset != 0 || !(flags & MAP_SHARED) || !(prot & PROT_WRITE)) return m;
  auto& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.path.empty() && length % pmu::kPageSize == 0 && pmu::crash::fd_path(fd) == r.path) {
    pmu::crash::attach_locked(r, static_cast<uint8_t*>(m), length, fd);
  }
  return m;
}

// With _FILE_OFFSET_BITS=64 (node-gyp's default) the headers route mmap to mmap64.
void* __wrap_mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  return note_mapping(__real_mmap(addr, length, prot, flags, fd, offset), length, prot, flags, fd, offset);
}

void* __wrap_mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  return note_mapping(__real_mmap64(addr, length, prot, flags, fd, offset), length, prot, flags, fd, offset);
}

int __wrap_munmap(void* addr, size_t length) {
  {
    auto& r = rec();
    std::lock_guard<std::mutex> lock(r.mu);
    if (r.map != nullptr && addr == r.map) {
      // Whatever is still dirty stays in the page cache after unmapping; close() msyncs
      // everything first, so in practice nothing is left.
      r.map = nullptr;
      r.fd = -1;
    }
  }
  return __real_munmap(addr, length);
}

int __wrap_msync(void* addr, size_t length, int flags) {
  {
    auto& r = rec();
    std::lock_guard<std::mutex> lock(r.mu);
    auto* p = static_cast<uint8_t*>(addr);
    if (r.map != nullptr && p >= r.map && p < r.map + r.size && (flags & MS_SYNC)) {
      uint64_t start = static_cast<uint64_t>(p - r.map);
      uint64_t end = start + length > r.size ? r.size : start + length;
      pmu::crash::barrier_locked(r, start, end);
    }
  }
  return __real_msync(addr, length, flags);
}

static void fd_barrier(int fd) {
  auto& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.map != nullptr && (fd == r.fd || pmu::crash::fd_path(fd) == r.path)) pmu::crash::barrier_locked(r, 0, r.size);
}

// fallocate (punch hole, allocate): the pages of the range as they are right after the call
// become durable at the next barrier of any range.
static void note_fallocate(int fd, off_t offset, off_t length) {
  auto& r = rec();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.map == nullptr || !(fd == r.fd || pmu::crash::fd_path(fd) == r.path) || offset < 0 || length <= 0) return;
  uint64_t start = static_cast<uint64_t>(offset) / pmu::kPageSize;
  uint64_t end = (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) + pmu::kPageSize - 1) / pmu::kPageSize;
  if (end > r.size / pmu::kPageSize) end = r.size / pmu::kPageSize;
  for (uint64_t p = start; p < end; p++) r.pending_meta.push_back({p, pmu::crash::capture(r, p)});
}

int __wrap_fallocate64(int fd, int mode, off_t offset, off_t length) {
  int rc = __real_fallocate64(fd, mode, offset, length);
  if (rc == 0) note_fallocate(fd, offset, length);
  return rc;
}

int __wrap_posix_fallocate64(int fd, off_t offset, off_t length) {
  int rc = __real_posix_fallocate64(fd, offset, length);
  if (rc == 0) note_fallocate(fd, offset, length);
  return rc;
}

// Without _FILE_OFFSET_BITS=64 (plain cmake builds) the calls keep their own names.
int __wrap_fallocate(int fd, int mode, off_t offset, off_t length) {
  int rc = __real_fallocate(fd, mode, offset, length);
  if (rc == 0) note_fallocate(fd, offset, length);
  return rc;
}

int __wrap_posix_fallocate(int fd, off_t offset, off_t length) {
  int rc = __real_posix_fallocate(fd, offset, length);
  if (rc == 0) note_fallocate(fd, offset, length);
  return rc;
}

int __wrap_fsync(int fd) {
  fd_barrier(fd);
  return __real_fsync(fd);
}

int __wrap_fdatasync(int fd) {
  fd_barrier(fd);
  return __real_fdatasync(fd);
}

}  // extern "C"
