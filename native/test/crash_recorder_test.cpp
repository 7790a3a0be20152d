// Unit tests for the crash recorder (native/crash/crash_recorder.cpp), linked like the recording
// addon: the core's mmap/munmap/msync/fsync/fdatasync/fallocate calls wrapped (--wrap, see
// CMakeLists.txt). Drives a PmFile directly and checks the images the recorder writes.
// Prints `N passed, N failed` and exits 1 on any failure.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "crash_recorder.h"
#include "pm_file.h"

namespace crash = pmu::crash;
using pmu::kPageSize;
using pmu::PmFile;
using pmu::Status;

namespace {

int g_failures = 0;
std::string g_dir;
int g_counter = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                          \
    }                                                                        \
  } while (0)

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool page_is(const std::vector<uint8_t>& image, uint64_t page, uint8_t value) {
  if (image.size() < (page + 1) * kPageSize) return false;
  for (uint64_t i = 0; i < kPageSize; i++)
    if (image[page * kPageSize + i] != value) return false;
  return true;
}

// A 16-page file whose first page is the header, recorded from its first mapping on.
std::string recorded_file(PmFile* file) {
  std::string path = g_dir + "/f" + std::to_string(++g_counter);
  std::vector<uint8_t> header(kPageSize, 'H');
  std::string detail;
  CHECK(PmFile::create(path, 16 * kPageSize, header.data(), header.size(), &detail) == Status::kOk);
  crash::watch(path);
  CHECK(file->open(path, &detail) == Status::kOk);
  return path;
}

std::string image_of(uint64_t point, uint64_t seed, crash::ImageMode mode, crash::ImageStats* stats = nullptr) {
  std::string out = g_dir + "/image";
  crash::ImageStats ignored;
  std::string detail;
  CHECK(crash::materialise(point, seed, mode, out, stats != nullptr ? stats : &ignored, &detail));
  return out;
}

void flushed_is_durable_and_mapped_is_not() {
  PmFile file;
  recorded_file(&file);
  CHECK(crash::barrier_count() == 0);
  std::memset(file.data() + 2 * kPageSize, 'A', kPageSize);
  CHECK(file.flush(2 * kPageSize, 10) == Status::kOk);  // the whole page is flushed
  CHECK(crash::barrier_count() == 1);
  std::memset(file.data() + 3 * kPageSize, 'B', kPageSize);
  int64_t point = crash::mark();
  CHECK(point == 1);  // point 0 was the flush's
  crash::PointInfo info{};
  CHECK(crash::point_info(static_cast<uint64_t>(point), &info));
  CHECK(info.barriers == 1 && info.dirty_pages == 1);

  auto durable = read_all(image_of(point, 0, crash::ImageMode::kDurableOnly));
  CHECK(page_is(durable, 0, 'H') && page_is(durable, 2, 'A') && page_is(durable, 3, 0));
  auto all_new = read_all(image_of(point, 0, crash::ImageMode::kAllNew));
  CHECK(page_is(all_new, 2, 'A') && page_is(all_new, 3, 'B'));
  // The flush's own point: page 2 was still only dirty then.
  auto before = read_all(image_of(0, 0, crash::ImageMode::kDurableOnly));
  CHECK(page_is(before, 2, 0));
  CHECK(file.close() == Status::kOk);  // msyncs everything: one more barrier
  CHECK(crash::barrier_count() == 2);
  int64_t closed = crash::mark();
  CHECK(crash::point_info(static_cast<uint64_t>(closed), &info) && info.dirty_pages == 0 && info.barriers == 2);
  CHECK(page_is(read_all(image_of(closed, 0, crash::ImageMode::kDurableOnly)), 3, 'B'));
}

void sector_mask_tears_by_sector() {
  PmFile file;
  recorded_file(&file);
  std::memset(file.data() + 5 * kPageSize, 'C', kPageSize);
  int64_t point = crash::mark();
  crash::ImageStats stats;
  auto image = read_all(image_of(point, 0x05, crash::ImageMode::kSectorMask, &stats));
  CHECK(stats.dirty_pages == 1 && stats.torn_pages == 1 && stats.new_pages == 0);
  for (uint64_t s = 0; s < kPageSize / crash::kSectorSize; s++) {
    uint8_t want = (s == 0 || s == 2) ? 'C' : 0;
    for (uint64_t i = 0; i < crash::kSectorSize; i++) {
      if (image[5 * kPageSize + s * crash::kSectorSize + i] != want) {
        CHECK(!"sector holds the wrong version");
        s = kPageSize;
        break;
      }
    }
  }
  // Random images: every sector is whole, old or new.
  for (uint64_t seed = 1; seed < 64; seed++) {
    auto random = read_all(image_of(point, seed, crash::ImageMode::kRandom));
    for (uint64_t s = 0; s < kPageSize / crash::kSectorSize; s++) {
      const uint8_t* p = random.data() + 5 * kPageSize + s * crash::kSectorSize;
      bool old_sector = true, new_sector = true;
      for (uint64_t i = 0; i < crash::kSectorSize; i++) {
        old_sector = old_sector && p[i] == 0;
        new_sector = new_sector && p[i] == 'C';
      }
      CHECK(old_sector || new_sector);
    }
  }
  CHECK(file.close() == Status::kOk);
}

void fallocate_is_durable_at_the_next_barrier_of_any_range() {
  PmFile file;
  std::string path = recorded_file(&file);
  std::memset(file.data() + 7 * kPageSize, 'D', kPageSize);
  CHECK(file.flush(7 * kPageSize, kPageSize) == Status::kOk);
  // A hole punched (through another descriptor of the same file): the mapping reads zeros.
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  CHECK(fd >= 0);
  CHECK(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 7 * kPageSize, kPageSize) == 0);
  ::close(fd);
  CHECK(file.data()[7 * kPageSize] == 0);
  int64_t before = crash::mark();
  CHECK(page_is(read_all(image_of(before, 0, crash::ImageMode::kDurableOnly)), 7, 'D'));
  CHECK(file.flush(0, 1) == Status::kOk);  // a barrier elsewhere: one journal commit
  int64_t after = crash::mark();
  CHECK(page_is(read_all(image_of(after, 0, crash::ImageMode::kDurableOnly)), 7, 0));
  CHECK(file.close() == Status::kOk);
}

void unwatched_files_and_bad_requests() {
  crash::reset();
  PmFile file;
  std::string path = g_dir + "/plain";
  std::vector<uint8_t> header(kPageSize, 'H');
  std::string detail;
  CHECK(PmFile::create(path, 4 * kPageSize, header.data(), header.size(), &detail) == Status::kOk);
  CHECK(file.open(path, &detail) == Status::kOk);
  CHECK(file.flush(0, kPageSize) == Status::kOk);
  CHECK(crash::barrier_count() == 0);  // not watched: passed straight through
  CHECK(crash::mark() == -1);
  CHECK(crash::point_count() == 0);
  crash::PointInfo info{};
  CHECK(!crash::point_info(0, &info));
  crash::ImageStats stats;
  CHECK(!crash::materialise(0, 0, crash::ImageMode::kRandom, g_dir + "/x", &stats, &detail));
  CHECK(file.close() == Status::kOk);

  PmFile watched;
  recorded_file(&watched);
  int64_t point = crash::mark();
  detail.clear();
  CHECK(!crash::materialise(static_cast<uint64_t>(point), 0, crash::ImageMode::kRandom, g_dir + "/no/such/dir/img", &stats, &detail));
  CHECK(!detail.empty());
  CHECK(watched.close() == Status::kOk);
}

}  // namespace

int main() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pmu-crash-test.XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    std::perror("mkdtemp");
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  g_dir = buffer.data();
  struct Case {
    const char* name;
    void (*run)();
  };
  const Case cases[] = {
      {"flushed_is_durable_and_mapped_is_not", flushed_is_durable_and_mapped_is_not},
      {"sector_mask_tears_by_sector", sector_mask_tears_by_sector},
      {"fallocate_is_durable_at_the_next_barrier_of_any_range", fallocate_is_durable_at_the_next_barrier_of_any_range},
      {"unwatched_files_and_bad_requests", unwatched_files_and_bad_requests},
  };
  int passed = 0, failed = 0;
  for (const Case& c : cases) {
    int before = g_failures;
    c.run();
    if (g_failures == before) {
      passed++;
      std::printf("ok   %s\n", c.name);
    } else {
      failed++;
      std::printf("FAIL %s\n", c.name);
    }
  }
  crash::reset();
  std::error_code ignored;
  std::filesystem::remove_all(g_dir, ignored);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
