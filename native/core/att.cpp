#include "att.h"

#include <algorithm>
#include <cstring>

#include "crc32c.h"
#include "pm_file.h"

namespace pmu {

namespace {

const uint8_t kMagic[8] = {'P', 'M', 'U', 'F', 'I', 'L', 'E', '1'};
const uint8_t kCommitMagic[8] = {'P', 'M', 'U', 'C', 'O', 'M', 'I', 'T'};

// Field offsets: the single source for both directions; docs/FORMAT.md lists the same.
namespace sbo {
constexpr size_t magic = 0, version = 8, page_size = 12, file_size = 16, uuid = 24,
                 generation = 40, max_regions = 48, entry_size = 52, meta_copy_size = 56,
                 data_offset = 64, next_handle = 72, next_vaddr = 80, table_crc = 88,
                 clean_offset = 96, sb_crc = 508;
}
namespace co {
constexpr size_t magic = 0, version = 8, max_regions = 12, uuid = 16, generation = 32, copy_crc = 40,
                 crc = 508;
}
namespace eo {
constexpr size_t state = 0, handle = 4, vbase = 8, length = 16, phys = 24, extent = 32,
                 created_gen = 40, key = 48, name = 64, owner = 128, grants = 160,
                 grant_size = 33, crc = 508;
}
constexpr uint32_t kStateActive = 1;

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void put_str(uint8_t* p, size_t field, const std::string& s) {
  std::memset(p, 0, field);
  std::memcpy(p, s.data(), std::min(s.size(), field - 1));
}
// Reads a NUL-padded field; false if it has no terminator or a byte after the first NUL.
bool get_str(const uint8_t* p, size_t field, std::string* out) {
  const void* nul = std::memchr(p, 0, field);
  if (nul == nullptr) return false;
  size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nul) - p);
  for (size_t i = n; i < field; i++)
    if (p[i] != 0) return false;
  out->assign(reinterpret_cast<const char*>(p), n);
  return true;
}

bool is_all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

void encode_entry(const RegionEntry& e, uint8_t* p) {
  std::memset(p, 0, kEntrySize);
  put32(p + eo::state, kStateActive);
  put32(p + eo::handle, e.handle);
  put64(p + eo::vbase, e.vbase);
  put64(p + eo::length, e.length);
  put64(p + eo::phys, e.phys_offset);
  put64(p + eo::extent, e.extent);
  put64(p + eo::created_gen, e.created_generation);
  std::memcpy(p + eo::key, e.key, kKeySize);
  put_str(p + eo::name, kNameMax + 1, e.name);
  put_str(p + eo::owner, kUserMax + 1, e.owner);
  for (size_t i = 0; i < e.grants.size() && i < kGrantsMax; i++) {
    uint8_t* g = p + eo::grants + i * eo::grant_size;
    put_str(g, kUserMax + 1, e.grants[i].user);
    g[kUserMax + 1] = e.grants[i].rights;
  }
  put32(p + eo::crc, crc32c(p, eo::crc));
}

// Over each entry without its own CRC field: an entry followed by its CRC32C always leaves the
// CRC register in the same state (the CRC residue), so a CRC over whole entries would not depend
// on their content, and a copy pairing a new superblock with stale entries would pass.
uint32_t table_checksum(const uint8_t* table, uint32_t max_regions) {
  uint32_t crc = 0;
  for (uint32_t i = 0; i < max_regions; i++) {
    crc = crc32c(table + static_cast<size_t>(i) * kEntrySize, eo::crc, crc);
  }
  return crc;
}

}  // namespace

bool valid_region_name(const std::string& name) {
  return !name.empty() && name.size() <= kNameMax && name.find('\0') == std::string::npos;
}

bool valid_user_name(const std::string& user) {
  return !user.empty() && user.size() <= kUserMax && user.find('\0') == std::string::npos;
}

uint64_t meta_copy_size(uint32_t max_regions) {
  uint64_t bytes = kSuperblockSize + static_cast<uint64_t>(max_regions) * kEntrySize;
  return (bytes + kPageSize - 1) & ~(kPageSize - 1);
}

void encode_copy(const Superblock& sb, const std::vector<RegionEntry>& entries, uint8_t* out) {
  uint64_t copy_size = meta_copy_size(sb.max_regions);
  std::memset(out, 0, copy_size);
  uint8_t* table = out + kSuperblockSize;
  for (size_t i = 0; i < entries.size() && i < sb.max_regions; i++)
    encode_entry(entries[i], table + i * kEntrySize);
  // Free slots stay all-zero, so the table CRC covers them too and a stale slot cannot hide.
  uint32_t table_crc = table_checksum(table, sb.max_regions);

  std::memcpy(out + sbo::magic, kMagic, 8);
  put32(out + sbo::version, sb.version);
  put32(out + sbo::page_size, static_cast<uint32_t>(kPageSize));
  put64(out + sbo::file_size, sb.file_size);
  std::memcpy(out + sbo::uuid, sb.uuid, 16);
  put64(out + sbo::generation, sb.generation);
  put32(out + sbo::max_regions, sb.max_regions);
  put32(out + sbo::entry_size, static_cast<uint32_t>(kEntrySize));
  put64(out + sbo::meta_copy_size, copy_size);
  put64(out + sbo::data_offset, sb.data_offset);
  put64(out + sbo::next_handle, sb.next_handle);
  put64(out + sbo::next_vaddr, sb.next_vaddr);
  put32(out + sbo::table_crc, table_crc);
  put64(out + sbo::clean_offset, sb.clean_offset);
  put32(out + sbo::sb_crc, crc32c(out, sbo::sb_crc));
}

uint32_t copy_checksum(const uint8_t* copy) { return get32(copy + sbo::sb_crc); }

void encode_commit(const CommitRecord& record, uint8_t* out) {
  std::memset(out, 0, kCommitRecordSize);
  std::memcpy(out + co::magic, kCommitMagic, 8);
  put32(out + co::version, record.version);
  put32(out + co::max_regions, record.max_regions);
  std::memcpy(out + co::uuid, record.uuid, 16);
  put64(out + co::generation, record.generation);
  put32(out + co::copy_crc, record.copy_crc);
  put32(out + co::crc, crc32c(out, co::crc));
}

CommitState decode_commit(const uint8_t* p, uint64_t available, CommitRecord* record, std::string* why) {
  if (available < kCommitRecordSize) {
    *why = "the file ends inside the commit record (truncated)";
    return CommitState::kDamaged;
  }
  if (std::memcmp(p + co::magic, kMagic, 8) == 0 && get32(p + sbo::version) == 1) {
    *why = "this is a version 1 PMU file; this build reads version " + std::to_string(kFormatVersion) +
           " only and there is no migration: create a new unit and copy the regions' data over";
    return CommitState::kOldFormat;
  }
  if (std::memcmp(p + co::magic, kCommitMagic, 8) != 0) {
    *why = is_all_zero(p, kCommitRecordSize) ? "the commit record is all zeros" : "the commit record has a bad magic";
    return CommitState::kDamaged;
  }
  if (get32(p + co::crc) != crc32c(p, co::crc)) {
    *why = "the commit record's checksum does not match (a sector is written whole, so this is damage, not a torn write)";
    return CommitState::kDamaged;
  }
  CommitRecord r;
  r.version = get32(p + co::version);
  if (r.version != kFormatVersion) {
    *why = "format version " + std::to_string(r.version) + " is not supported (this build reads version " +
           std::to_string(kFormatVersion) + ")";
    return CommitState::kUnsupported;
  }
  r.max_regions = get32(p + co::max_regions);
  std::memcpy(r.uuid, p + co::uuid, 16);
  r.generation = get64(p + co::generation);
  r.copy_crc = get32(p + co::copy_crc);
  if (r.max_regions == 0 || r.max_regions > kMaxMaxRegions || r.generation == 0) {
    *why = "the commit record's geometry or generation is out of range";
    return CommitState::kDamaged;
  }
  *record = r;
  return CommitState::kValid;
}

CopyState decode_copy(const uint8_t* copy, uint64_t available, uint64_t file_size,
                      Superblock* sb, std::vector<RegionEntry>* entries, std::string* why) {
  if (available < kSuperblockSize) {
    *why = "the file ends inside the superblock (truncated)";
    return CopyState::kInvalid;
  }
  if (std::memcmp(copy + sbo::magic, kMagic, 8) != 0) {
    *why = is_all_zero(copy, kSuperblockSize) ? "superblock is all zeros" : "bad magic: not a PMU file";
    return CopyState::kInvalid;
  }
  if (get32(copy + sbo::sb_crc) != crc32c(copy, sbo::sb_crc)) {
    *why = "superblock checksum mismatch";
    return CopyState::kTorn;
  }
  Superblock s;
  s.version = get32(copy + sbo::version);
  if (s.version != kFormatVersion) {
    *why = "format version " + std::to_string(s.version) + " is not supported (this build reads version " +
           std::to_string(kFormatVersion) + ")";
    return CopyState::kInvalid;
  }
  if (get32(copy + sbo::page_size) != kPageSize || get32(copy + sbo::entry_size) != kEntrySize) {
    *why = "unsupported page or entry size";
    return CopyState::kInvalid;
  }
  s.file_size = get64(copy + sbo::file_size);
  std::memcpy(s.uuid, copy + sbo::uuid, 16);
  s.generation = get64(copy + sbo::generation);
  s.max_regions = get32(copy + sbo::max_regions);
  s.meta_copy_size = get64(copy + sbo::meta_copy_size);
  s.data_offset = get64(copy + sbo::data_offset);
  s.next_handle = get64(copy + sbo::next_handle);
  s.next_vaddr = get64(copy + sbo::next_vaddr);
  s.clean_offset = get64(copy + sbo::clean_offset);
  if (s.max_regions == 0 || s.max_regions > kMaxMaxRegions ||
      s.meta_copy_size != meta_copy_size(s.max_regions) ||
      s.data_offset != kHeaderSize + 2 * s.meta_copy_size) {
    *why = "superblock geometry is inconsistent (max regions, metadata size, data offset)";
    return CopyState::kInvalid;
  }
  if (s.file_size != file_size) {
    *why = "superblock says the file is " + std::to_string(s.file_size) + " bytes but it is " +
           std::to_string(file_size) + (file_size < s.file_size ? " (truncated)" : "");
    return CopyState::kInvalid;
  }
  if (s.data_offset >= s.file_size || s.file_size % kPageSize != 0) {
    *why = "superblock data offset lies outside the file";
    return CopyState::kInvalid;
  }
  if (s.next_handle == 0 || s.next_handle > UINT32_MAX || s.next_vaddr < kFirstVirtualAddress ||
      s.next_vaddr > kMaxVirtualAddress) {
    *why = "superblock allocation counters are out of range";
    return CopyState::kInvalid;
  }
  if (s.clean_offset < s.data_offset || s.clean_offset > s.file_size) {
    *why = "superblock clean offset lies outside the data area";
    return CopyState::kInvalid;
  }
  if (available < s.meta_copy_size) {
    *why = "the file ends inside the address translation table (truncated)";
    return CopyState::kInvalid;
  }
  const uint8_t* table = copy + kSuperblockSize;


  // Before any entry's content: a torn update can pair this superblock with entries it never
  // counted (a handle or address past its counters), which is a torn write, not corruption.
  if (get32(copy + sbo::table_crc) != table_checksum(table, s.max_regions)) {
    *why = "table checksum mismatch (entries from different updates)";
    return CopyState::kTorn;
  }

  std::vector<RegionEntry> found;
  for (uint32_t i = 0; i < s.max_regions; i++) {
    const uint8_t* p = table + static_cast<size_t>(i) * kEntrySize;
    if (is_all_zero(p, kEntrySize)) continue;
    std::string where = "table entry " + std::to_string(i) + ": ";
    if (get32(p + eo::crc) != crc32c(p, eo::crc)) {
      *why = where + "checksum mismatch";
      return CopyState::kTorn;
    }
    RegionEntry e;
    e.handle = get32(p + eo::handle);
    e.vbase = get64(p + eo::vbase);
    e.length = get64(p + eo::length);
    e.phys_offset = get64(p + eo::phys);
    e.extent = get64(p + eo::extent);
    e.created_generation = get64(p + eo::created_gen);
    std::memcpy(e.key, p + eo::key, kKeySize);
    if (get32(p + eo::state) != kStateActive || e.handle == 0 || e.handle >= s.next_handle) {
      *why = where + "bad state or handle";
      return CopyState::kInvalid;
    }
    if (!get_str(p + eo::name, kNameMax + 1, &e.name) || !valid_region_name(e.name) ||
        !get_str(p + eo::owner, kUserMax + 1, &e.owner)) {
      *why = where + "bad name or owner field";
      return CopyState::kInvalid;
    }
    for (size_t g = 0; g < kGrantsMax; g++) {
      const uint8_t* gp = p + eo::grants + g * eo::grant_size;
      Grant grant;
      if (!get_str(gp, kUserMax + 1, &grant.user)) {
        *why = where + "bad grant field";
        return CopyState::kInvalid;
      }
      grant.rights = gp[kUserMax + 1];
      if (grant.user.empty()) continue;
      if (grant.rights == kRightNone || grant.rights > (kRightRead | kRightWrite)) {
        *why = where + "bad grant rights";
        return CopyState::kInvalid;
      }
      e.grants.push_back(grant);
    }
    // Every extent must sit page-aligned inside the data area, and hold its length.
    bool inside = e.length > 0 && e.length <= kMaxRegionLength && e.extent >= e.length &&
                  e.extent % kPageSize == 0 && e.phys_offset % kPageSize == 0 &&
                  e.phys_offset >= s.data_offset && e.phys_offset <= s.file_size &&
                  e.extent <= s.file_size - e.phys_offset && e.phys_offset <= s.clean_offset &&
                  e.extent <= s.clean_offset - e.phys_offset;
    if (!inside) {
      *why = where + "region '" + e.name + "' points outside the file's data area";
      return CopyState::kInvalid;
    }
    if (e.vbase < kFirstVirtualAddress || e.vbase > kMaxVirtualAddress - e.extent ||
        e.vbase + e.extent > s.next_vaddr) {
      *why = where + "region '" + e.name + "' has a virtual range outside the allocated space";
      return CopyState::kInvalid;
    }
    found.push_back(std::move(e));
  }
  // No two regions may share a physical page, a virtual address, a handle or a name.
  std::vector<const RegionEntry*> by_phys;
  for (const auto& e : found) by_phys.push_back(&e);
  std::sort(by_phys.begin(), by_phys.end(),
            [](const RegionEntry* a, const RegionEntry* b) { return a->phys_offset < b->phys_offset; });
  for (size_t i = 1; i < by_phys.size(); i++) {
    if (by_phys[i - 1]->phys_offset + by_phys[i - 1]->extent > by_phys[i]->phys_offset) {
      *why = "regions '" + by_phys[i - 1]->name + "' and '" + by_phys[i]->name + "' overlap in the file";
      return CopyState::kInvalid;
    }
  }
  for (size_t i = 0; i < found.size(); i++) {
    for (size_t j = i + 1; j < found.size(); j++) {
      const RegionEntry& a = found[i];
      const RegionEntry& b = found[j];
      bool vaddr_overlap = a.vbase < b.vbase + b.extent && b.vbase < a.vbase + a.extent;
      if (a.handle == b.handle || a.name == b.name || vaddr_overlap) {
        *why = "regions '" + a.name + "' and '" + b.name + "' share a handle, name or virtual range";
        return CopyState::kInvalid;
      }
    }
  }
  *sb = s;
  *entries = std::move(found);
  return CopyState::kValid;
}

}  // namespace pmu
