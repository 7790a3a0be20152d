// A persistent memory unit: the PMU file, its ATT, and the region operations on top.
// Not thread-safe, except flush_span(), which may run on a worker thread while the owning
// thread keeps writing (see the binding's FlushWorker). Every address is checked here,
// whatever the caller checked before.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "att.h"
#include "pm_file.h"
#include "status.h"

namespace pmu {

struct UnitInfo {
  std::string path;
  uint64_t file_size = 0;
  uint64_t data_offset = 0;
  uint64_t generation = 0;
  uint32_t max_regions = 0;
  uint32_t region_count = 0;
  uint64_t free_bytes = 0;
  uint64_t largest_free_extent = 0;
  uint8_t uuid[16] = {};
};

// Where a copy stands, for `pmu inspect`.
struct CopyReport {
  CopyState state = CopyState::kInvalid;
  uint64_t generation = 0;
  std::string why;
};

// Where the commit record stands, for `pmu inspect`.
struct CommitReport {
  CommitState state = CommitState::kDamaged;
  uint64_t generation = 0;  // the last acknowledged table update, when valid
  std::string why;
};

// A half-open range of file offsets still to be flushed by the next group flush.
struct FlushSpan {
  uint64_t start = 0;
  uint64_t end = 0;
  bool empty() const { return end <= start; }
};

// The most one checksum request covers: 16 MiB is ~2-4 ms of one pool thread at SSE4.2 speed
// (longer when the pages must be read in), short enough that a group flush queued behind it on
// the libuv pool is not held up for long. A caller with more splits it (and may combine the
// pieces' CRCs, or compare them piece by piece).
constexpr uint64_t kMaxChecksumBytes = 16ull << 20;

// A translated file range whose CRC32C a worker thread may compute.
struct ChecksumSpan {
  uint64_t offset = 0;
  uint64_t length = 0;
};

class Unit {
 public:
  // Creates and formats a new file (EEXIST if present). size is rounded up to a page. The
  // whole file is written with zeros; `progress` follows that.
  static Status create(const std::string& path, uint64_t size, uint32_t max_regions,
                       std::string* detail, const Progress& progress = nullptr);

  // ECORRUPT when the copy holding the last acknowledged update is damaged (never a silent
  // fall-back to the older copy); a torn update that was never acknowledged is rolled back and
  // recovery_note() says so.
  Status open(const std::string& path, std::string* detail);
  // Opens read-only and unlocked; fills the reports for both copies (and the commit record,
  // when `commit` is given) even when it fails.
  Status open_for_inspection(const std::string& path, CopyReport reports[2], std::string* detail,
                             CommitReport* commit = nullptr);
  Status close();
  bool is_open() const { return file_.is_open(); }
  bool failed() const { return file_.failed(); }

  UnitInfo info() const;
  const std::vector<RegionEntry>& regions() const { return entries_; }
  // Non-empty when open() found a table update that was never acknowledged (torn, or written
  // but not committed) and opened the last acknowledged one, or found the older copy torn.
  const std::string& recovery_note() const { return recovery_note_; }
  const RegionEntry* find_by_name(const std::string& name) const;
  const RegionEntry* find_by_handle(uint32_t handle) const;

  // PMM operations: each commits a new ATT copy (crash-atomic) before it returns.
  Status create_region(const std::string& name, uint64_t length, const std::string& owner,
                       const RegionEntry** created, std::string* detail);
  // The same create in three steps, so the zero-fill (seconds per GiB in space a deleted
  // region used) can run off the owning thread. begin (owning thread): every check, then the
  // extent and the name are reserved (no other create takes them; other table updates go on).
  // zero (any thread): writes zeros over the part of the extent that may hold old bytes; it
  // touches no table state. finish (owning thread): commits the table, which names the region
  // only now (a crash before leaves the extent free), and releases the reservation; abort
  // releases it without a commit. Every begin that succeeds is followed by finish or abort.
  struct CreateReservation {
    uint64_t id = 0;
    std::string name;
    std::string owner;
    uint64_t length = 0;
    uint64_t phys = 0;
    uint64_t extent = 0;
    uint64_t zero_end = 0;  // [phys, zero_end) needs zeroing (empty when zero_end <= phys)
  };
  Status begin_create_region(const std::string& name, uint64_t length, const std::string& owner,
                             CreateReservation* reservation, std::string* detail);
  Status zero_for_create(const CreateReservation& reservation, std::string* detail);
  Status finish_create_region(const CreateReservation& reservation, const RegionEntry** created,
                              std::string* detail);
  void abort_create_region(const CreateReservation& reservation);
  // Creates in flight (begun, not yet finished or aborted).
  size_t creates_in_flight() const { return reservations_.size(); }
  Status delete_region(uint32_t handle);
  Status set_grants(uint32_t handle, const std::vector<Grant>& grants, std::string* detail);

  // (handle, virtual address, length) -> file offset. EBOUNDS unless the whole range lies
  // inside the region; ENOENT for an unknown handle. Never clamps.
  Status translate(uint32_t handle, uint64_t vaddr, uint64_t length, uint64_t* offset) const;

  // Copies data into the region. With `fence`, first checks that the 8-byte word at
  // fence_vaddr (same region) still holds fence_epoch: EFENCED if another writer bumped it.
  // sync: msync the written pages before returning. Otherwise, when join_group is set, the
  // range joins the span that the next flush_span() covers.
  struct WriteOptions {
    bool sync = false;
    bool join_group = false;
    bool fence = false;
    uint64_t fence_vaddr = 0;
    uint64_t fence_epoch = 0;
  };
  Status write(uint32_t handle, uint64_t vaddr, const uint8_t* data, uint64_t length,
               const WriteOptions& options);
  Status read(uint32_t handle, uint64_t vaddr, uint8_t* out, uint64_t length) const;
  Status flush(uint32_t handle, uint64_t vaddr, uint64_t length);
  // Atomic 8-byte compare-and-swap at an 8-aligned region offset; *previous gets the old value.
  Status compare_and_swap(uint32_t handle, uint64_t vaddr, uint64_t expected, uint64_t desired,
                          uint64_t* previous, bool sync);

  // Adds a region range to the span the next flush_span() covers, without writing it.
  Status mark_for_flush(uint32_t handle, uint64_t vaddr, uint64_t length);
  // Group commit: take the pending span (owning thread), then flush it (any thread).
  FlushSpan take_pending_span();
  Status flush_span(const FlushSpan& span) { return file_.flush(span.start, span.end - span.start); }

  // Scrub: (owning thread) checks and translates a range of at most kMaxChecksumBytes (EINVAL
  // beyond, EBOUNDS outside the region); then (any thread) its CRC32C. The second step reads
  // the mapping, whose address and size never change while the unit is open; the caller keeps
  // the unit open until it returns (the binding's ChecksumWorker counts itself in flight). A
  // write on the owning thread meanwhile may or may not be seen, in part: the value then
  // describes no single moment, and callers (resync, scrub) treat a match as a match only when
  // their own argument rules such races out.
  Status prepare_checksum(uint32_t handle, uint64_t vaddr, uint64_t length, ChecksumSpan* span) const;
  uint32_t checksum_span(const ChecksumSpan& span) const;

 private:
  Status load(std::string* detail, CopyReport* reports, CommitReport* commit);
  Status commit(std::vector<RegionEntry> next_entries, Superblock next_sb);
  void extend_pending(uint64_t offset, uint64_t length);
  bool find_free_extent(uint64_t bytes, uint64_t* offset, uint64_t* largest) const;
  void rebuild_index();

  PmFile file_;
  Superblock sb_;
  int current_copy_ = 0;  // the copy holding sb_.generation; commit writes the other
  std::vector<RegionEntry> entries_;
  std::unordered_map<uint32_t, size_t> by_handle_;
  FlushSpan pending_;
  std::string recovery_note_;
  std::vector<CreateReservation> reservations_;
  uint64_t next_reservation_ = 1;
};

}  // namespace pmu
