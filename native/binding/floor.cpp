// Benchmark floor: the raw cost of memcpy (+ msync) into a MAP_SHARED mapping, timed in C with
// no N-API call per operation, on a file prepared exactly as pmu prepares its own
// (posix_fallocate, fsync + FADV_DONTNEED, MADV_RANDOM). bench/ compares pmu against this.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "args.h"
#include "floor.h"

namespace pmu_binding {

namespace {
uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

// measureFloor(path, fileSize, writeSize, iterations, msync: boolean) -> Float64Array of ns
Napi::Value MeasureFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t file_size, write_size, iterations;
  if (!info[0].IsString() || !ToU64(info[1], &file_size) || !ToU64(info[2], &write_size) ||
      !ToU64(info[3], &iterations) || write_size == 0 || write_size > file_size || file_size % 4096 != 0 ||
      iterations == 0 || iterations > 10000000)
    return ThrowStatus(env, pmu::Status::kInvalid, "measureFloor(path, fileSize, writeSize, iterations, msync)");
  bool do_msync = info[4].ToBoolean();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ThrowStatus(env, pmu::Status::kSys, std::string("open ") + path + ": " + std::strerror(errno));
  if (::posix_fallocate(fd, 0, static_cast<off_t>(file_size)) != 0) {
    ::close(fd);
    return ThrowStatus(env, pmu::Status::kSys, "posix_fallocate failed");
  }
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  void* m = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    ::close(fd);
    return ThrowStatus(env, pmu::Status::kSys, "mmap failed");
  }
  ::madvise(m, file_size, MADV_RANDOM);
  auto* map = static_cast<uint8_t*>(m);
  std::vector<uint8_t> source(write_size, 0x5a);
  uint64_t flush_length = (write_size + 4095) & ~4095ull;
  Napi::Float64Array samples = Napi::Float64Array::New(env, iterations);
  bool ok = true;
  for (uint64_t i = 0; i < iterations && ok; i++) {
    source[0] = static_cast<uint8_t>(i);
    uint64_t t0 = NowNs();
    std::memcpy(map, source.data(), write_size);
    if (do_msync && ::msync(map, flush_length, MS_SYNC) != 0) ok = false;
    samples[i] = static_cast<double>(NowNs() - t0);
  }
  ::munmap(m, file_size);
  ::close(fd);
  ::unlink(path.c_str());
  if (!ok) return ThrowStatus(env, pmu::Status::kIo, "msync failed");
  return samples;
}

}  // namespace pmu_binding
