#include "unit.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "crc32c.h"

namespace pmu {

namespace {

bool fill_random(uint8_t* out, size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(out, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

uint64_t round_up_page(uint64_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

constexpr uint64_t kPrefetchMax = 64ull << 20;
constexpr uint64_t kCopyInMin = 1ull << 20;  // writes this large go in by pwrite (PmFile::copy_in)  // of a new region, read into the page cache at once

}  // namespace

Status Unit::create(const std::string& path, uint64_t size, uint32_t max_regions,
                    std::string* detail, const Progress& progress) {
  if (max_regions == 0 || max_regions > kMaxMaxRegions) {
    *detail = "maxRegions must be between 1 and " + std::to_string(kMaxMaxRegions);
    return Status::kInvalid;
  }
  if (size == 0 || size > (1ull << 50)) {
    *detail = "size must be between 1 byte and 1 PiB";
    return Status::kInvalid;
  }
  Superblock sb;
  sb.max_regions = max_regions;
  sb.meta_copy_size = meta_copy_size(max_regions);
  sb.data_offset = kHeaderSize + 2 * sb.meta_copy_size;
  sb.clean_offset = sb.data_offset;
  sb.file_size = round_up_page(size);
  if (sb.file_size <= sb.data_offset) {
    *detail = "size " + std::to_string(size) + " leaves no room for data: the metadata of " +
              std::to_string(max_regions) + " regions takes " + std::to_string(sb.data_offset) + " bytes";
    return Status::kInvalid;
  }
  if (!fill_random(sb.uuid, sizeof sb.uuid)) {
    *detail = "getrandom failed";
    return Status::kSys;
  }
  // Copy A holds generation 1 and the commit record names it; copy B stays zero until the
  // first update lands there.
  sb.generation = 1;
  std::vector<uint8_t> header(static_cast<size_t>(kHeaderSize + sb.meta_copy_size));
  encode_copy(sb, {}, header.data() + kHeaderSize);
  CommitRecord record;
  record.max_regions = max_regions;
  std::memcpy(record.uuid, sb.uuid, 16);
  record.generation = 1;
  record.copy_crc = copy_checksum(header.data() + kHeaderSize);
  encode_commit(record, header.data());
  return PmFile::create(path, sb.file_size, header.data(), header.size(), detail, progress);
}

Status Unit::open(const std::string& path, std::string* detail) {
  Status s = file_.open(path, detail);
  if (s != Status::kOk) return s;
  s = load(detail, nullptr, nullptr);
  if (s != Status::kOk) {
    file_.close();
    return s;
  }
  // The next table update overwrites the spare copy. Open dropped the file from the page cache
  // and load() may not have read that copy (copy B of a new file is never read), so each of its
  // pages would cost the first update a synchronous 4 KiB read: 25 ms for a 2 MiB table. Read
  // in now, in the background, in 4 KiB folios (prefetch()), so no large folio comes back.
  file_.prefetch(copy_offset(1 - current_copy_, sb_.meta_copy_size), sb_.meta_copy_size);
  return Status::kOk;
}

Status Unit::open_for_inspection(const std::string& path, CopyReport reports[2], std::string* detail,
                                 CommitReport* commit) {
  Status s = file_.open_read_only(path, detail);
  if (s != Status::kOk) return s;
  return load(detail, reports, commit);
}

Status Unit::load(std::string* detail, CopyReport* reports, CommitReport* commit_report) {
  uint8_t* base = file_.data();
  uint64_t size = file_.size();
  const std::string& path = file_.path();
  const std::string advice = ". Run `pmu inspect --verify " + path +
                             "` for a full report, then restore the unit from its mirror or a backup";
  const char* names[2] = {"A", "B"};

  CommitRecord record;
  std::string commit_why;
  CommitState commit_state = decode_commit(base, size, &record, &commit_why);
  if (commit_report != nullptr) {
    commit_report->state = commit_state;
    commit_report->generation = commit_state == CommitState::kValid ? record.generation : 0;
    commit_report->why = commit_why;
  }
  if (commit_state == CommitState::kOldFormat || commit_state == CommitState::kUnsupported) {
    *detail = path + ": " + commit_why;
    return Status::kInvalid;
  }

  // Where the copies lie follows from the commit record's geometry; if it is damaged, from
  // copy A's (still only to report on them: without the record no copy can be trusted).
  uint32_t max_regions = record.max_regions;
  if (commit_state != CommitState::kValid) {
    max_regions = 0;
    if (size >= kHeaderSize + kSuperblockSize) std::memcpy(&max_regions, base + kHeaderSize + 48, 4);
    if (max_regions == 0 || max_regions > kMaxMaxRegions) max_regions = kDefaultMaxRegions;
  }
  const uint64_t copy_size = meta_copy_size(max_regions);
  Superblock sbs[2];
  std::vector<RegionEntry> tables[2];
  CopyState states[2] = {CopyState::kInvalid, CopyState::kInvalid};
  std::string whys[2];
  for (int i = 0; i < 2; i++) {
    uint64_t offset = copy_offset(i, copy_size);
    if (offset >= size) {
      whys[i] = "the file ends before this copy (truncated)";
      continue;
    }
    states[i] = decode_copy(base + offset, size - offset, size, &sbs[i], &tables[i], &whys[i]);
    if (states[i] == CopyState::kValid && sbs[i].meta_copy_size != copy_size) {
      states[i] = CopyState::kInvalid;
      whys[i] = "this copy's geometry disagrees with the commit record's";
    }
  }
  if (reports != nullptr) {
    for (int i = 0; i < 2; i++) {
      reports[i].state = states[i];
      reports[i].generation = states[i] == CopyState::kValid ? sbs[i].generation : 0;
      reports[i].why = whys[i];
    }
  }
  auto describe = [&]() {
    return std::string("copy A: ") + (states[0] == CopyState::kValid ? "valid" : whys[0]) +
           "; copy B: " + (states[1] == CopyState::kValid ? "valid" : whys[1]);
  };
  if (commit_state != CommitState::kValid) {
    *detail = path + " is not a usable PMU file: " + commit_why +
              " (the commit record, bytes 0..511, names the last acknowledged table update); " + describe() +
              advice;
    return Status::kCorrupt;
  }

  // The committed copy must be whole and be exactly the copy the record names. If it is not,
  // the older copy would open fine, but that would silently undo an acknowledged update.
  const uint64_t g = record.generation;
  const int pick = copy_for_generation(g);
  const int other = 1 - pick;
  std::string problem;
  if (states[pick] != CopyState::kValid) {
    problem = whys[pick];
  } else if (sbs[pick].generation != g) {
    problem = "it holds generation " + std::to_string(sbs[pick].generation) + ", not the committed one";
  } else if (copy_checksum(base + copy_offset(pick, copy_size)) != record.copy_crc) {
    problem = "its superblock checksum differs from the one the commit record names";
  } else if (std::memcmp(sbs[pick].uuid, record.uuid, 16) != 0) {
    problem = "it belongs to another file (its uuid differs from the commit record's)";
  }
  if (!problem.empty()) {
    *detail = path + ": metadata copy " + names[pick] + " holds the last acknowledged table update (generation " +
              std::to_string(g) + ") and is damaged: " + problem +
              ". Opening the older copy instead would silently undo that update (a region created since would "
              "vanish, one deleted since would come back). " + describe() + advice;
    return Status::kCorrupt;
  }

  // The other copy: the previous generation; an update written but never committed (a crash
  // came before its commit record); torn (a crash mid-write, or damage to the superseded
  // copy: neither loses an acknowledged update); or copy B before the first update.
  recovery_note_.clear();
  if (states[other] == CopyState::kValid) {
    if (std::memcmp(sbs[other].uuid, record.uuid, 16) != 0) {
      *detail = path + ": the two metadata copies belong to different files (uuid mismatch)" + advice;
      return Status::kCorrupt;
    }
    if (sbs[other].generation == g + 1) {
      recovery_note_ = std::string("copy ") + names[other] + " holds generation " + std::to_string(g + 1) +
                       ", written but never committed: a crash interrupted a table update before it was "
                       "acknowledged; opened copy " + names[pick] + " at generation " + std::to_string(g);
    } else if (sbs[other].generation + 1 != g) {
      *detail = path + ": copy " + names[other] + " claims generation " + std::to_string(sbs[other].generation) +
                " but the committed generation is " + std::to_string(g) +
                " (the copies alternate, so it must be one less or one more)" + advice;
      return Status::kCorrupt;
    }
  } else if (states[other] == CopyState::kTorn) {
    recovery_note_ = std::string("copy ") + names[other] + " was torn (" + whys[other] +
                     "): a table update that was never acknowledged, or damage to the superseded copy; opened "
                     "copy " + names[pick] + " at generation " + std::to_string(g) +
                     "; the next update rewrites copy " + names[other];
  } else {
    // A copy whose checksums pass but whose content is wrong was written that way: that is
    // corruption, not a torn update.
    bool never_written = other == 1 && g == 1 && whys[1] == "superblock is all zeros";
    if (!never_written) {
      *detail = path + " has a damaged metadata copy: " + describe() + advice;
      return Status::kCorrupt;
    }
  }
  sb_ = sbs[pick];
  entries_ = std::move(tables[pick]);
  current_copy_ = pick;
  rebuild_index();
  return Status::kOk;
}

Status Unit::close() {
  if (!file_.is_open()) return Status::kClosed;
  entries_.clear();
  by_handle_.clear();
  pending_ = FlushSpan();
  return file_.close();
}

void Unit::rebuild_index() {
  by_handle_.clear();
  for (size_t i = 0; i < entries_.size(); i++) by_handle_[entries_[i].handle] = i;
}

const RegionEntry* Unit::find_by_name(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const RegionEntry* Unit::find_by_handle(uint32_t handle) const {
  auto it = by_handle_.find(handle);
  return it == by_handle_.end() ? nullptr : &entries_[it->second];
}

UnitInfo Unit::info() const {
  UnitInfo info;
  if (!file_.is_open()) return info;
  info.path = file_.path();
  info.file_size = sb_.file_size;
  info.data_offset = sb_.data_offset;
  info.generation = sb_.generation;
  info.max_regions = sb_.max_regions;
  info.region_count = static_cast<uint32_t>(entries_.size());
  std::memcpy(info.uuid, sb_.uuid, 16);
  uint64_t used = 0;
  for (const auto& e : entries_) used += e.extent;
  info.free_bytes = sb_.file_size - sb_.data_offset - used;
  uint64_t ignored;
  find_free_extent(UINT64_MAX, &ignored, &info.largest_free_extent);
  return info;
}

// First fit over the gaps between extents, in file order. Also reports the largest gap,
// so ENOSPC can say how much would have fitted.
bool Unit::find_free_extent(uint64_t bytes, uint64_t* offset, uint64_t* largest) const {
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const auto& e : entries_) used.emplace_back(e.phys_offset, e.extent);
  for (const auto& r : reservations_) used.emplace_back(r.phys, r.extent);  // being zeroed for a create
  std::sort(used.begin(), used.end());
  uint64_t cursor = sb_.data_offset;
  *largest = 0;
  bool found = false;
  auto consider = [&](uint64_t gap_start, uint64_t gap_end) {
    uint64_t gap = gap_end - gap_start;
    *largest = std::max(*largest, gap);
    if (!found && gap >= bytes) {
      *offset = gap_start;
      found = true;
    }
  };
  for (const auto& [start, extent] : used) {
    if (start > cursor) consider(cursor, start);
    cursor = std::max(cursor, start + extent);
  }
  if (sb_.file_size > cursor) consider(cursor, sb_.file_size);
  return found;
}

Status Unit::commit(std::vector<RegionEntry> next_entries, Superblock next_sb) {
  if (file_.failed()) return Status::kIo;
  if (file_.read_only()) return Status::kInvalid;
  next_sb.generation = sb_.generation + 1;
  int target = 1 - current_copy_;
  uint64_t offset = copy_offset(target, sb_.meta_copy_size);
  // Step 1: encode beside the mapping, then copy over the older copy and flush it: a crash
  // mid-way leaves that copy torn (or whole but uncommitted), the current copy intact.
  // Pages of the older copy evicted since (or still being read in after open) are asked for
  // together; already cached, this costs a lookup.
  file_.prefetch(offset, sb_.meta_copy_size);
  std::vector<uint8_t> buffer(static_cast<size_t>(sb_.meta_copy_size));
  encode_copy(next_sb, next_entries, buffer.data());
  std::memcpy(file_.data() + offset, buffer.data(), buffer.size());
  Status s = file_.flush(offset, buffer.size());
  if (s != Status::kOk) return s;
  // Step 2: the commit record, one sector, written whole or not at all. Only once it is
  // durable is the update acknowledged; from then on damage to the new copy is ECORRUPT.
  CommitRecord record;
  record.max_regions = sb_.max_regions;
  std::memcpy(record.uuid, sb_.uuid, 16);
  record.generation = next_sb.generation;
  record.copy_crc = copy_checksum(buffer.data());
  uint8_t sector[kCommitRecordSize];
  encode_commit(record, sector);
  std::memcpy(file_.data(), sector, sizeof sector);
  s = file_.flush(0, sizeof sector);
  if (s != Status::kOk) return s;
  sb_ = next_sb;
  entries_ = std::move(next_entries);
  current_copy_ = target;
  rebuild_index();
  return Status::kOk;
}

Status Unit::create_region(const std::string& name, uint64_t length, const std::string& owner,
                           const RegionEntry** created, std::string* detail) {
  CreateReservation reservation;
  Status s = begin_create_region(name, length, owner, &reservation, detail);
  if (s != Status::kOk) return s;
  s = zero_for_create(reservation, detail);
  if (s != Status::kOk) {
    abort_create_region(reservation);
    return s;
  }
  return finish_create_region(reservation, created, detail);
}

Status Unit::begin_create_region(const std::string& name, uint64_t length, const std::string& owner,
                                 CreateReservation* reservation, std::string* detail) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  if (!valid_region_name(name)) {
    *detail = "region name must be 1 to " + std::to_string(kNameMax) + " bytes with no NUL";
    return Status::kInvalid;
  }
  if (!owner.empty() && !valid_user_name(owner)) {
    *detail = "owner must be 1 to " + std::to_string(kUserMax) + " bytes with no NUL";
    return Status::kInvalid;
  }
  if (length == 0 || length > kMaxRegionLength) {
    *detail = "region length must be between 1 byte and 64 TiB";
    return Status::kInvalid;
  }
  bool reserved_name = false;
  for (const auto& r : reservations_) reserved_name = reserved_name || r.name == name;
  if (find_by_name(name) != nullptr || reserved_name) {
    *detail = reserved_name ? "region '" + name + "' is being created; open it once that is done" : "region '" + name + "' already exists; open it, or delete it first";
    return Status::kExists;
  }
  if (entries_.size() + reservations_.size() >= sb_.max_regions) {
    *detail = "the table holds at most " + std::to_string(sb_.max_regions) +
              " regions; delete one or create the file with a larger maxRegions";
    return Status::kTooMany;
  }
  uint64_t extent = round_up_page(length);
  uint64_t phys = 0, largest = 0;
  if (!find_free_extent(extent, &phys, &largest)) {
    *detail = "no free extent of " + std::to_string(extent) + " bytes for region '" + name + "' in " +
              file_.path() + "; the largest free extent is " + std::to_string(largest) +
              " bytes: delete a region, or create a larger unit";
    return Status::kNoSpace;
  }
  CreateReservation r;
  r.id = next_reservation_++;
  r.name = name;
  r.owner = owner;
  r.length = length;
  r.phys = phys;
  r.extent = extent;
  // Only the part below the clean offset can hold a deleted region's bytes.
  r.zero_end = std::min(phys + extent, sb_.clean_offset);
  reservations_.push_back(r);
  *reservation = std::move(r);
  return Status::kOk;
}

Status Unit::zero_for_create(const CreateReservation& reservation, std::string* detail) {
  // Zero the extent before the table points at it (a crash in between leaves it free).
  if (reservation.phys >= reservation.zero_end) return Status::kOk;
  return file_.zero_range(reservation.phys, reservation.zero_end - reservation.phys, detail);
}

void Unit::abort_create_region(const CreateReservation& reservation) {
  for (auto it = reservations_.begin(); it != reservations_.end(); ++it) {
    if (it->id == reservation.id) {
      reservations_.erase(it);
      return;
    }
  }
}

Status Unit::finish_create_region(const CreateReservation& reservation, const RegionEntry** created,
                                  std::string* detail) {
  // Released whatever happens below: a failed commit leaves the extent free, as before.
  abort_create_region(reservation);
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  // Virtual ranges are never reused, with a guard page between regions; taken now, not at
  // begin, because other table updates may have committed meanwhile.
  uint64_t vbase = sb_.next_vaddr;
  if (vbase > kMaxVirtualAddress - reservation.extent - kPageSize || sb_.next_handle > UINT32_MAX - 1) {
    *detail = "the file has used up its virtual address space or handles";
    return Status::kNoSpace;
  }
  RegionEntry e;
  e.handle = static_cast<uint32_t>(sb_.next_handle);
  e.vbase = vbase;
  e.length = reservation.length;
  e.phys_offset = reservation.phys;
  e.extent = reservation.extent;
  e.created_generation = sb_.generation + 1;
  e.name = reservation.name;
  e.owner = reservation.owner;
  if (!fill_random(e.key, kKeySize)) {
    *detail = "getrandom failed";
    return Status::kSys;
  }
  Superblock next_sb = sb_;
  next_sb.clean_offset = std::max(sb_.clean_offset, reservation.phys + reservation.extent);
  next_sb.next_handle = sb_.next_handle + 1;
  next_sb.next_vaddr = vbase + reservation.extent + kPageSize;
  std::vector<RegionEntry> next = entries_;
  next.push_back(e);
  Status s = commit(std::move(next), next_sb);
  if (s != Status::kOk) return s;
  // The extent's blocks are written zeros, but not in the page cache (the zero-fill dropped
  // them): without this, each first write would wait for a 4 KiB read from the device and
  // cost ~1.5x a rewrite. Capped: a huge region is read in as it is used.
  file_.prefetch(reservation.phys, std::min<uint64_t>(reservation.extent, kPrefetchMax));
  *created = find_by_handle(e.handle);
  return Status::kOk;
}

Status Unit::delete_region(uint32_t handle) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) return Status::kNotFound;
  std::vector<RegionEntry> next = entries_;
  next.erase(next.begin() + static_cast<std::ptrdiff_t>(it->second));
  return commit(std::move(next), sb_);
}

Status Unit::set_grants(uint32_t handle, const std::vector<Grant>& grants, std::string* detail) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) return Status::kNotFound;
  if (grants.size() > kGrantsMax) {
    *detail = "a region holds at most " + std::to_string(kGrantsMax) + " grants";
    return Status::kTooMany;
  }
  for (const auto& g : grants) {
    if (!valid_user_name(g.user) || g.rights == kRightNone || g.rights > (kRightRead | kRightWrite)) {
      *detail = "each grant needs a user name of 1 to " + std::to_string(kUserMax) +
                " bytes and rights 'r' or 'rw'";
      return Status::kInvalid;
    }
  }
  std::vector<RegionEntry> next = entries_;
  next[it->second].grants = grants;
  return commit(std::move(next), sb_);
}

Status Unit::translate(uint32_t handle, uint64_t vaddr, uint64_t length, uint64_t* offset) const {
  auto it = by_handle_.find(handle);
  if (it == by_handle_.end()) return file_.is_open() ? Status::kNotFound : Status::kClosed;
  const RegionEntry& e = entries_[it->second];
  // Subtractions only, each guarded: no sum here can wrap.
  if (vaddr < e.vbase) return Status::kBounds;
  uint64_t within = vaddr - e.vbase;
  if (within > e.length || length > e.length - within) return Status::kBounds;
  *offset = e.phys_offset + within;
  return Status::kOk;
}

Status Unit::write(uint32_t handle, uint64_t vaddr, const uint8_t* data, uint64_t length,
                   const WriteOptions& options) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  if (file_.read_only()) return Status::kInvalid;
  uint64_t offset;
  Status s = translate(handle, vaddr, length, &offset);
  if (s != Status::kOk) return s;
  if (options.fence) {
    uint64_t fence_offset;
    s = translate(handle, options.fence_vaddr, 8, &fence_offset);
    if (s != Status::kOk) return s;
    if (fence_offset % 8 != 0) return Status::kAlign;
    auto* word = reinterpret_cast<uint64_t*>(file_.data() + fence_offset);
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != options.fence_epoch) return Status::kFenced;
  }
  if (length >= kCopyInMin) {
    s = file_.copy_in(offset, data, length);
    if (s != Status::kOk) return s;
  } else if (length > 0) {
    std::memcpy(file_.data() + offset, data, length);
  }
  if (options.sync) return file_.flush(offset, length);
  if (options.join_group) extend_pending(offset, length);
  return Status::kOk;
}

void Unit::extend_pending(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  if (pending_.empty()) {
    pending_ = {offset, offset + length};
  } else {
    pending_.start = std::min(pending_.start, offset);
    pending_.end = std::max(pending_.end, offset + length);
  }
}

Status Unit::mark_for_flush(uint32_t handle, uint64_t vaddr, uint64_t length) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  uint64_t offset;
  Status s = translate(handle, vaddr, length, &offset);
  if (s == Status::kOk) extend_pending(offset, length);
  return s;
}

Status Unit::read(uint32_t handle, uint64_t vaddr, uint8_t* out, uint64_t length) const {
  if (!file_.is_open()) return Status::kClosed;
  uint64_t offset;
  Status s = translate(handle, vaddr, length, &offset);
  if (s != Status::kOk) return s;
  if (length > 0) std::memcpy(out, file_.data() + offset, length);
  return Status::kOk;
}

Status Unit::flush(uint32_t handle, uint64_t vaddr, uint64_t length) {
  if (!file_.is_open()) return Status::kClosed;
  uint64_t offset;
  Status s = translate(handle, vaddr, length, &offset);
  if (s != Status::kOk) return s;
  return file_.flush(offset, length);
}

Status Unit::compare_and_swap(uint32_t handle, uint64_t vaddr, uint64_t expected, uint64_t desired,
                              uint64_t* previous, bool sync) {
  if (!file_.is_open()) return Status::kClosed;
  if (file_.failed()) return Status::kIo;
  if (file_.read_only()) return Status::kInvalid;
  uint64_t offset;
  Status s = translate(handle, vaddr, 8, &offset);
  if (s != Status::kOk) return s;
  if (offset % 8 != 0) return Status::kAlign;
  auto* word = reinterpret_cast<uint64_t*>(file_.data() + offset);
  uint64_t seen = expected;
  if (__atomic_compare_exchange_n(word, &seen, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    *previous = expected;
    return sync ? file_.flush(offset, 8) : Status::kOk;
  }
  *previous = seen;
  return Status::kOk;
}

Status Unit::prepare_checksum(uint32_t handle, uint64_t vaddr, uint64_t length, ChecksumSpan* span) const {
  if (!file_.is_open()) return Status::kClosed;
  if (length > kMaxChecksumBytes) return Status::kInvalid;
  uint64_t offset;
  Status s = translate(handle, vaddr, length, &offset);
  if (s != Status::kOk) return s;
  span->offset = offset;
  span->length = length;
  return Status::kOk;
}

uint32_t Unit::checksum_span(const ChecksumSpan& span) const {
  // translate() put [offset, offset + length) inside a region, and every region inside the file.
  return span.length == 0 ? crc32c(nullptr, 0) : crc32c(file_.data() + span.offset, span.length);
}

FlushSpan Unit::take_pending_span() {
  FlushSpan span = pending_;
  pending_ = FlushSpan();
  return span;
}

}  // namespace pmu
