// The bench's floor addon (bench/lib/floor-addon.js), not part of pmu: the raw cost of memcpy
// (+ msync) into a MAP_SHARED mapping, timed in C with no N-API call per operation, on a file
// prepared exactly as pmu prepares its own (posix_fallocate, fsync + FADV_DONTNEED,
// MADV_RANDOM). bench/ compares pmu against it. It makes its own syscalls, so it lives in its
// own target (binding.gyp here) and never in the production addon. Self-contained: no pmu core,
// no PmuError; errors are plain Errors (TypeError for arguments) naming the call that failed.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// A non-negative safe integer from a Number; false for anything else.
bool ToU64(const Napi::Value& value, uint64_t* out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d > 9007199254740991.0 || std::floor(d) != d) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// Throws an Error "<what> <path>: <strerror>" with `errno` and `syscall` set; returns undefined.
Napi::Value ThrowSys(Napi::Env env, const char* syscall, const std::string& path, int error) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " " + path + ": " + std::strerror(error));
  e.Set("errno", Napi::Number::New(env, error));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// measureFloor(path, fileSize, writeSize, iterations, msync: boolean) -> Float64Array of ns.
// Creates `path` (truncating it), times `iterations` copies of `writeSize` bytes to the start
// of its mapping (each followed by an msync(MS_SYNC) of the pages it covers when `msync`), then
// unmaps and removes the file. Runs on the calling thread: it blocks for as long as it measures.
Napi::Value MeasureFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t file_size, write_size, iterations;
  if (!info[0].IsString() || !ToU64(info[1], &file_size) || !ToU64(info[2], &write_size) ||
      !ToU64(info[3], &iterations) || write_size == 0 || write_size > file_size || file_size % 4096 != 0 ||
      iterations == 0 || iterations > 10000000) {
    Napi::TypeError::New(env, "measureFloor(path, fileSize: multiple of 4096, writeSize: 1..fileSize, iterations: 1..1e7, msync)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool do_msync = info[4].ToBoolean();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ThrowSys(env, "open", path, errno);
  // posix_fallocate returns the error number; it does not set errno.
  int error = ::posix_fallocate(fd, 0, static_cast<off_t>(file_size));
  if (error != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return ThrowSys(env, "posix_fallocate", path, error);
  }
  // Best effort, as pmu does it: a file left in large page-cache folios would make every msync
  // write back far more than the pages it covers (FLOORS trap 1).
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  void* m = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    error = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return ThrowSys(env, "mmap", path, error);
  }
  ::madvise(m, file_size, MADV_RANDOM);
  auto* map = static_cast<uint8_t*>(m);
  std::vector<uint8_t> source(write_size, 0x5a);
  uint64_t flush_length = (write_size + 4095) & ~4095ull;
  Napi::Float64Array samples = Napi::Float64Array::New(env, iterations);
  int msync_error = 0;
  for (uint64_t i = 0; i < iterations && msync_error == 0; i++) {
    source[0] = static_cast<uint8_t>(i);
    uint64_t t0 = NowNs();
    std::memcpy(map, source.data(), write_size);
    if (do_msync && ::msync(map, flush_length, MS_SYNC) != 0) msync_error = errno;
    samples[i] = static_cast<double>(NowNs() - t0);
  }
  ::munmap(m, file_size);
  ::close(fd);
  ::unlink(path.c_str());
  if (msync_error != 0) return ThrowSys(env, "msync", path, msync_error);
  return samples;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("measureFloor", Napi::Function::New(env, MeasureFloor));
  return exports;
}

}  // namespace

NODE_API_MODULE(pmu_floor, Init)
