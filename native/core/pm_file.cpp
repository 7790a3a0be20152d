#include "pm_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pmu {

namespace {

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
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return true;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

PmFile::~PmFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

Status PmFile::create(const std::string& path, uint64_t size, const uint8_t* header,
                      size_t header_length, std::string* detail) {
  if (size < header_length || size % kPageSize != 0) {
    *detail = "file size must be a multiple of 4096 and hold the metadata";
    return Status::kInvalid;
  }
  std::string tmp = path + ".creating." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *detail = errno_text("open", tmp, errno);
    return Status::kSys;
  }
  // Preallocate every block now: allocating at msync time doubles a flush's cost.
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  const char* failed_call = "posix_fallocate";
  if (err == 0 && !write_all(fd, header, header_length, 0)) {
    err = errno;
    failed_call = "pwrite";
  }
  if (err == 0 && ::fsync(fd) != 0) {
    err = errno;
    failed_call = "fsync";
  }
  ::close(fd);
  if (err != 0) {
    ::unlink(tmp.c_str());
    *detail = errno_text(failed_call, tmp, err);
    return err == ENOSPC ? Status::kNoSpace : Status::kSys;
  }
  // link() fails if the name exists, unlike rename(): two creators cannot replace each other.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    int link_err = errno;
    ::unlink(tmp.c_str());
    *detail = errno_text("link", path, link_err);
    return link_err == EEXIST ? Status::kExists : Status::kSys;
  }
  ::unlink(tmp.c_str());
  int dir = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
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
    // Drop folios an earlier process or the format step left in the page cache: they survive
    // a new mapping and would turn a 4 KiB msync into a write-back of up to 2 MiB.
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  }
  int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* m = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    *detail = errno_text("mmap", path, errno);
    ::close(fd);
    return Status::kSys;
  }
  // Random access keeps page-cache folios small, so each flush writes back only what changed.
  ::madvise(m, size, MADV_RANDOM);
  fd_ = fd;
  map_ = static_cast<uint8_t*>(m);
  size_ = size;
  path_ = path;
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
  if (::msync(map_ + start, end - start, MS_SYNC) != 0) {
    failed_.store(true, std::memory_order_release);
    return Status::kIo;
  }
  return Status::kOk;
}

Status PmFile::zero_range(uint64_t offset, uint64_t length) {
  if (!is_open()) return Status::kClosed;
  if (failed()) return Status::kIo;
  if (read_only_) return Status::kInvalid;  // the fallback below would write a PROT_READ map
  if (offset > size_ || length > size_ - offset) return Status::kBounds;
  if (length == 0) return Status::kOk;
  off_t off = static_cast<off_t>(offset);
  off_t len = static_cast<off_t>(length);
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0 &&
      ::posix_fallocate(fd_, off, len) == 0) {
    return Status::kOk;
  }
  // A file system without hole punching: write the zeros through the mapping.
  std::memset(map_ + offset, 0, length);
  return flush(offset, length);
}

Status PmFile::close() {
  if (!is_open()) return Status::kClosed;
  Status s = Status::kOk;
  if (!read_only_ && !failed()) {
    if (::msync(map_, size_, MS_SYNC) != 0) {
      failed_.store(true, std::memory_order_release);
      s = Status::kIo;
    }
  }
  ::munmap(map_, size_);
  map_ = nullptr;
  ::close(fd_);  // releases the flock
  fd_ = -1;
  return s;
}

}  // namespace pmu
