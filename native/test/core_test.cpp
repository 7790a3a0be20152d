// Unit tests for the native core (native/core): CRC32C, the ATT encoding, PmFile and Unit.
// Plain C++17 with a small harness of its own, so it builds with the core alone (no N-API, no
// test framework). Every file lives in one mkdtemp directory, removed at the end.
// Prints one closing line, `N passed, N failed` (tests, not checks), and exits 1 on any failure.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "att.h"
#include "crc32c.h"
#include "pm_file.h"
#include "status.h"
#include "unit.h"

// The table path of crc32c only runs on CPUs without SSE4.2. Compile the same source a second
// time, here, with the x86 branch switched off, so both paths are checked on any machine.
#pragma push_macro("__x86_64__")
#undef __x86_64__
namespace table_build {
#include "crc32c.cpp"
}
#pragma pop_macro("__x86_64__")

using pmu::CopyReport;
using pmu::CopyState;
using pmu::FlushSpan;
using pmu::Grant;
using pmu::RegionEntry;
using pmu::Status;
using pmu::Superblock;
using pmu::Unit;

// ---- harness -------------------------------------------------------------------------------
namespace {

struct TestCase {
  const char* name;
  void (*run)();
};
std::vector<TestCase>& all_tests() {
  static std::vector<TestCase> tests;
  return tests;
}
struct Register {
  Register(const char* name, void (*run)()) { all_tests().push_back({name, run}); }
};

int g_failures_in_test = 0;
void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "    %s:%d: %s\n", file, line, what.c_str());
  g_failures_in_test++;
}

std::string show(Status s) { return pmu::status_code(s); }
std::string show(CopyState s) {
  return s == CopyState::kValid ? "valid" : s == CopyState::kTorn ? "torn" : "invalid";
}
std::string show(const std::string& s) { return "\"" + s + "\""; }
template <typename T>
std::string show(const T& v) {
  static_assert(std::is_arithmetic_v<T>, "CHECK_EQ prints numbers, strings and statuses");
  return std::to_string(v);
}

}  // namespace

#define TEST(name)                                      \
  static void name();                                   \
  static const Register name##_registered(#name, name); \
  static void name()
#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) fail(__FILE__, __LINE__, "CHECK(" #cond ")");   \
  } while (0)
#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    const auto& a_ = (a);                                                        \
    const auto& b_ = (b);                                                        \
    if (!(a_ == b_))                                                             \
      fail(__FILE__, __LINE__, #a " == " #b ": " + show(a_) + " vs " + show(b_)); \
  } while (0)
#define CHECK_ST(expr, status) CHECK_EQ((expr), Status::status)
// REQUIRE ends the test: what follows would only fail again for the same reason.
#define REQUIRE(cond)                                                       \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fail(__FILE__, __LINE__, "REQUIRE(" #cond ") failed; test stopped");  \
      return;                                                               \
    }                                                                       \
  } while (0)

// ---- helpers -------------------------------------------------------------------------------
namespace {

std::string g_dir;
int g_file_counter = 0;

std::string fresh_path() { return g_dir + "/unit" + std::to_string(++g_file_counter) + ".pmu"; }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::vector<uint8_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  off_t size = ::lseek(fd, 0, SEEK_END);
  out.resize(static_cast<size_t>(size));
  if (::pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  ::close(fd);
  return out;
}

bool write_at(const std::string& path, uint64_t offset, const void* data, size_t length) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, data, length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length);
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  return ok;
}

uint64_t u64_at(const std::vector<uint8_t>& bytes, uint64_t offset) {
  uint64_t v = 0;
  if (offset + 8 <= bytes.size()) std::memcpy(&v, bytes.data() + offset, 8);
  return v;
}

constexpr uint64_t kGenerationField = 40;  // superblock: u64 generation at byte 40 of each copy

uint64_t copy_a(uint32_t max_regions) { return pmu::copy_offset(0, pmu::meta_copy_size(max_regions)); }
uint64_t copy_b(uint32_t max_regions) { return pmu::copy_offset(1, pmu::meta_copy_size(max_regions)); }

// Offset of the metadata copy holding the higher generation (the committed one, normally).
uint64_t current_copy_offset(const std::vector<uint8_t>& bytes, uint32_t max_regions) {
  uint64_t a = copy_a(max_regions), b = copy_b(max_regions);
  return u64_at(bytes, b + kGenerationField) > u64_at(bytes, a + kGenerationField) ? b : a;
}
uint64_t older_copy_offset(const std::vector<uint8_t>& bytes, uint32_t max_regions) {
  return current_copy_offset(bytes, max_regions) == copy_a(max_regions) ? copy_b(max_regions) : copy_a(max_regions);
}

// Bytes of the file that are allocated, and where SEEK_HOLE finds the first hole (on ext4 an
// unwritten extent with nothing cached counts as a hole too: it is what first writes pay for).
uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}
int64_t first_hole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int64_t hole = ::lseek(fd, 0, SEEK_HOLE);
  ::close(fd);
  return hole;
}
bool punch_hole(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                        static_cast<off_t>(length)) == 0;
  ::close(fd);
  return ok;
}

// Creates a file at a fresh path and opens `unit` on it.
bool make_unit(Unit& unit, std::string* path, uint64_t size = 1 << 20, uint32_t max_regions = 8) {
  *path = fresh_path();
  std::string detail;
  Status s = Unit::create(*path, size, max_regions, &detail);
  if (s == Status::kOk) s = unit.open(*path, &detail);
  if (s != Status::kOk) std::fprintf(stderr, "    make_unit: %s: %s\n", pmu::status_code(s), detail.c_str());
  return s == Status::kOk;
}

// Creates a region and returns a copy of its entry (handle 0 on failure). A copy, because the
// pointer create_region hands back dies with the next commit.
RegionEntry add(Unit& unit, const std::string& name, uint64_t length, const std::string& owner = "") {
  const RegionEntry* created = nullptr;
  std::string detail;
  Status s = unit.create_region(name, length, owner, &created, &detail);
  if (s != Status::kOk || created == nullptr) {
    std::fprintf(stderr, "    add(%s): %s: %s\n", name.c_str(), pmu::status_code(s), detail.c_str());
    return RegionEntry();
  }
  return *created;
}

Status reopen(Unit& unit, const std::string& path) {
  unit.close();
  std::string detail;
  return unit.open(path, &detail);
}

Status open_status(const std::string& path, std::string* detail) {
  Unit unit;
  return unit.open(path, detail);
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

bool all_zero(const std::vector<uint8_t>& bytes) {
  for (uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

// Bit-at-a-time CRC32C: slow and obviously right.
uint32_t crc32c_reference(const uint8_t* p, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

const Unit::WriteOptions kPlain;

}  // namespace

// ---- status table --------------------------------------------------------------------------

TEST(status_table_has_one_code_per_status) {
  CHECK_EQ(pmu::status_count(), 15);
  CHECK_EQ(std::string(pmu::status_code(Status::kOk)), std::string("OK"));
  CHECK_EQ(std::string(pmu::status_code(Status::kBounds)), std::string("EBOUNDS"));
  CHECK_EQ(std::string(pmu::status_code(Status::kSys)), std::string("ESYS"));
  CHECK_EQ(std::string(pmu::status_code(static_cast<Status>(99))), std::string("EUNKNOWN"));
  for (int i = 0; i < pmu::status_count(); i++)
    for (int j = i + 1; j < pmu::status_count(); j++)
      CHECK(std::strcmp(pmu::status_code(static_cast<Status>(i)),
                        pmu::status_code(static_cast<Status>(j))) != 0);
}

// ---- crc32c --------------------------------------------------------------------------------

TEST(crc32c_known_vector) {
  const char* text = "123456789";
  CHECK_EQ(pmu::crc32c(text, 9), 0xE3069283u);
  CHECK_EQ(table_build::pmu::crc32c(text, 9, 0), 0xE3069283u);
  CHECK_EQ(crc32c_reference(reinterpret_cast<const uint8_t*>(text), 9, 0), 0xE3069283u);
  CHECK_EQ(pmu::crc32c(text, 0), 0u);
  CHECK_EQ(pmu::crc32c(nullptr, 0, 0x1234u), 0x1234u);
}

TEST(crc32c_incremental_equals_one_shot) {
  std::vector<uint8_t> data = random_bytes(300, 1);
  uint32_t whole = pmu::crc32c(data.data(), data.size());
  for (size_t split = 0; split <= data.size(); split++) {
    uint32_t first = pmu::crc32c(data.data(), split);
    CHECK_EQ(pmu::crc32c(data.data() + split, data.size() - split, first), whole);
  }
  // Three pieces, one of them a single byte, in every position a word loop could mishandle.
  for (size_t a = 0; a < 24; a++) {
    uint32_t c = pmu::crc32c(data.data(), a);
    c = pmu::crc32c(data.data() + a, 1, c);
    c = pmu::crc32c(data.data() + a + 1, data.size() - a - 1, c);
    CHECK_EQ(c, whole);
  }
}

TEST(crc32c_hardware_and_table_paths_match_reference) {
  std::mt19937_64 rng(2);
  std::vector<uint8_t> buffer = random_bytes(320, 3);
  for (int round = 0; round < 2000; round++) {
    size_t length = static_cast<size_t>(rng() % 301);  // 0..300
    size_t misalign = static_cast<size_t>(rng() % 8);  // the word loop must not need alignment
    uint32_t seed = round % 3 == 0 ? 0u : static_cast<uint32_t>(rng());
    const uint8_t* p = buffer.data() + misalign;
    uint32_t expected = crc32c_reference(p, length, seed);
    CHECK_EQ(pmu::crc32c(p, length, seed), expected);
    CHECK_EQ(table_build::pmu::crc32c(p, length, seed), expected);
  }
}

// ---- create, open, close, reopen -----------------------------------------------------------

TEST(create_validates_arguments) {
  std::string detail;
  std::string path = fresh_path();
  CHECK_ST(Unit::create(path, 1 << 20, 0, &detail), kInvalid);
  CHECK_ST(Unit::create(path, 1 << 20, pmu::kMaxMaxRegions + 1, &detail), kInvalid);
  CHECK_ST(Unit::create(path, 0, 8, &detail), kInvalid);
  // Exactly the metadata and not one data page: refused, with the numbers in the message.
  CHECK_ST(Unit::create(path, 2 * pmu::meta_copy_size(8), 8, &detail), kInvalid);
  CHECK(contains(detail, "leaves no room"));
  CHECK(!std::filesystem::exists(path));
  CHECK_ST(Unit::create(path, 100000, 8, &detail), kOk);  // rounded up to a page
  CHECK_EQ(static_cast<uint64_t>(std::filesystem::file_size(path)), uint64_t{102400});
  CHECK_ST(Unit::create(path, 1 << 20, 8, &detail), kExists);
  CHECK_EQ(static_cast<uint64_t>(std::filesystem::file_size(path)), uint64_t{102400});
  // No temporary file is left beside it.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(g_dir))
    if (contains(entry.path().string(), ".creating.")) files++;
  CHECK_EQ(files, size_t{0});
}

TEST(fresh_file_reports_its_geometry) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 8));
  pmu::UnitInfo info = unit.info();
  CHECK_EQ(info.path, path);
  CHECK_EQ(info.file_size, uint64_t{1} << 20);
  CHECK_EQ(info.max_regions, 8u);
  CHECK_EQ(info.data_offset, pmu::kHeaderSize + 2 * pmu::meta_copy_size(8));
  CHECK_EQ(info.generation, uint64_t{1});
  CHECK_EQ(info.region_count, 0u);
  CHECK_EQ(info.free_bytes, info.file_size - info.data_offset);
  CHECK_EQ(info.largest_free_extent, info.free_bytes);
  CHECK(unit.recovery_note().empty());
  CHECK_EQ(pmu::meta_copy_size(8), uint64_t{8192});  // 512 + 8 * 512, page-rounded
  CHECK_EQ(pmu::meta_copy_size(7), uint64_t{4096});
  CHECK_ST(unit.close(), kOk);
  CHECK_ST(unit.close(), kClosed);
  CHECK(!unit.is_open());
  CHECK_EQ(unit.info().file_size, uint64_t{0});
}

TEST(regions_persist_across_reopen) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  RegionEntry alpha = add(unit, "alpha", 5000, "alice");
  RegionEntry beta = add(unit, "beta", 1);
  REQUIRE(alpha.handle != 0 && beta.handle != 0);
  std::string detail;
  std::vector<Grant> grants = {{"bob", pmu::kRightRead}, {"carol", pmu::kRightRead | pmu::kRightWrite}};
  CHECK_ST(unit.set_grants(alpha.handle, grants, &detail), kOk);
  uint8_t uuid[16];
  std::memcpy(uuid, unit.info().uuid, 16);
  uint64_t generation = unit.info().generation;
  CHECK_EQ(generation, uint64_t{4});  // format, two creates, one set_grants

  CHECK(alpha.handle != beta.handle);
  CHECK(alpha.vbase >= pmu::kFirstVirtualAddress);
  CHECK_EQ(alpha.extent, uint64_t{8192});
  CHECK(beta.vbase >= alpha.vbase + alpha.extent + pmu::kPageSize);  // a guard page between
  CHECK_EQ(alpha.phys_offset % pmu::kPageSize, uint64_t{0});
  CHECK(alpha.phys_offset >= unit.info().data_offset);
  uint8_t zero_key[pmu::kKeySize] = {};
  CHECK(std::memcmp(alpha.key, zero_key, pmu::kKeySize) != 0);
  CHECK(std::memcmp(alpha.key, beta.key, pmu::kKeySize) != 0);

  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK_EQ(unit.info().generation, generation);
  CHECK_EQ(unit.info().region_count, 2u);
  CHECK(std::memcmp(unit.info().uuid, uuid, 16) == 0);
  CHECK(unit.recovery_note().empty());
  const RegionEntry* a = unit.find_by_name("alpha");
  const RegionEntry* b = unit.find_by_handle(beta.handle);
  REQUIRE(a != nullptr && b != nullptr);
  CHECK(unit.find_by_handle(alpha.handle) == a);
  CHECK_EQ(a->name, std::string("alpha"));
  CHECK_EQ(a->length, uint64_t{5000});
  CHECK_EQ(a->handle, alpha.handle);
  CHECK_EQ(a->vbase, alpha.vbase);
  CHECK_EQ(a->phys_offset, alpha.phys_offset);
  CHECK_EQ(a->extent, alpha.extent);
  CHECK_EQ(a->owner, std::string("alice"));
  CHECK(std::memcmp(a->key, alpha.key, pmu::kKeySize) == 0);
  REQUIRE(a->grants.size() == 2);
  CHECK_EQ(a->grants[0].user, std::string("bob"));
  CHECK_EQ(a->grants[0].rights, uint8_t{pmu::kRightRead});
  CHECK_EQ(a->grants[1].user, std::string("carol"));
  CHECK_EQ(a->grants[1].rights, uint8_t{pmu::kRightRead | pmu::kRightWrite});
  CHECK_EQ(b->name, std::string("beta"));
  CHECK_EQ(b->length, uint64_t{1});
  CHECK_EQ(b->owner, std::string(""));
  CHECK(b->grants.empty());
  CHECK(std::memcmp(b->key, beta.key, pmu::kKeySize) == 0);
  CHECK(unit.find_by_name("gamma") == nullptr);
  CHECK(unit.find_by_handle(12345) == nullptr);

  // Handles and virtual ranges are never reused, even after a delete and a reopen.
  CHECK_ST(unit.delete_region(beta.handle), kOk);
  CHECK_ST(unit.delete_region(beta.handle), kNotFound);
  REQUIRE(reopen(unit, path) == Status::kOk);
  RegionEntry gamma = add(unit, "beta", 1);
  CHECK(gamma.handle > beta.handle);
  CHECK(gamma.vbase > beta.vbase);
  CHECK_EQ(gamma.phys_offset, beta.phys_offset);  // the file space is reused, first fit
  CHECK(unit.close() == Status::kOk);
}

TEST(open_missing_file_is_not_found) {
  std::string detail;
  CHECK_ST(open_status(g_dir + "/no-such-file.pmu", &detail), kNotFound);
  CHECK(contains(detail, "no-such-file.pmu"));
  Unit unit;
  CopyReport reports[2];
  CHECK_ST(unit.open_for_inspection(g_dir + "/no-such-file.pmu", reports, &detail), kNotFound);
}

// ---- reads and writes ----------------------------------------------------------------------

TEST(write_read_round_trips_and_persist) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  const uint64_t length = 3 * pmu::kPageSize + 100;
  RegionEntry r = add(unit, "data", length);
  REQUIRE(r.handle != 0);
  uint64_t base = r.vbase;

  // A new region reads as zeros.
  std::vector<uint8_t> got(length, 0xEE);
  CHECK_ST(unit.read(r.handle, base, got.data(), length), kOk);
  CHECK(all_zero(got));

  // 0 bytes, at the start and at the very end; a null pointer is fine for 0 bytes.
  CHECK_ST(unit.write(r.handle, base, nullptr, 0, kPlain), kOk);
  CHECK_ST(unit.write(r.handle, base + length, nullptr, 0, kPlain), kOk);
  CHECK_ST(unit.read(r.handle, base + length, nullptr, 0), kOk);

  // 1 byte at each end.
  uint8_t one = 0x5A, back = 0;
  CHECK_ST(unit.write(r.handle, base, &one, 1, kPlain), kOk);
  CHECK_ST(unit.read(r.handle, base, &back, 1), kOk);
  CHECK_EQ(back, uint8_t{0x5A});
  one = 0xA5;
  CHECK_ST(unit.write(r.handle, base + length - 1, &one, 1, kPlain), kOk);
  CHECK_ST(unit.read(r.handle, base + length - 1, &back, 1), kOk);
  CHECK_EQ(back, uint8_t{0xA5});

  // Across a page boundary of the file.
  const uint8_t cross[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  uint8_t cross_back[12] = {};
  CHECK_ST(unit.write(r.handle, base + 4090, cross, 12, kPlain), kOk);
  CHECK_ST(unit.read(r.handle, base + 4090, cross_back, 12), kOk);
  CHECK(std::memcmp(cross, cross_back, 12) == 0);

  // The whole region, flushed three ways: sync write, flush(), and close().
  std::vector<uint8_t> whole = random_bytes(length, 4);
  Unit::WriteOptions sync;
  sync.sync = true;
  CHECK_ST(unit.write(r.handle, base, whole.data(), length, sync), kOk);
  CHECK_ST(unit.read(r.handle, base, got.data(), length), kOk);
  CHECK(got == whole);
  CHECK_ST(unit.flush(r.handle, base, length), kOk);
  CHECK_ST(unit.flush(r.handle, base + length, 0), kOk);

  REQUIRE(reopen(unit, path) == Status::kOk);
  std::fill(got.begin(), got.end(), 0);
  CHECK_ST(unit.read(r.handle, base, got.data(), length), kOk);
  CHECK(got == whole);

  // A write left to close() to flush also survives.
  CHECK_ST(unit.write(r.handle, base + 4090, cross, 12, kPlain), kOk);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK_ST(unit.read(r.handle, base + 4090, cross_back, 12), kOk);
  CHECK(std::memcmp(cross, cross_back, 12) == 0);

  // And the bytes are where translate() says, in the file itself.
  uint64_t offset = 0;
  CHECK_ST(unit.translate(r.handle, base + 4090, 12, &offset), kOk);
  CHECK_EQ(offset, r.phys_offset + 4090);
  CHECK(unit.close() == Status::kOk);
  std::vector<uint8_t> bytes = file_bytes(path);
  REQUIRE(bytes.size() >= offset + 12);
  CHECK(std::memcmp(bytes.data() + offset, cross, 12) == 0);
}

TEST(large_writes_go_in_by_pwrite_and_land_where_small_ones_do) {
  // 1 MiB and more take PmFile::copy_in (whole pages by pwrite, partial ends by memcpy):
  // unaligned at both ends, aligned, and the bytes either side untouched.
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 8ull << 20));
  const uint64_t length = 4ull << 20;
  RegionEntry r = add(unit, "big", length);
  REQUIRE(r.handle != 0);
  const uint64_t sizes[] = {1ull << 20, (1ull << 20) + 4097, (2ull << 20) + 1};
  const uint64_t offsets[] = {0, 1, 4095, 4096, 5000};
  for (uint64_t size : sizes) {
    for (uint64_t at : offsets) {
      std::vector<uint8_t> zeros(length, 0);
      Unit::WriteOptions sync;
      sync.sync = true;
      CHECK_ST(unit.write(r.handle, r.vbase, zeros.data(), length, sync), kOk);
      // Reopened, the file is out of the page cache (open drops it): the pwrite path, whole
      // pages by pwrite; a second write of the same bytes takes the memcpy path.
      REQUIRE(reopen(unit, path) == Status::kOk);
      std::vector<uint8_t> data = random_bytes(size, static_cast<uint32_t>(size + at));
      CHECK_ST(unit.write(r.handle, r.vbase + at, data.data(), size, kPlain), kOk);
      CHECK_ST(unit.write(r.handle, r.vbase + at, data.data(), size, kPlain), kOk);
      std::vector<uint8_t> got(length, 0xEE);
      CHECK_ST(unit.read(r.handle, r.vbase, got.data(), length), kOk);
      CHECK(std::memcmp(got.data() + at, data.data(), size) == 0);
      CHECK(std::all_of(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(at), [](uint8_t b) { return b == 0; }));
      CHECK(std::all_of(got.begin() + static_cast<std::ptrdiff_t>(at + size), got.end(), [](uint8_t b) { return b == 0; }));
    }
  }
  // Flushed, it survives a reopen like a small write.
  std::vector<uint8_t> data = random_bytes((1ull << 20) + 3, 77);
  Unit::WriteOptions sync;
  sync.sync = true;
  CHECK_ST(unit.write(r.handle, r.vbase + 4093, data.data(), data.size(), sync), kOk);
  REQUIRE(reopen(unit, path) == Status::kOk);
  std::vector<uint8_t> got(data.size(), 0);
  CHECK_ST(unit.read(r.handle, r.vbase + 4093, got.data(), got.size()), kOk);
  CHECK(got == data);
  CHECK(unit.close() == Status::kOk);
}

TEST(create_in_three_steps_reserves_the_extent_and_the_name) {
  // begin / zero / finish (the async create): until finish, the region is not in the table,
  // its name and extent are taken, other table updates go on; abort gives both back.
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 4ull << 20));
  std::string detail;
  Unit::CreateReservation big;
  CHECK_ST(unit.begin_create_region("big", 1ull << 20, "alice", &big, &detail), kOk);
  CHECK_EQ(unit.creates_in_flight(), size_t{1});
  CHECK(unit.find_by_name("big") == nullptr);
  Unit::CreateReservation twin;
  CHECK_ST(unit.begin_create_region("big", 4096, "", &twin, &detail), kExists);
  const RegionEntry* small = nullptr;
  CHECK_ST(unit.create_region("small", 4096, "", &small, &detail), kOk);
  REQUIRE(small != nullptr);
  // The small region went beside the reserved extent, not into it.
  CHECK(small->phys_offset >= big.phys + big.extent || small->phys_offset + small->extent <= big.phys);
  CHECK_ST(unit.zero_for_create(big, &detail), kOk);
  const RegionEntry* created = nullptr;
  CHECK_ST(unit.finish_create_region(big, &created, &detail), kOk);
  REQUIRE(created != nullptr);
  CHECK_EQ(created->phys_offset, big.phys);
  CHECK_EQ(created->owner, std::string("alice"));
  CHECK_EQ(unit.creates_in_flight(), size_t{0});
  // An aborted create leaves nothing: the name and the extent are free again.
  Unit::CreateReservation gone;
  CHECK_ST(unit.begin_create_region("gone", 8192, "", &gone, &detail), kOk);
  unit.abort_create_region(gone);
  CHECK_EQ(unit.creates_in_flight(), size_t{0});
  const RegionEntry* again = nullptr;
  CHECK_ST(unit.create_region("gone", 8192, "", &again, &detail), kOk);
  REQUIRE(again != nullptr);
  CHECK_EQ(again->phys_offset, gone.phys);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK(unit.find_by_name("big") != nullptr);
  CHECK(unit.close() == Status::kOk);
}

TEST(every_bounds_edge_is_refused) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  const uint64_t len = 100;
  RegionEntry r = add(unit, "edge", len);
  RegionEntry next = add(unit, "neighbour", pmu::kPageSize);
  REQUIRE(r.handle != 0 && next.handle != 0);
  const uint64_t base = r.vbase;
  const uint32_t h = r.handle;
  std::vector<uint8_t> buffer(2 * pmu::kPageSize, 0x77);
  uint8_t* p = buffer.data();

  struct Case {
    uint64_t vaddr;
    uint64_t length;
    Status expected;
  };
  const Case cases[] = {
      {base, 0, Status::kOk},
      {base, len, Status::kOk},
      {base + len, 0, Status::kOk},         // the empty range at the end
      {base + len - 1, 1, Status::kOk},
      {base + len, 1, Status::kBounds},     // one byte at the end
      {base + 10, len - 10 + 1, Status::kBounds},
      {base, len + 1, Status::kBounds},
      {base - 1, 0, Status::kBounds},       // below the base
      {base - 1, 2, Status::kBounds},
      {0, 0, Status::kBounds},
      {base + len + 1, 0, Status::kBounds},
      {base + pmu::kPageSize - 1, 1, Status::kBounds},  // inside the extent, past the length
      {base + r.extent, 1, Status::kBounds},           // the guard page
      {next.vbase, 1, Status::kBounds},                // another region's address
      // Lengths that would wrap a sum back into the region.
      {base, UINT64_MAX, Status::kBounds},
      {base + 1, UINT64_MAX, Status::kBounds},
      {base + 50, UINT64_MAX - 49, Status::kBounds},
      {base + len, UINT64_MAX, Status::kBounds},
      {UINT64_MAX, 1, Status::kBounds},
      {UINT64_MAX, 0, Status::kBounds},
      {UINT64_MAX - len + 1, len, Status::kBounds},
      {base + (1ull << 63), 1, Status::kBounds},
      {base, (1ull << 63) + 1, Status::kBounds},
  };
  for (const Case& c : cases) {
    uint64_t offset = 0xDEAD;
    Status t = unit.translate(h, c.vaddr, c.length, &offset);
    if (t != c.expected)
      std::fprintf(stderr, "    translate(base%+lld, %llu)\n", static_cast<long long>(c.vaddr - base),
                   static_cast<unsigned long long>(c.length));
    CHECK_EQ(t, c.expected);
    if (t == Status::kOk) {
      CHECK_EQ(offset, r.phys_offset + (c.vaddr - base));
    } else {
      CHECK_EQ(offset, uint64_t{0xDEAD});  // untouched on failure
    }
    // The buffer holds 2 pages: every longer length is refused before any memcpy, or ASan says so.
    CHECK_EQ(unit.write(h, c.vaddr, p, c.length, kPlain), c.expected);
    CHECK_EQ(unit.read(h, c.vaddr, p, c.length), c.expected);
    CHECK_EQ(unit.flush(h, c.vaddr, c.length), c.expected);
  }

  // No refused write touched the region's slack or its neighbour.
  REQUIRE(unit.close() == Status::kOk);
  std::vector<uint8_t> bytes = file_bytes(path);
  REQUIRE(bytes.size() >= next.phys_offset + next.extent);
  for (uint64_t i = r.phys_offset + len; i < r.phys_offset + r.extent; i++) CHECK_EQ(bytes[i], uint8_t{0});
  for (uint64_t i = next.phys_offset; i < next.phys_offset + next.extent; i++) CHECK_EQ(bytes[i], uint8_t{0});
}

TEST(unknown_handle_and_closed_unit) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  RegionEntry r = add(unit, "r", 64);
  REQUIRE(r.handle != 0);
  uint8_t b[8] = {};
  uint64_t offset = 0, previous = 0;
  std::string detail;
  for (uint32_t bad : {0u, r.handle + 1, 0xFFFFFFFFu}) {
    CHECK_ST(unit.translate(bad, r.vbase, 1, &offset), kNotFound);
    CHECK_ST(unit.write(bad, r.vbase, b, 1, kPlain), kNotFound);
    CHECK_ST(unit.read(bad, r.vbase, b, 1), kNotFound);
    CHECK_ST(unit.flush(bad, r.vbase, 1), kNotFound);
    CHECK_ST(unit.compare_and_swap(bad, r.vbase, 0, 1, &previous, false), kNotFound);
    CHECK_ST(unit.delete_region(bad), kNotFound);
    CHECK_ST(unit.set_grants(bad, {}, &detail), kNotFound);
  }
  REQUIRE(unit.close() == Status::kOk);
  const RegionEntry* created = nullptr;
  CHECK_ST(unit.translate(r.handle, r.vbase, 1, &offset), kClosed);
  CHECK_ST(unit.write(r.handle, r.vbase, b, 1, kPlain), kClosed);
  CHECK_ST(unit.read(r.handle, r.vbase, b, 1), kClosed);
  CHECK_ST(unit.flush(r.handle, r.vbase, 1), kClosed);
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase, 0, 1, &previous, false), kClosed);
  CHECK_ST(unit.create_region("s", 1, "", &created, &detail), kClosed);
  CHECK_ST(unit.delete_region(r.handle), kClosed);
  CHECK_ST(unit.set_grants(r.handle, {}, &detail), kClosed);
  CHECK(unit.regions().empty());
}

// ---- compare-and-swap and fencing ----------------------------------------------------------

TEST(compare_and_swap) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  RegionEntry r = add(unit, "cas", 64);
  REQUIRE(r.handle != 0);
  const uint64_t word = r.vbase + 8;
  uint64_t previous = 99;
  CHECK_ST(unit.compare_and_swap(r.handle, word, 0, 5, &previous, false), kOk);
  CHECK_EQ(previous, uint64_t{0});
  uint64_t value = 0;
  CHECK_ST(unit.read(r.handle, word, reinterpret_cast<uint8_t*>(&value), 8), kOk);
  CHECK_EQ(value, uint64_t{5});
  // Failure: status OK, previous is the current value, and nothing changes.
  CHECK_ST(unit.compare_and_swap(r.handle, word, 0, 7, &previous, false), kOk);
  CHECK_EQ(previous, uint64_t{5});
  CHECK_ST(unit.read(r.handle, word, reinterpret_cast<uint8_t*>(&value), 8), kOk);
  CHECK_EQ(value, uint64_t{5});
  CHECK_ST(unit.compare_and_swap(r.handle, word, 5, UINT64_MAX, &previous, true), kOk);
  CHECK_EQ(previous, uint64_t{5});
  // The last word of the region, and its first.
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase + 56, 0, 1, &previous, false), kOk);
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase, 0, 1, &previous, false), kOk);
  // Misaligned inside the region; out of bounds wins over misaligned.
  for (uint64_t off : {1u, 4u, 7u, 9u, 52u})
    CHECK_ST(unit.compare_and_swap(r.handle, r.vbase + off, 0, 1, &previous, false), kAlign);
  for (uint64_t off : {57u, 60u, 64u, 72u})
    CHECK_ST(unit.compare_and_swap(r.handle, r.vbase + off, 0, 1, &previous, false), kBounds);
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase - 8, 0, 1, &previous, false), kBounds);
  CHECK_ST(unit.compare_and_swap(r.handle, UINT64_MAX - 7, 0, 1, &previous, false), kBounds);
  // A region shorter than a word has no word at all.
  RegionEntry tiny = add(unit, "tiny", 4);
  REQUIRE(tiny.handle != 0);
  CHECK_ST(unit.compare_and_swap(tiny.handle, tiny.vbase, 0, 1, &previous, false), kBounds);
  // Persisted.
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK_ST(unit.read(r.handle, word, reinterpret_cast<uint8_t*>(&value), 8), kOk);
  CHECK_EQ(value, UINT64_MAX);
  CHECK(unit.close() == Status::kOk);
}

TEST(fenced_write) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  RegionEntry r = add(unit, "fenced", 4096);
  REQUIRE(r.handle != 0);
  uint64_t previous = 0;
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase, 0, 3, &previous, false), kOk);
  Unit::WriteOptions fenced;
  fenced.fence = true;
  fenced.fence_vaddr = r.vbase;
  fenced.fence_epoch = 3;
  const uint8_t payload[4] = {9, 8, 7, 6};
  uint8_t back[4] = {};
  CHECK_ST(unit.write(r.handle, r.vbase + 16, payload, 4, fenced), kOk);
  CHECK_ST(unit.read(r.handle, r.vbase + 16, back, 4), kOk);
  CHECK(std::memcmp(back, payload, 4) == 0);

  // Another writer bumps the epoch: the old writer is refused and writes nothing.
  CHECK_ST(unit.compare_and_swap(r.handle, r.vbase, 3, 4, &previous, false), kOk);
  const uint8_t stale[4] = {1, 1, 1, 1};
  CHECK_ST(unit.write(r.handle, r.vbase + 16, stale, 4, fenced), kFenced);
  CHECK_ST(unit.read(r.handle, r.vbase + 16, back, 4), kOk);
  CHECK(std::memcmp(back, payload, 4) == 0);
  fenced.fence_epoch = 4;
  CHECK_ST(unit.write(r.handle, r.vbase + 16, stale, 4, fenced), kOk);
  CHECK_ST(unit.read(r.handle, r.vbase + 16, back, 4), kOk);
  CHECK(std::memcmp(back, stale, 4) == 0);

  // The fence word must be an aligned word inside the same region.
  fenced.fence_vaddr = r.vbase + 4;
  CHECK_ST(unit.write(r.handle, r.vbase + 16, stale, 4, fenced), kAlign);
  fenced.fence_vaddr = r.vbase + 4096;
  CHECK_ST(unit.write(r.handle, r.vbase + 16, stale, 4, fenced), kBounds);
  fenced.fence_vaddr = r.vbase - 8;
  CHECK_ST(unit.write(r.handle, r.vbase + 16, stale, 4, fenced), kBounds);
  // The data range is checked too, fence or not.
  fenced.fence_vaddr = r.vbase;
  CHECK_ST(unit.write(r.handle, r.vbase + 4094, stale, 4, fenced), kBounds);
  CHECK(unit.close() == Status::kOk);
}

// ---- locking -------------------------------------------------------------------------------

TEST(second_open_in_same_process_is_locked) {
  Unit first;
  std::string path;
  REQUIRE(make_unit(first, &path));
  Unit second;
  std::string detail;
  CHECK_ST(second.open(path, &detail), kLocked);
  CHECK(!detail.empty());
  CHECK(!second.is_open());
  // Opening the same Unit twice is refused too, and leaves it open.
  CHECK_ST(first.open(path, &detail), kInvalid);
  CHECK(first.is_open());
  // Inspection takes no lock.
  Unit inspector;
  CopyReport reports[2];
  CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kOk);
  CHECK_ST(inspector.close(), kOk);
  CHECK_ST(first.close(), kOk);
  CHECK_ST(second.open(path, &detail), kOk);
  CHECK_ST(second.close(), kOk);
}

// ---- space, table size and names -----------------------------------------------------------

TEST(no_space_then_reuse_of_freed_extent) {
  // The header page, 4 regions of metadata (one page per copy) and 4 data pages.
  const uint64_t data_offset = pmu::kHeaderSize + 2 * pmu::meta_copy_size(4);
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, data_offset + 4 * pmu::kPageSize, 4));
  CHECK_EQ(unit.info().data_offset, data_offset);
  RegionEntry a = add(unit, "a", 4096);
  RegionEntry b = add(unit, "b", 8192);
  RegionEntry c = add(unit, "c", 1);
  REQUIRE(a.handle && b.handle && c.handle);
  CHECK_EQ(a.phys_offset, data_offset);
  CHECK_EQ(b.phys_offset, data_offset + 4096);
  CHECK_EQ(c.phys_offset, data_offset + 3 * 4096);
  CHECK_EQ(unit.info().free_bytes, uint64_t{0});

  const RegionEntry* created = nullptr;
  std::string detail;
  uint64_t generation = unit.info().generation;
  CHECK_ST(unit.create_region("d", 1, "", &created, &detail), kNoSpace);
  CHECK(contains(detail, "largest free extent is 0 bytes"));
  CHECK_EQ(unit.info().generation, generation);  // a refused create commits nothing

  // Fill b with a pattern, make it durable, delete it.
  std::vector<uint8_t> pattern(8192, 0xAB);
  Unit::WriteOptions sync;
  sync.sync = true;
  CHECK_ST(unit.write(b.handle, b.vbase, pattern.data(), pattern.size(), sync), kOk);
  CHECK_ST(unit.delete_region(b.handle), kOk);
  CHECK_EQ(unit.info().free_bytes, uint64_t{8192});
  CHECK_EQ(unit.info().largest_free_extent, uint64_t{8192});
  CHECK_ST(unit.create_region("big", 8193, "", &created, &detail), kNoSpace);
  CHECK(contains(detail, "largest free extent is 8192 bytes"));
  CHECK(contains(detail, "12288"));

  // The new region takes b's extent and reads back zeros, not b's bytes, before and after reopen.
  RegionEntry e = add(unit, "e", 8192);
  REQUIRE(e.handle != 0);
  CHECK_EQ(e.phys_offset, b.phys_offset);
  std::vector<uint8_t> got(8192, 0xEE);
  CHECK_ST(unit.read(e.handle, e.vbase, got.data(), got.size()), kOk);
  CHECK(all_zero(got));
  REQUIRE(reopen(unit, path) == Status::kOk);
  std::fill(got.begin(), got.end(), 0xEE);
  CHECK_ST(unit.read(e.handle, e.vbase, got.data(), got.size()), kOk);
  CHECK(all_zero(got));
  CHECK(unit.close() == Status::kOk);
  std::vector<uint8_t> bytes = file_bytes(path);
  REQUIRE(bytes.size() >= e.phys_offset + 8192);
  CHECK(all_zero(std::vector<uint8_t>(bytes.begin() + static_cast<std::ptrdiff_t>(e.phys_offset),
                                      bytes.begin() + static_cast<std::ptrdiff_t>(e.phys_offset + 8192))));

  // A region smaller than the gap goes to its start.
  REQUIRE(unit.open(path, &detail) == Status::kOk);
  CHECK_ST(unit.delete_region(a.handle), kOk);
  RegionEntry f = add(unit, "f", 100);
  CHECK_EQ(f.phys_offset, a.phys_offset);
  CHECK(unit.close() == Status::kOk);
}

// ---- allocation: no hole, no unwritten extent, no leaked bytes -----------------------------

// A new file is written with zeros, not only allocated: SEEK_HOLE finds no hole (on ext4 it
// would stop at an unwritten extent), so no first write pays for converting one.
TEST(new_file_is_fully_allocated_and_written) {
  std::string path = fresh_path();
  std::string detail;
  std::vector<std::pair<uint64_t, uint64_t>> reports;
  const uint64_t size = 70ull << 20;  // more than one 64 MiB batch
  REQUIRE(Unit::create(path, size, 8, &detail, [&](uint64_t done, uint64_t total) {
            reports.emplace_back(done, total);
          }) == Status::kOk);
  CHECK(allocated_bytes(path) >= size);
  CHECK_EQ(first_hole(path), static_cast<int64_t>(size));
  // Progress: once per batch, growing, ending at the total.
  REQUIRE(reports.size() == 2);
  CHECK_EQ(reports[0].first, uint64_t{64} << 20);
  CHECK_EQ(reports[1].first, size);
  CHECK_EQ(reports[1].second, size);
  ::unlink(path.c_str());
}

// A sparse file (a copy made with cp --sparse=always, a hole punched by an older build) has its
// holes allocated at open, before anything is mapped.
TEST(open_allocates_the_holes_of_a_sparse_file) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 8));
  RegionEntry r = add(unit, "r", 64 << 10);
  REQUIRE(r.handle != 0);
  const uint8_t byte = 7;
  CHECK_ST(unit.write(r.handle, r.vbase, &byte, 1, kPlain), kOk);
  REQUIRE(unit.close() == Status::kOk);
  REQUIRE(punch_hole(path, r.phys_offset + pmu::kPageSize, 32 << 10));
  REQUIRE(first_hole(path) == static_cast<int64_t>(r.phys_offset + pmu::kPageSize));
  REQUIRE(allocated_bytes(path) < (1u << 20));
  std::string detail;
  REQUIRE(unit.open(path, &detail) == Status::kOk);
  CHECK(allocated_bytes(path) >= (1u << 20));
  // The hole read as zeros and still does; the data beside it is intact; writes land.
  uint8_t got[2] = {1, 1};
  CHECK_ST(unit.read(r.handle, r.vbase, got, 1), kOk);
  CHECK_EQ(got[0], uint8_t{7});
  CHECK_ST(unit.read(r.handle, r.vbase + pmu::kPageSize + 5, got, 2), kOk);
  CHECK(got[0] == 0 && got[1] == 0);
  CHECK_ST(unit.write(r.handle, r.vbase + pmu::kPageSize, &byte, 1, {true}), kOk);
  CHECK(unit.close() == Status::kOk);
}

// A deleted region's extent, reused, reads as zeros; the blocks stay allocated and written
// (no hole is ever punched), and only space that held data is zeroed (the clean offset).
TEST(reused_extent_is_zeroed_and_stays_written) {
  const uint32_t max_regions = 8;
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  const uint64_t length = 3 * pmu::kPageSize;
  RegionEntry first = add(unit, "first", length);
  REQUIRE(first.handle != 0);
  std::vector<uint8_t> secret = random_bytes(length, 9);
  CHECK_ST(unit.write(first.handle, first.vbase, secret.data(), length, {true}), kOk);  // flushed
  RegionEntry mapped = add(unit, "mapped", length);
  REQUIRE(mapped.handle != 0);
  CHECK_ST(unit.write(mapped.handle, mapped.vbase, secret.data(), length, kPlain), kOk);  // only mapped
  CHECK_ST(unit.delete_region(first.handle), kOk);
  CHECK_ST(unit.delete_region(mapped.handle), kOk);
  RegionEntry again = add(unit, "again", length);
  RegionEntry again2 = add(unit, "again2", length);
  REQUIRE(again.handle != 0 && again2.handle != 0);
  CHECK_EQ(again.phys_offset, first.phys_offset);
  CHECK_EQ(again2.phys_offset, mapped.phys_offset);
  std::vector<uint8_t> got(length, 0xEE);
  CHECK_ST(unit.read(again.handle, again.vbase, got.data(), length), kOk);
  CHECK(all_zero(got));
  std::fill(got.begin(), got.end(), 0xEE);
  CHECK_ST(unit.read(again2.handle, again2.vbase, got.data(), length), kOk);
  CHECK(all_zero(got));
  REQUIRE(unit.close() == Status::kOk);
  // On disk too, after the close: zeros, and not one hole or unwritten extent anywhere.
  std::vector<uint8_t> bytes = file_bytes(path);
  CHECK(all_zero(std::vector<uint8_t>(bytes.begin() + static_cast<long>(first.phys_offset),
                                      bytes.begin() + static_cast<long>(first.phys_offset + 2 * length))));
  CHECK_EQ(first_hole(path), static_cast<int64_t>(1 << 20));
  // The committed superblock records how far regions have reached.
  Superblock sb;
  std::vector<RegionEntry> entries;
  std::string why;
  uint64_t current = current_copy_offset(bytes, max_regions);
  REQUIRE(pmu::decode_copy(bytes.data() + current, bytes.size() - current, bytes.size(), &sb, &entries, &why) ==
          CopyState::kValid);
  CHECK_EQ(sb.clean_offset, mapped.phys_offset + mapped.extent);
}

// The clean offset is checked like every other field: a region reaching past it is corrupt.
TEST(region_beyond_the_clean_offset_is_corrupt) {
  Superblock sb;
  sb.max_regions = 4;
  sb.meta_copy_size = pmu::meta_copy_size(4);
  sb.data_offset = pmu::kHeaderSize + 2 * sb.meta_copy_size;
  sb.file_size = sb.data_offset + 16 * pmu::kPageSize;
  sb.clean_offset = sb.data_offset + pmu::kPageSize;
  sb.generation = 5;
  sb.next_handle = 2;
  sb.next_vaddr = pmu::kFirstVirtualAddress + (1 << 20);
  RegionEntry e;
  e.handle = 1;
  e.vbase = pmu::kFirstVirtualAddress;
  e.length = 5000;
  e.extent = 8192;
  e.phys_offset = sb.data_offset;
  e.name = "r";
  std::vector<uint8_t> copy(static_cast<size_t>(sb.meta_copy_size));
  pmu::encode_copy(sb, {e}, copy.data());
  Superblock out;
  std::vector<RegionEntry> entries;
  std::string why;
  CHECK_EQ(pmu::decode_copy(copy.data(), copy.size(), sb.file_size, &out, &entries, &why), CopyState::kInvalid);
  CHECK(contains(why, "outside the file's data area"));
  sb.clean_offset = sb.file_size + pmu::kPageSize;
  pmu::encode_copy(sb, {}, copy.data());
  CHECK_EQ(pmu::decode_copy(copy.data(), copy.size(), sb.file_size, &out, &entries, &why), CopyState::kInvalid);
  CHECK(contains(why, "clean offset"));
}

TEST(table_full_is_too_many) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 2));
  RegionEntry one = add(unit, "one", 1);
  RegionEntry two = add(unit, "two", 1);
  REQUIRE(one.handle && two.handle);
  const RegionEntry* created = nullptr;
  std::string detail;
  CHECK_ST(unit.create_region("three", 1, "", &created, &detail), kTooMany);
  CHECK(contains(detail, "at most 2"));
  CHECK_EQ(unit.info().region_count, 2u);
  CHECK_ST(unit.delete_region(one.handle), kOk);
  CHECK(add(unit, "three", 1).handle != 0);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK_EQ(unit.info().region_count, 2u);
  CHECK(unit.find_by_name("three") != nullptr);
  CHECK(unit.find_by_name("one") == nullptr);
  CHECK(unit.close() == Status::kOk);
}

TEST(names_lengths_and_grants_are_validated) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  const RegionEntry* created = nullptr;
  std::string detail;
  REQUIRE(add(unit, "dup", 10).handle != 0);
  uint64_t generation = unit.info().generation;
  CHECK_ST(unit.create_region("dup", 10, "", &created, &detail), kExists);
  CHECK_ST(unit.create_region("", 10, "", &created, &detail), kInvalid);
  CHECK_ST(unit.create_region(std::string(64, 'n'), 10, "", &created, &detail), kInvalid);
  CHECK_ST(unit.create_region(std::string("nul\0name", 8), 10, "", &created, &detail), kInvalid);
  CHECK_ST(unit.create_region("zero", 0, "", &created, &detail), kInvalid);
  CHECK_ST(unit.create_region("huge", pmu::kMaxRegionLength + 1, "", &created, &detail), kInvalid);
  CHECK_ST(unit.create_region("owner", 10, std::string(32, 'o'), &created, &detail), kInvalid);
  CHECK_ST(unit.create_region("toolarge", pmu::kMaxRegionLength, "", &created, &detail), kNoSpace);
  CHECK_EQ(unit.info().generation, generation);
  CHECK_EQ(unit.info().region_count, 1u);

  RegionEntry longest = add(unit, std::string(63, 'n'), 10, std::string(31, 'o'));
  REQUIRE(longest.handle != 0);
  std::vector<Grant> nine(9, Grant{"user", pmu::kRightRead});
  for (size_t i = 0; i < nine.size(); i++) nine[i].user += std::to_string(i);
  CHECK_ST(unit.set_grants(longest.handle, nine, &detail), kTooMany);
  nine.pop_back();
  nine[7].user = std::string(31, 'u');
  CHECK_ST(unit.set_grants(longest.handle, nine, &detail), kOk);
  CHECK_ST(unit.set_grants(longest.handle, {{"x", pmu::kRightNone}}, &detail), kInvalid);
  CHECK_ST(unit.set_grants(longest.handle, {{"x", 4}}, &detail), kInvalid);
  CHECK_ST(unit.set_grants(longest.handle, {{"", pmu::kRightRead}}, &detail), kInvalid);
  CHECK_ST(unit.set_grants(longest.handle, {{std::string(32, 'u'), pmu::kRightRead}}, &detail), kInvalid);

  REQUIRE(reopen(unit, path) == Status::kOk);
  const RegionEntry* e = unit.find_by_name(std::string(63, 'n'));
  REQUIRE(e != nullptr);
  CHECK_EQ(e->owner, std::string(31, 'o'));
  REQUIRE(e->grants.size() == 8);
  CHECK_EQ(e->grants[7].user, std::string(31, 'u'));
  CHECK_ST(unit.set_grants(e->handle, {}, &detail), kOk);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK(unit.find_by_name(std::string(63, 'n'))->grants.empty());
  CHECK(unit.close() == Status::kOk);
}

// ---- torn metadata and corruption ----------------------------------------------------------

// Damage to the copy holding the last acknowledged update is not a torn write: opening the
// older copy would silently undo that update (and a later create would reuse its extent).
TEST(damaged_committed_copy_is_corrupt_never_rolled_back) {
  const uint32_t max_regions = 8;
  for (uint64_t where : {uint64_t{pmu::kSuperblockSize + 100},         // entry 0's name
                         uint64_t{pmu::kSuperblockSize + 3 * 512 + 7},  // a free slot
                         uint64_t{200},                                 // the superblock's padding
                         uint64_t{kGenerationField}}) {                 // the generation itself
    Unit unit;
    std::string path;
    REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
    REQUIRE(add(unit, "r1", 10).handle && add(unit, "r2", 10).handle && add(unit, "r3", 10).handle);
    CHECK_EQ(unit.info().generation, uint64_t{4});
    REQUIRE(unit.close() == Status::kOk);

    std::vector<uint8_t> bytes = file_bytes(path);
    uint64_t current = current_copy_offset(bytes, max_regions);
    CHECK_EQ(current, copy_b(max_regions));  // even generations live in copy B
    CHECK_EQ(u64_at(bytes, current + kGenerationField), uint64_t{4});
    CHECK_EQ(u64_at(bytes, older_copy_offset(bytes, max_regions) + kGenerationField), uint64_t{3});
    uint8_t flipped = static_cast<uint8_t>(bytes[current + where] ^ 0x40);
    REQUIRE(write_at(path, current + where, &flipped, 1));
    std::vector<uint8_t> damaged = file_bytes(path);

    std::string detail;
    CHECK_ST(unit.open(path, &detail), kCorrupt);
    CHECK(contains(detail, "copy B holds the last acknowledged table update (generation 4)"));
    CHECK(contains(detail, "pmu inspect --verify"));
    CHECK(!unit.is_open());
    // Refusing wrote nothing: the evidence is intact for inspection and restore.
    CHECK(file_bytes(path) == damaged);
    CopyReport reports[2];
    pmu::CommitReport commit;
    Unit inspector;
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail, &commit), kCorrupt);
    CHECK_EQ(commit.generation, uint64_t{4});
    CHECK(reports[1].state != CopyState::kValid || reports[1].generation != 4);
    CHECK_EQ(reports[0].generation, uint64_t{3});
    inspector.close();
  }
}

// Damage to the commit record (one sector, written whole) is damage too, wherever it lands.
TEST(damaged_commit_record_is_corrupt) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 8));
  REQUIRE(add(unit, "r1", 10).handle != 0);
  REQUIRE(unit.close() == Status::kOk);
  std::vector<uint8_t> bytes = file_bytes(path);
  for (uint64_t where : {uint64_t{0}, uint64_t{12}, uint64_t{32}, uint64_t{40}, uint64_t{300}, uint64_t{509}}) {
    uint8_t flipped = static_cast<uint8_t>(bytes[where] ^ 0x01);
    REQUIRE(write_at(path, where, &flipped, 1));
    std::string detail;
    CHECK_ST(unit.open(path, &detail), kCorrupt);
    CHECK(contains(detail, "commit record"));
    REQUIRE(write_at(path, where, &bytes[where], 1));
  }
  std::string detail;
  CHECK_ST(unit.open(path, &detail), kOk);
  CHECK(unit.find_by_name("r1") != nullptr);
  CHECK(unit.close() == Status::kOk);
}

// A crash after the new copy was flushed but before its commit record: the update was never
// acknowledged, so the unit opens at the committed generation and says what it dropped.
TEST(whole_but_uncommitted_copy_is_rolled_back_with_a_note) {
  const uint32_t max_regions = 8;
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  REQUIRE(add(unit, "r1", 10).handle != 0);
  std::vector<uint8_t> committed = file_bytes(path);  // generation 2, committed
  REQUIRE(add(unit, "r2", 10).handle != 0);            // generation 3 in copy A
  REQUIRE(unit.close() == Status::kOk);
  // Put back the old commit record: as if the crash came between the two flushes.
  REQUIRE(write_at(path, 0, committed.data(), pmu::kCommitRecordSize));
  std::string detail;
  REQUIRE(unit.open(path, &detail) == Status::kOk);
  CHECK_EQ(unit.info().generation, uint64_t{2});
  CHECK(unit.find_by_name("r2") == nullptr);
  CHECK(contains(unit.recovery_note(), "never committed"));
  // The next update takes generation 3 again, over the uncommitted copy.
  REQUIRE(add(unit, "r3", 10).handle != 0);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK(unit.recovery_note().empty());
  CHECK_EQ(unit.info().generation, uint64_t{3});
  CHECK(unit.find_by_name("r3") != nullptr);
  CHECK(unit.find_by_name("r2") == nullptr);
  CHECK(unit.close() == Status::kOk);
}

TEST(version_1_file_is_refused_clearly) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 8));
  REQUIRE(unit.close() == Status::kOk);
  // A version 1 file starts with copy A's superblock: magic PMUFILE1, version 1.
  const char magic[8] = {'P', 'M', 'U', 'F', 'I', 'L', 'E', '1'};
  const uint32_t version = 1;
  REQUIRE(write_at(path, 0, magic, 8));
  REQUIRE(write_at(path, 8, &version, 4));
  std::string detail;
  CHECK_ST(unit.open(path, &detail), kInvalid);
  CHECK(contains(detail, "version 1"));
  CHECK(contains(detail, "no migration"));
}

TEST(torn_commit_with_stale_superblock_falls_back) {
  const uint32_t max_regions = 16;  // 3 pages per copy; entry 7 starts the second page
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  for (int i = 0; i < 7; i++) REQUIRE(add(unit, "r" + std::to_string(i), 100).handle != 0);
  REQUIRE(unit.close() == Status::kOk);

  std::vector<uint8_t> bytes = file_bytes(path);
  const uint64_t copy_size = pmu::meta_copy_size(max_regions);
  uint64_t current = current_copy_offset(bytes, max_regions);
  uint64_t older = older_copy_offset(bytes, max_regions);
  Superblock sb;
  std::vector<RegionEntry> entries;
  std::string why;
  REQUIRE(pmu::decode_copy(bytes.data() + current, bytes.size() - current, bytes.size(), &sb, &entries,
                           &why) == CopyState::kValid);
  REQUIRE(entries.size() == 7);

  // What commit() would write for an 8th region.
  RegionEntry e;
  e.handle = static_cast<uint32_t>(sb.next_handle);
  e.vbase = sb.next_vaddr;
  e.length = 100;
  e.extent = pmu::kPageSize;
  e.phys_offset = entries.back().phys_offset + entries.back().extent;
  e.created_generation = sb.generation + 1;
  e.name = "r7";
  entries.push_back(e);
  Superblock next = sb;
  next.generation = sb.generation + 1;
  next.next_handle = sb.next_handle + 1;
  next.next_vaddr = e.vbase + e.extent + pmu::kPageSize;
  std::vector<uint8_t> encoded(copy_size);
  pmu::encode_copy(next, entries, encoded.data());
  // Only the pages after the first reach the disk.
  REQUIRE(write_at(path, older + pmu::kPageSize, encoded.data() + pmu::kPageSize,
                   copy_size - pmu::kPageSize));

  bytes = file_bytes(path);
  Superblock torn_sb;
  std::vector<RegionEntry> torn_entries;
  CHECK_EQ(pmu::decode_copy(bytes.data() + older, bytes.size() - older, bytes.size(), &torn_sb, &torn_entries,
                            &why),
           CopyState::kTorn);
  std::string detail;
  Status s = unit.open(path, &detail);
  CHECK_ST(s, kOk);
  if (s != Status::kOk) std::fprintf(stderr, "    open: %s\n", detail.c_str());
  REQUIRE(s == Status::kOk);
  CHECK_EQ(unit.info().generation, sb.generation);
  CHECK_EQ(unit.info().region_count, 7u);
  CHECK(contains(unit.recovery_note(), "torn"));
  CHECK(unit.close() == Status::kOk);
}

TEST(bad_magic_in_both_copies_is_corrupt) {
  const uint32_t max_regions = 8;
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  REQUIRE(add(unit, "r", 10).handle != 0);  // so that copy B is written too
  REQUIRE(unit.close() == Status::kOk);
  const char junk[8] = {'N', 'O', 'T', 'A', 'P', 'M', 'U', '!'};
  REQUIRE(write_at(path, copy_a(max_regions), junk, 8));
  std::string detail;
  // One bad copy whose checksum cannot explain it: refused, not silently skipped.
  CHECK_ST(open_status(path, &detail), kCorrupt);
  CHECK(contains(detail, "magic"));
  REQUIRE(write_at(path, copy_b(max_regions), junk, 8));
  CHECK_ST(open_status(path, &detail), kCorrupt);
  CHECK(contains(detail, "copy A: bad magic"));
  CHECK(contains(detail, "copy B: bad magic"));
  // The failed open let go of the lock.
  CHECK_ST(open_status(path, &detail), kCorrupt);
}

TEST(truncated_and_short_files_are_corrupt) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, 8));
  REQUIRE(add(unit, "r", 10).handle != 0);
  REQUIRE(unit.close() == Status::kOk);
  REQUIRE(::truncate(path.c_str(), 1 << 19) == 0);
  std::string detail;
  CHECK_ST(open_status(path, &detail), kCorrupt);
  CHECK(contains(detail, "truncated"));
  // Cut inside copy B, then inside copy A's table, then to an odd size.
  for (off_t size : {off_t{12288}, off_t{4096}, off_t{8192 + 100}}) {
    REQUIRE(::truncate(path.c_str(), size) == 0);
    CHECK_ST(open_status(path, &detail), kCorrupt);
  }
  for (off_t size : {off_t{4095}, off_t{100}, off_t{0}}) {
    REQUIRE(::truncate(path.c_str(), size) == 0);
    CHECK_ST(open_status(path, &detail), kCorrupt);
    CHECK(contains(detail, "too short"));
    Unit inspector;
    CopyReport reports[2];
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kCorrupt);
  }
}

// Rewrites the current copy of a closed file with `doctor` applied to its decoded contents,
// checksummed properly: damage that no checksum can catch, only the content checks.
template <typename Doctor>
bool rewrite_current_copy(const std::string& path, uint32_t max_regions, Doctor doctor) {
  std::vector<uint8_t> bytes = file_bytes(path);
  uint64_t current = current_copy_offset(bytes, max_regions);
  Superblock sb;
  std::vector<RegionEntry> entries;
  std::string why;
  if (pmu::decode_copy(bytes.data() + current, bytes.size() - current, bytes.size(), &sb, &entries, &why) !=
      CopyState::kValid)
    return false;
  doctor(sb, entries);
  std::vector<uint8_t> encoded(static_cast<size_t>(pmu::meta_copy_size(sb.max_regions)));
  pmu::encode_copy(sb, entries, encoded.data());
  return write_at(path, current, encoded.data(), encoded.size());
}

TEST(checksummed_but_wrong_content_is_corrupt) {
  const uint32_t max_regions = 8;
  struct Case {
    const char* what;
    void (*doctor)(Superblock&, std::vector<RegionEntry>&);
    const char* expected_why;
  };
  const Case cases[] = {
      {"extent past the end of the file",
       [](Superblock& sb, std::vector<RegionEntry>& e) { e[0].phys_offset = sb.file_size; },
       "outside the file's data area"},
      {"extent straddling the end of the file",
       [](Superblock& sb, std::vector<RegionEntry>& e) {
         e[0].phys_offset = sb.file_size - pmu::kPageSize;
         e[0].extent = 2 * pmu::kPageSize;
       },
       "outside the file's data area"},
      {"offset so large that offset + extent wraps",
       [](Superblock&, std::vector<RegionEntry>& e) { e[0].phys_offset = UINT64_MAX - pmu::kPageSize + 1; },
       "outside the file's data area"},
      {"extent inside the metadata",
       [](Superblock&, std::vector<RegionEntry>& e) { e[0].phys_offset = 0; },
       "outside the file's data area"},
      {"length longer than the extent",
       [](Superblock&, std::vector<RegionEntry>& e) { e[0].length = e[0].extent + 1; },
       "outside the file's data area"},
      {"two regions on one extent",
       [](Superblock&, std::vector<RegionEntry>& e) { e[1].phys_offset = e[0].phys_offset; },
       "overlap"},
      {"handle beyond the allocation counter",
       [](Superblock& sb, std::vector<RegionEntry>& e) {
         e[0].handle = static_cast<uint32_t>(sb.next_handle);
       },
       "bad state or handle"},
      {"virtual range beyond the allocation counter",
       [](Superblock& sb, std::vector<RegionEntry>&) { sb.next_vaddr = pmu::kFirstVirtualAddress; },
       "virtual range"},
      {"duplicate names",
       [](Superblock&, std::vector<RegionEntry>& e) { e[1].name = e[0].name; },
       "share a handle, name or virtual range"},
      {"wrong file size in the superblock",
       [](Superblock& sb, std::vector<RegionEntry>&) { sb.file_size += pmu::kPageSize; },
       "bytes but it is"},
  };
  for (const Case& c : cases) {
    Unit unit;
    std::string path;
    REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
    REQUIRE(add(unit, "a", 10).handle && add(unit, "b", 10).handle);
    REQUIRE(unit.close() == Status::kOk);
    REQUIRE(rewrite_current_copy(path, max_regions, c.doctor));
    std::string detail;
    Status s = open_status(path, &detail);
    if (s != Status::kCorrupt || !contains(detail, c.expected_why))
      std::fprintf(stderr, "    case: %s; detail: %s\n", c.what, detail.c_str());
    CHECK_ST(s, kCorrupt);
    CHECK(contains(detail, c.expected_why));
  }
}

TEST(both_copies_claiming_one_generation_is_corrupt) {
  const uint32_t max_regions = 8;
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  REQUIRE(add(unit, "a", 10).handle != 0);
  REQUIRE(add(unit, "b", 10).handle != 0);
  REQUIRE(unit.close() == Status::kOk);
  std::vector<uint8_t> bytes = file_bytes(path);
  const uint64_t copy_size = pmu::meta_copy_size(max_regions);
  uint64_t current = current_copy_offset(bytes, max_regions);
  uint64_t older = older_copy_offset(bytes, max_regions);
  REQUIRE(write_at(path, older, bytes.data() + current, copy_size));
  std::string detail;
  CHECK_ST(open_status(path, &detail), kCorrupt);
  CHECK(contains(detail, "claims generation 3 but the committed generation is 3"));
}

// ---- group flush ---------------------------------------------------------------------------

TEST(pending_span_grows_with_group_writes_and_resets_when_taken) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  RegionEntry r = add(unit, "g", 3 * pmu::kPageSize);
  RegionEntry s2 = add(unit, "h", 100);
  REQUIRE(r.handle && s2.handle);
  CHECK(unit.take_pending_span().empty());
  CHECK_ST(unit.flush_span(unit.take_pending_span()), kOk);  // an empty span flushes nothing

  uint8_t data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  Unit::WriteOptions group;
  group.join_group = true;
  CHECK_ST(unit.write(r.handle, r.vbase + 100, data, 10, kPlain), kOk);  // not in the group
  CHECK(unit.take_pending_span().empty());
  CHECK_ST(unit.write(r.handle, r.vbase + 100, data, 0, group), kOk);  // nothing written, nothing joins
  CHECK(unit.take_pending_span().empty());

  CHECK_ST(unit.write(r.handle, r.vbase + 100, data, 10, group), kOk);
  CHECK_ST(unit.write(r.handle, r.vbase + 5000, data, 4, group), kOk);
  CHECK_ST(unit.write(r.handle, r.vbase + 200, data, 4, group), kOk);  // inside: no change
  CHECK_ST(unit.write(r.handle, r.vbase + 4, data, 1, group), kOk);
  CHECK_ST(unit.write(r.handle, r.vbase + 8000, data, 16, kPlain), kOk);  // not in the group
  Unit::WriteOptions sync_group = group;
  sync_group.sync = true;  // flushed on the spot, so it does not join
  CHECK_ST(unit.write(r.handle, r.vbase + 9000, data, 16, sync_group), kOk);
  // A refused write does not join either.
  CHECK_ST(unit.write(r.handle, r.vbase + 3 * pmu::kPageSize, data, 1, group), kBounds);
  FlushSpan span = unit.take_pending_span();
  CHECK_EQ(span.start, r.phys_offset + 4);
  CHECK_EQ(span.end, r.phys_offset + 5004);
  CHECK(unit.take_pending_span().empty());
  CHECK_ST(unit.flush_span(span), kOk);

  // Writes to two regions: one span covers both.
  CHECK_ST(unit.write(s2.handle, s2.vbase + 50, data, 8, group), kOk);
  CHECK_ST(unit.write(r.handle, r.vbase + 10, data, 8, group), kOk);
  span = unit.take_pending_span();
  CHECK_EQ(span.start, r.phys_offset + 10);
  CHECK_EQ(span.end, s2.phys_offset + 58);
  CHECK_ST(unit.flush_span(span), kOk);

  // close() drops a span nobody took.
  CHECK_ST(unit.write(r.handle, r.vbase, data, 8, group), kOk);
  REQUIRE(reopen(unit, path) == Status::kOk);
  CHECK(unit.take_pending_span().empty());
  uint8_t back[16] = {};
  CHECK_ST(unit.read(r.handle, r.vbase + 100, back, 10), kOk);
  CHECK(std::memcmp(back, data, 10) == 0);
  CHECK(unit.close() == Status::kOk);
}

// ---- inspection ----------------------------------------------------------------------------

TEST(inspection_reports_both_copies) {
  const uint32_t max_regions = 8;
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path, 1 << 20, max_regions));
  REQUIRE(unit.close() == Status::kOk);
  std::string detail;
  {
    // Fresh: copy A at generation 1, copy B never written.
    Unit inspector;
    CopyReport reports[2];
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kOk);
    CHECK_EQ(reports[0].state, CopyState::kValid);
    CHECK_EQ(reports[0].generation, uint64_t{1});
    CHECK_EQ(reports[1].state, CopyState::kInvalid);
    CHECK_EQ(reports[1].why, std::string("superblock is all zeros"));
    CHECK(inspector.close() == Status::kOk);
  }
  REQUIRE(unit.open(path, &detail) == Status::kOk);
  REQUIRE(add(unit, "a", 10).handle && add(unit, "b", 10).handle);
  REQUIRE(unit.close() == Status::kOk);
  {
    Unit inspector;
    CopyReport reports[2];
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kOk);
    CHECK_EQ(reports[0].state, CopyState::kValid);
    CHECK_EQ(reports[0].generation, uint64_t{3});
    CHECK_EQ(reports[1].state, CopyState::kValid);
    CHECK_EQ(reports[1].generation, uint64_t{2});
    CHECK_EQ(inspector.info().region_count, 2u);
    CHECK_EQ(inspector.regions().size(), size_t{2});
    // Read-only: reads work, every change is refused, and nothing crashes on the read-only map.
    const RegionEntry* a = inspector.find_by_name("a");
    REQUIRE(a != nullptr);
    uint32_t handle = a->handle;
    uint64_t vbase = a->vbase;
    uint8_t byte = 1;
    uint64_t previous = 0;
    const RegionEntry* created = nullptr;
    CHECK_ST(inspector.read(handle, vbase, &byte, 1), kOk);
    CHECK_ST(inspector.write(handle, vbase, &byte, 1, kPlain), kInvalid);
    CHECK_ST(inspector.compare_and_swap(handle, vbase, 0, 1, &previous, false), kInvalid);
    CHECK_ST(inspector.flush(handle, vbase, 1), kInvalid);
    CHECK_ST(inspector.delete_region(handle), kInvalid);
    CHECK_ST(inspector.set_grants(handle, {}, &detail), kInvalid);
    CHECK_ST(inspector.create_region("c", 10, "", &created, &detail), kInvalid);
    CHECK(inspector.close() == Status::kOk);
  }
  // The older copy torn: inspection says which one, and opens the committed one with a note.
  std::vector<uint8_t> bytes = file_bytes(path);
  uint64_t older = older_copy_offset(bytes, max_regions);
  CHECK_EQ(older, copy_b(max_regions));
  uint8_t flipped = static_cast<uint8_t>(bytes[older + pmu::kSuperblockSize + 1] ^ 1);
  REQUIRE(write_at(path, older + pmu::kSuperblockSize + 1, &flipped, 1));
  {
    Unit inspector;
    CopyReport reports[2];
    pmu::CommitReport commit;
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail, &commit), kOk);
    CHECK_EQ(commit.state == pmu::CommitState::kValid, true);
    CHECK_EQ(commit.generation, uint64_t{3});
    CHECK_EQ(reports[1].state, CopyState::kTorn);
    CHECK(contains(reports[1].why, "checksum mismatch"));
    CHECK_EQ(reports[0].state, CopyState::kValid);
    CHECK_EQ(reports[0].generation, uint64_t{3});
    CHECK(contains(inspector.recovery_note(), "copy B was torn"));
    CHECK(inspector.close() == Status::kOk);
  }
  // The committed copy torn: kCorrupt, and the report still describes both copies.
  flipped = static_cast<uint8_t>(bytes[copy_a(max_regions) + pmu::kSuperblockSize + 1] ^ 1);
  REQUIRE(write_at(path, copy_a(max_regions) + pmu::kSuperblockSize + 1, &flipped, 1));
  {
    Unit inspector;
    CopyReport reports[2];
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kCorrupt);
    CHECK_EQ(reports[0].state, CopyState::kTorn);
    CHECK(contains(detail, "copy A holds the last acknowledged table update (generation 3)"));
    inspector.close();
  }
  // Bad magic in both: kCorrupt, with a reason for each copy.
  const char junk[8] = {0, 0, 0, 0, 'j', 'u', 'n', 'k'};
  REQUIRE(write_at(path, copy_a(max_regions), junk, 8));
  REQUIRE(write_at(path, copy_b(max_regions), junk, 8));
  {
    Unit inspector;
    CopyReport reports[2];
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail), kCorrupt);
    CHECK_EQ(reports[0].state, CopyState::kInvalid);
    CHECK_EQ(reports[1].state, CopyState::kInvalid);
    CHECK(contains(reports[0].why, "bad magic"));
    CHECK(contains(reports[1].why, "bad magic"));
    CHECK(contains(detail, "copy A"));
    inspector.close();
  }
  // The commit record damaged too: the report says so, and still describes both copies.
  const uint32_t bad_max = 0;
  REQUIRE(write_at(path, 12, &bad_max, 4));
  {
    Unit inspector;
    CopyReport reports[2];
    pmu::CommitReport commit;
    CHECK_ST(inspector.open_for_inspection(path, reports, &detail, &commit), kCorrupt);
    CHECK(commit.state == pmu::CommitState::kDamaged);
    CHECK(contains(commit.why, "checksum"));
    CHECK(contains(detail, "commit record"));
    CHECK(contains(reports[1].why, "bad magic"));
    inspector.close();
  }
}

TEST(unit_reused_after_inspection_opens_writable) {
  Unit unit;
  std::string path;
  REQUIRE(make_unit(unit, &path));
  REQUIRE(unit.close() == Status::kOk);
  CopyReport reports[2];
  std::string detail;
  REQUIRE(unit.open_for_inspection(path, reports, &detail) == Status::kOk);
  REQUIRE(unit.close() == Status::kOk);
  REQUIRE(unit.open(path, &detail) == Status::kOk);
  RegionEntry r = add(unit, "after", 10);
  REQUIRE(r.handle != 0);
  const uint8_t byte = 42;
  CHECK_ST(unit.write(r.handle, r.vbase, &byte, 1, kPlain), kOk);
  CHECK(unit.close() == Status::kOk);
}

// ---- the ATT encoding on its own -----------------------------------------------------------

TEST(encode_decode_round_trip) {
  Superblock sb;
  sb.max_regions = 4;
  sb.meta_copy_size = pmu::meta_copy_size(4);
  sb.data_offset = pmu::kHeaderSize + 2 * sb.meta_copy_size;
  sb.file_size = sb.data_offset + 16 * pmu::kPageSize;
  sb.clean_offset = sb.data_offset + 4 * pmu::kPageSize;
  sb.generation = 77;
  sb.next_handle = 10;
  sb.next_vaddr = pmu::kFirstVirtualAddress + (1 << 20);
  for (int i = 0; i < 16; i++) sb.uuid[i] = static_cast<uint8_t>(i * 7);
  RegionEntry e;
  e.handle = 9;
  e.vbase = pmu::kFirstVirtualAddress;
  e.length = 5000;
  e.extent = 8192;
  e.phys_offset = sb.data_offset + pmu::kPageSize;
  e.created_generation = 70;
  for (size_t i = 0; i < pmu::kKeySize; i++) e.key[i] = static_cast<uint8_t>(0xF0 + i);
  e.name = "round";
  e.owner = "trip";
  e.grants = {{"g", pmu::kRightWrite}};
  std::vector<uint8_t> copy(static_cast<size_t>(sb.meta_copy_size), 0xCC);
  pmu::encode_copy(sb, {e}, copy.data());

  Superblock out;
  std::vector<RegionEntry> entries;
  std::string why;
  REQUIRE(pmu::decode_copy(copy.data(), copy.size(), sb.file_size, &out, &entries, &why) ==
          CopyState::kValid);
  CHECK_EQ(out.generation, uint64_t{77});
  CHECK_EQ(out.next_handle, uint64_t{10});
  CHECK_EQ(out.next_vaddr, sb.next_vaddr);
  CHECK_EQ(out.data_offset, sb.data_offset);
  CHECK(std::memcmp(out.uuid, sb.uuid, 16) == 0);
  REQUIRE(entries.size() == 1);
  CHECK_EQ(entries[0].handle, 9u);
  CHECK_EQ(entries[0].created_generation, uint64_t{70});
  CHECK_EQ(entries[0].phys_offset, e.phys_offset);
  CHECK(std::memcmp(entries[0].key, e.key, pmu::kKeySize) == 0);
  CHECK_EQ(entries[0].grants.size(), size_t{1});
  CHECK_EQ(u64_at(copy, kGenerationField), uint64_t{77});

  // The file size is the caller's to give: a mismatch is a content error.
  CHECK_EQ(pmu::decode_copy(copy.data(), copy.size(), sb.file_size + pmu::kPageSize, &out, &entries, &why),
           CopyState::kInvalid);
  // Too little of it: truncated.
  CHECK_EQ(pmu::decode_copy(copy.data(), 100, sb.file_size, &out, &entries, &why), CopyState::kInvalid);
  CHECK(contains(why, "truncated"));
  CHECK_EQ(pmu::decode_copy(copy.data(), copy.size() - 1, sb.file_size, &out, &entries, &why),
           CopyState::kInvalid);
  // Any single flipped bit is caught, as torn or invalid, never valid.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 300; i++) {
    std::vector<uint8_t> damaged = copy;
    size_t at = static_cast<size_t>(rng() % (pmu::kSuperblockSize + 4 * pmu::kEntrySize));
    damaged[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    CHECK(pmu::decode_copy(damaged.data(), damaged.size(), sb.file_size, &out, &entries, &why) !=
          CopyState::kValid);
  }
  // The page's slack beyond the table is not covered and may hold anything.
  copy[copy.size() - 1] ^= 0xFF;
  CHECK_EQ(pmu::decode_copy(copy.data(), copy.size(), sb.file_size, &out, &entries, &why), CopyState::kValid);
}

// ---- main ----------------------------------------------------------------------------------

int main() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/pmu-core-test.XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    std::perror("mkdtemp");
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  g_dir = buffer.data();

  int passed = 0, failed = 0;
  for (const TestCase& test : all_tests()) {
    g_failures_in_test = 0;
    test.run();
    if (g_failures_in_test == 0) {
      passed++;
      std::printf("ok   %s\n", test.name);
    } else {
      failed++;
      std::printf("FAIL %s (%d)\n", test.name, g_failures_in_test);
    }
    std::fflush(stdout);
  }
  std::error_code ignored;
  std::filesystem::remove_all(g_dir, ignored);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
