#include "pm_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace pmu {

namespace {

constexpr size_t kZeroChunk = 1 << 20;      // one pwrite
constexpr uint64_t kZeroBatch = 64ull << 20;  // between fdatasyncs: bounds the dirty page cache
// For a region's create, which runs while the unit serves: a durable write's msync queues
// behind at most this much of the zero-fill's write-back on the device.
constexpr uint64_t kZeroRangeBatch = 1ull << 20;
constexpr int kYieldMaxPauses = 40;  // 2 ms of 50 µs pauses a batch at most
const uint8_t kZeros[kZeroChunk] = {};

std::string errno_text(const char* syscall, const std::string& path, int err) {
  return std::string(syscall) + " " + path + ": " + std::strerror(err);
}

// pwrite that retries short writes and EINTR.
bool write_all(int fd, const uint8_t* p, size_t n, off_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (w == 0) {
      errno = EIO;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return true;
}

struct SysError {
  const char* call = "";
  int err = 0;
};

// Writes zeros over [offset, offset + length) in batches: pwrite in 1 MiB chunks, fdatasync,
// then POSIX_FADV_DONTNEED of the batch. Real zeros turn unwritten extents into written blocks
// (a first write-back then costs what a rewrite does: FLOORS trap 5); dropping the batch from
// the page cache removes the large folios that big pwrites leave, which would otherwise turn
// a later 4 KiB msync into a write-back of up to 2 MiB (trap 1). Folios the mapping already
// holds are kept by the kernel, and those were faulted in one page at a time (MADV_RANDOM).
// With `yield_to` (a region's create while the unit serves): before each batch, waits while a
// durable flush is in flight (up to kYieldMax a batch, so the create always progresses), so a
// client's msync does not queue behind the zero-fill's write-back on the device.
bool write_zeros(int fd, uint64_t offset, uint64_t length, const Progress& progress, SysError* error,
                 uint64_t batch_bytes = kZeroBatch, const std::atomic<int>* yield_to = nullptr) {
  uint64_t done = 0;
  while (done < length) {
    if (yield_to != nullptr) {
      const timespec pause{0, 50 * 1000};  // 50 µs
      for (int waited = 0; yield_to->load(std::memory_order_acquire) > 0 && waited < kYieldMaxPauses; waited++) ::nanosleep(&pause, nullptr);
    }
    uint64_t batch = length - done < batch_bytes ? length - done : batch_bytes;
    uint64_t batch_start = offset + done;
    for (uint64_t at = 0; at < batch; at += kZeroChunk) {
      size_t n = static_cast<size_t>(batch - at < kZeroChunk ? batch - at : kZeroChunk);
      if (!write_all(fd, kZeros, n, static_cast<off_t>(batch_start + at))) {
        *error = {"pwrite", errno};
        return false;
      }
    }
    if (::fdatasync(fd) != 0) {
      *error = {"fdatasync", errno};
      return false;
    }
    // Advisory: a failure leaves folios in the cache, which costs speed, never data.
    (void)::posix_fadvise(fd, static_cast<off_t>(batch_start), static_cast<off_t>(batch), POSIX_FADV_DONTNEED);
    done += batch;
    if (progress) progress(done, length);
  }
  return true;
}

bool is_no_space(int err) { return err == ENOSPC || err == EDQUOT; }

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Every block must exist before the file is mapped: a write fault on a hole needs a block, and
// on a full file system the kernel answers that with SIGBUS. SEEK_HOLE finds holes (on ext4 it
// also reports unwritten extents with nothing cached, which are allocated); fallocate then
// allocates only what is missing, or fails cleanly with ENOSPC.
Status ensure_allocated(int fd, const std::string& path, std::string* detail) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *detail = errno_text("fstat", path, errno);
    return Status::kSys;
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) return Status::kOk;  // map() explains these
  off_t hole = ::lseek(fd, 0, SEEK_HOLE);
  if (hole >= st.st_size) return Status::kOk;
  if (hole < 0 && errno != EINVAL && errno != ENXIO) {
    *detail = errno_text("lseek(SEEK_HOLE)", path, errno);
    return Status::kSys;
  }
  if (::fallocate(fd, 0, 0, st.st_size) == 0) return Status::kOk;
  int err = errno;
  std::string where = hole >= 0 ? " (the first at byte " + std::to_string(hole) + ")" : "";
  if (is_no_space(err)) {
    *detail = path + " has unallocated holes" + where +
              " and its file system has no room to allocate them (fallocate: " + std::strerror(err) +
              "); free space on that file system and open it again. pmu never maps a hole: a write "
              "into one on a full disk would kill the process with SIGBUS";
    return Status::kNoSpace;
  }
  if (err == EOPNOTSUPP) {
    *detail = path + " has unallocated holes" + where +
              " and its file system cannot allocate them in place; copy it with `cp --sparse=never` to a "
              "file system that supports fallocate (ext4, xfs)";
    return Status::kInvalid;
  }
  *detail = errno_text("fallocate", path, err) + ": could not allocate the file's holes" + where;
  return err == EIO ? Status::kIo : Status::kSys;
}

}  // namespace

PmFile::~PmFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

Status PmFile::create(const std::string& path, uint64_t size, const uint8_t* header,
                      size_t header_length, std::string* detail, const Progress& progress) {
  if (size < header_length || size % kPageSize != 0) {
    *detail = "file size must be a multiple of 4096 and hold the metadata";
    return Status::kInvalid;
  }
  std::string tmp = path + ".creating." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    *detail = errno_text("open", tmp, err);
    if (!is_no_space(err)) return Status::kSys;
    *detail += ": the file system is full; free space there and create the unit again";
    return Status::kNoSpace;
  }
  // Allocate every block first, so a full disk fails now, fast, before any zero is written.
  SysError failure;
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err != 0) failure = {"posix_fallocate", err};
  if (err == 0 && !write_zeros(fd, 0, size, progress, &failure)) err = failure.err;
  if (err == 0 && !write_all(fd, header, header_length, 0)) failure = {"pwrite", err = errno};
  if (err == 0 && ::fsync(fd) != 0) failure = {"fsync", err = errno};
  if (err == 0) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // advisory (see write_zeros)
  if (::close(fd) != 0 && err == 0) failure = {"close", err = errno};
  if (err != 0) {
    ::unlink(tmp.c_str());
    *detail = errno_text(failure.call, tmp, err);
    if (is_no_space(err)) {
      *detail += ": the file system cannot hold a " + std::to_string(size) +
                 "-byte unit; free space there or choose a smaller size";
      return Status::kNoSpace;
    }
    return err == EIO ? Status::kIo : Status::kSys;
  }
  // link() fails if the name exists, unlike rename(): two creators cannot replace each other.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    int link_err = errno;
    ::unlink(tmp.c_str());
    *detail = errno_text("link", path, link_err);
    return link_err == EEXIST ? Status::kExists : is_no_space(link_err) ? Status::kNoSpace : Status::kSys;
  }
  ::unlink(tmp.c_str());
  // The new name is durable only once its directory is: a failure here is reported, and the
  // file (complete, but perhaps not yet durably named) is removed so a retry starts clean.
  std::string dir_path = dir_of(path);
  int dir = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const char* dir_call = "open";
  if (dir >= 0) {
    dir_call = "fsync";
    if (::fsync(dir) == 0) dir_call = nullptr;
  }
  if (dir_call != nullptr) {
    int dir_err = errno;
    if (dir >= 0) ::close(dir);
    ::unlink(path.c_str());
    *detail = errno_text(dir_call, dir_path, dir_err) + ": the directory entry of " + path +
              " could not be made durable; check the disk and create the unit again";
    return dir_err == EIO ? Status::kIo : Status::kSys;
  }
  ::close(dir);
  return Status::kOk;
}

Status PmFile::open(const std::string& path, std::string* detail) {
  if (is_open()) return Status::kInvalid;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    *detail = errno_text("open", path, err);
    return err == ENOENT ? Status::kNotFound : Status::kSys;
  }
  // flock belongs to the open file description, so a second open() in this same process
  // is refused too: two units over one file would corrupt the ATT.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      *detail = path + " is open in another process (or another unit in this one); close it first";
      return Status::kLocked;
    }
    *detail = errno_text("flock", path, err);
    return Status::kSys;
  }
  Status s = ensure_allocated(fd, path, detail);
  if (s != Status::kOk) {
    ::close(fd);
    return s;
  }
  read_only_ = false;  // this object may have been opened read-only before
  return map(fd, path, true, detail);
}

Status PmFile::open_read_only(const std::string& path, std::string* detail) {
  if (is_open()) return Status::kInvalid;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    *detail = errno_text("open", path, err);
    return err == ENOENT ? Status::kNotFound : Status::kSys;
  }
  // No allocation check: a read fault on a hole maps the zero page, it never needs a block.
  read_only_ = true;
  return map(fd, path, false, detail);
}

Status PmFile::map(int fd, const std::string& path, bool writable, std::string* detail) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *detail = errno_text("fstat", path, errno);
    ::close(fd);
    return Status::kSys;
  }
  if (!S_ISREG(st.st_mode)) {
    *detail = path + " is not a regular file";
    ::close(fd);
    return Status::kInvalid;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kPageSize) {
    *detail = path + " is " + std::to_string(size) + " bytes: too short to be a PMU file (truncated?)";
    ::close(fd);
    return Status::kCorrupt;
  }
  if (writable) {
    // Whatever an earlier process left dirty (or a failed write-back it never learnt of) must
    // be durable before this one acknowledges anything built on it: an error here is EIO.
    if (::fsync(fd) != 0) {
      *detail = errno_text("fsync", path, errno) +
                ": data written before this open may not be on disk; check the disk (dmesg) and the file "
                "(`pmu inspect --verify`) before using it";
      ::close(fd);
      return Status::kIo;
    }
    // Drop folios an earlier process or the format step left in the page cache: they survive
    // a new mapping and would turn a 4 KiB msync into a write-back of up to 2 MiB. Advisory.
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* m = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    *detail = errno_text("mmap", path, errno);
    ::close(fd);
    return Status::kSys;
  }
  // Random access keeps page-cache folios small, so each flush writes back only what changed.
  // Advisory: a failure costs speed, never data.
  (void)::madvise(m, size, MADV_RANDOM);
  fd_ = fd;
  map_ = static_cast<uint8_t*>(m);
  size_ = size;
  path_ = path;
  failed_.store(false, std::memory_order_release);
  return Status::kOk;
}

Status PmFile::flush(uint64_t offset, uint64_t length) {
  if (!is_open()) return Status::kClosed;
  if (failed()) return Status::kIo;
  if (read_only_) return Status::kInvalid;
  if (offset > size_ || length > size_ - offset) return Status::kBounds;
  if (length == 0) return Status::kOk;
  uint64_t start = offset & ~(kPageSize - 1);
  uint64_t end = offset + length;  // <= size_, which is page-aligned, so rounding up stays inside
  end = (end + kPageSize - 1) & ~(kPageSize - 1);
  if (end > size_) end = size_;
  flushes_in_flight_.fetch_add(1, std::memory_order_acq_rel);
  const int rc = ::msync(map_ + start, end - start, MS_SYNC);
  flushes_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  if (rc != 0) {
    failed_.store(true, std::memory_order_release);
    return Status::kIo;
  }
  return Status::kOk;
}

Status PmFile::zero_range(uint64_t offset, uint64_t length, std::string* detail) {
  if (!is_open()) return Status::kClosed;
  if (failed()) return Status::kIo;
  if (read_only_) return Status::kInvalid;
  if (offset > size_ || length > size_ - offset) return Status::kBounds;
  if (length == 0) return Status::kOk;
  SysError failure;
  if (write_zeros(fd_, offset, length, nullptr, &failure, kZeroRangeBatch, &flushes_in_flight_)) return Status::kOk;
  *detail = errno_text(failure.call, path_, failure.err) + " while zeroing " + std::to_string(length) +
            " bytes at offset " + std::to_string(offset);
  // A pwrite over allocated blocks that finds no space (a copy-on-write file system) touched no
  // region and no table: refused, nothing else changes.
  if (std::strcmp(failure.call, "pwrite") == 0 && is_no_space(failure.err)) {
    *detail += ": the file system is full; free space on it and try again";
    return Status::kNoSpace;
  }
  // fdatasync reports write-back errors for the whole file: pages of other regions may be
  // lost, so this is final, like a failed msync.
  failed_.store(true, std::memory_order_release);
  *detail += ": the unit no longer accepts writes; close it and check the disk";
  return Status::kIo;
}

void PmFile::prefetch(uint64_t offset, uint64_t length) {
  if (!is_open() || offset > size_ || length > size_ - offset) return;
  // The kernel clamps one WILLNEED to its readahead window: ask in 2 MiB steps.
  constexpr uint64_t kStep = 2ull << 20;
  for (uint64_t at = 0; at < length; at += kStep) {
    uint64_t n = length - at < kStep ? length - at : kStep;
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset + at), static_cast<off_t>(n), POSIX_FADV_WILLNEED);
  }
}

Status PmFile::copy_in(uint64_t offset, const uint8_t* data, uint64_t length) {
  if (!is_open()) return Status::kClosed;
  if (read_only_) return Status::kInvalid;
  if (offset > size_ || length > size_ - offset) return Status::kBounds;
  const uint64_t end = offset + length;
  const uint64_t first_page = (offset + kPageSize - 1) & ~(kPageSize - 1);
  const uint64_t last_page = end & ~(kPageSize - 1);
  if (first_page >= last_page) {
    std::memcpy(map_ + offset, data, length);
    return Status::kOk;
  }
  // Which whole pages are in the page cache: those are copied through the mapping (a hot
  // rewrite stays a memcpy); the others by pwrite. If mincore fails, everything is copied.
  const uint64_t pages = (last_page - first_page) / kPageSize;
  std::vector<unsigned char> resident(static_cast<size_t>(pages), 1);
  if (::mincore(map_ + first_page, static_cast<size_t>(last_page - first_page), resident.data()) != 0) {
    std::fill(resident.begin(), resident.end(), static_cast<unsigned char>(1));
  }
  std::memcpy(map_ + offset, data, first_page - offset);
  uint64_t page = 0;
  while (page < pages) {
    const bool in_cache = (resident[page] & 1) != 0;
    uint64_t run = page;
    while (run < pages && ((resident[run] & 1) != 0) == in_cache) run++;
    const uint64_t at = first_page + page * kPageSize;
    const uint64_t bytes = (run - page) * kPageSize;
    if (in_cache) {
      std::memcpy(map_ + at, data + (at - offset), bytes);
    } else {
      for (uint64_t p = at; p < at + bytes; p += kPageSize) {
        if (!write_all(fd_, data + (p - offset), kPageSize, static_cast<off_t>(p))) {
          failed_.store(true, std::memory_order_release);
          return Status::kIo;
        }
      }
    }
    page = run;
  }
  std::memcpy(map_ + last_page, data + (last_page - offset), end - last_page);
  return Status::kOk;
}

Status PmFile::close() {
  if (!is_open()) return Status::kClosed;
  Status s = Status::kOk;
  if (!read_only_) {
    if (failed()) {
      s = Status::kIo;  // an earlier flush failed: writes since the last good one may be lost
    } else if (::msync(map_, size_, MS_SYNC) != 0) {
      failed_.store(true, std::memory_order_release);
      s = Status::kIo;
    }
  }
  ::munmap(map_, size_);
  map_ = nullptr;
  ::close(fd_);  // releases the flock; durability was settled by the msync above
  fd_ = -1;
  return s;
}

}  // namespace pmu
