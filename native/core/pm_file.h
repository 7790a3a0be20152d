// The PMU file: one regular file, preallocated, exclusively locked and mapped MAP_SHARED.
// Knows nothing of regions; it hands out the mapping and flushes page-aligned ranges of it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "status.h"

namespace pmu {

constexpr uint64_t kPageSize = 4096;

// Progress of a long zero-fill: bytes done out of total, called on the thread doing the work
// after each durable batch. May be empty.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

class PmFile {
 public:
  PmFile() = default;
  ~PmFile();
  PmFile(const PmFile&) = delete;
  PmFile& operator=(const PmFile&) = delete;

  // Opens an existing file read-write under an exclusive lock (ELOCKED if another open file
  // description holds it) and maps it. A sparse file has its holes allocated first (ENOSPC if
  // the file system cannot): a write fault on a hole of a full file system is a SIGBUS.
  // An fsync error at open is EIO. `detail` receives a sentence on failure.
  Status open(const std::string& path, std::string* detail);
  // Opens without a lock, mapped read-only: for offline inspection.
  Status open_read_only(const std::string& path, std::string* detail);
  // Flushes the whole mapping, unmaps, closes and releases the lock. EIO if that flush or any
  // earlier one failed: what was written since the last good flush may not be on disk.
  Status close();

  // msync(MS_SYNC) of the pages covering [offset, offset + length). Any failure is final:
  // the kernel may already have dropped the dirty pages, so the file stops accepting writes.
  Status flush(uint64_t offset, uint64_t length);
  // Writes real zeros over a range (pwrite in modest chunks, fdatasync, then the range is
  // dropped from the page cache), so a new region never sees a deleted region's bytes and its
  // blocks stay allocated and written: no hole, no unwritten extent. An fdatasync error is
  // final, like a failed flush.
  Status zero_range(uint64_t offset, uint64_t length, std::string* detail);

  // Asks the kernel to read a range into the page cache now, asynchronously and in 4 KiB
  // folios (readahead allocates the smallest folio size), so the first write to each page is a
  // minor fault instead of a synchronous read from the device. Advisory: never fails.
  void prefetch(uint64_t offset, uint64_t length);
  // Copies `length` bytes to [offset, offset + length) of the file (bounds checked here): the
  // whole pages inside that are not in the page cache (mincore) by pwrite, one page per call;
  // the others, and the partial ends, by memcpy into the mapping. For large writes: a page that is not in the page cache is then not read
  // from the device first (a full-page write needs no read), and no page is faulted into the
  // mapping one at a time; one page per call keeps the page cache in 4 KiB folios (a large
  // pwrite would make large ones, FLOORS.md's first trap). kIo, and the file failed, if a
  // pwrite fails: nothing of the write is acknowledged.
  Status copy_in(uint64_t offset, const uint8_t* data, uint64_t length);

  // Makes a file of `size` bytes, every block allocated (posix_fallocate, so a full disk fails
  // here with ENOSPC) and then written with zeros (so no first write pays to convert an
  // unwritten extent), whose first bytes are `header`, atomically: built under a temporary name
  // and linked into place, so a crash never leaves a half-made file at `path`. EEXIST if
  // `path` exists. `progress` follows the zero-fill.
  static Status create(const std::string& path, uint64_t size, const uint8_t* header,
                       size_t header_length, std::string* detail, const Progress& progress = nullptr);

  bool is_open() const { return map_ != nullptr; }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  bool read_only() const { return read_only_; }
  uint8_t* data() const { return map_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  Status map(int fd, const std::string& path, bool writable, std::string* detail);

  int fd_ = -1;
  uint8_t* map_ = nullptr;
  uint64_t size_ = 0;
  bool read_only_ = false;
  std::atomic<bool> failed_{false};
  // msyncs running now (any thread): a region's zero-fill gives way to them (zero_range).
  std::atomic<int> flushes_in_flight_{0};
  std::string path_;
};

}  // namespace pmu
