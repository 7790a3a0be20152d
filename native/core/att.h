// The address translation and protection table (ATT) and the superblock, as they sit in the
// PMU file. Two copies of (superblock + table) alternate; each update rewrites the older copy
// with generation + 1, so a torn update leaves the other copy valid. A one-sector commit record
// at the start of the file then names the generation that was acknowledged, so recovery can
// tell an update a crash interrupted (never acknowledged) from damage to one that was
// (docs/FORMAT.md).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace pmu {

constexpr size_t kSuperblockSize = 512;
constexpr size_t kEntrySize = 512;
constexpr size_t kNameMax = 63;      // region names: 1..63 bytes, no NUL
constexpr size_t kUserMax = 31;      // user names in owner and grants: 0..31 bytes
constexpr size_t kGrantsMax = 8;     // grants per region
constexpr size_t kKeySize = 16;      // access key bytes
constexpr uint32_t kFormatVersion = 2;
constexpr uint64_t kHeaderSize = 4096;        // page 0: the commit record, then reserved zeros
constexpr size_t kCommitRecordSize = 512;     // one sector: written whole or not at all
constexpr uint32_t kDefaultMaxRegions = 256;
constexpr uint32_t kMaxMaxRegions = 4096;
constexpr uint64_t kFirstVirtualAddress = 1ull << 32;
constexpr uint64_t kMaxVirtualAddress = 1ull << 52;  // keeps every address exact in a JS number
constexpr uint64_t kMaxRegionLength = 1ull << 46;

enum Rights : uint8_t { kRightNone = 0, kRightRead = 1, kRightWrite = 2 };

struct Grant {
  std::string user;
  uint8_t rights = kRightNone;
};

struct RegionEntry {
  uint32_t handle = 0;          // never reused within a file; 0 means a free slot
  uint64_t vbase = 0;           // virtual base address
  uint64_t length = 0;          // bytes addressable in the region
  uint64_t phys_offset = 0;     // page-aligned offset of the extent in the file
  uint64_t extent = 0;          // page-rounded bytes reserved in the file
  uint64_t created_generation = 0;
  uint8_t key[kKeySize] = {};
  std::string name;
  std::string owner;
  std::vector<Grant> grants;
};

struct Superblock {
  uint32_t version = kFormatVersion;
  uint64_t file_size = 0;
  uint8_t uuid[16] = {};
  uint64_t generation = 0;
  uint32_t max_regions = 0;
  uint64_t meta_copy_size = 0;
  uint64_t data_offset = 0;
  uint64_t next_handle = 1;
  uint64_t next_vaddr = kFirstVirtualAddress;
  // Data-area bytes at or above this offset have held nothing since the file was zero-filled
  // at creation, so a new extent there needs no zeroing; it only grows.
  uint64_t clean_offset = 0;
};

// Sector 0 of the file: the generation of the last acknowledged table update, and the
// checksum of the copy that holds it. Rewritten (one sector) after that copy is flushed.
struct CommitRecord {
  uint32_t version = kFormatVersion;
  uint32_t max_regions = 0;
  uint8_t uuid[16] = {};
  uint64_t generation = 0;
  uint32_t copy_crc = 0;  // the sb_crc of the committed copy's superblock
};

// Bytes of one metadata copy for a table of `max_regions` entries, page-rounded.
uint64_t meta_copy_size(uint32_t max_regions);

// File offset of metadata copy 0 (A) or 1 (B); generation g lives in copy (g + 1) % 2.
inline uint64_t copy_offset(int copy, uint64_t copy_size) {
  return kHeaderSize + static_cast<uint64_t>(copy) * copy_size;
}
inline int copy_for_generation(uint64_t generation) { return generation % 2 == 1 ? 0 : 1; }

// Serialises superblock + entries (free slots zeroed) into `out`, which must hold
// meta_copy_size bytes. Entries must number at most max_regions.
void encode_copy(const Superblock& sb, const std::vector<RegionEntry>& entries, uint8_t* out);

// Checks one copy found at `copy` inside a file of `file_size` bytes: magic, checksums,
// and that every entry lies inside the file, inside the data area, and overlaps no other.
// On success fills sb and entries (active slots only). On failure says why in `why` and
// tells whether the damage is a torn write (a checksum mismatch) or a content error.
enum class CopyState { kValid, kTorn, kInvalid };
CopyState decode_copy(const uint8_t* copy, uint64_t available, uint64_t file_size,
                      Superblock* sb, std::vector<RegionEntry>* entries, std::string* why);

// The superblock checksum of an encoded copy (what a commit record names).
uint32_t copy_checksum(const uint8_t* copy);

void encode_commit(const CommitRecord& record, uint8_t* out);
// kValid; kDamaged (checksum or magic wrong: a sector is written whole, so never a torn
// write); kOldFormat (a version 1 file, whose copy A starts here); kUnsupported (other version).
enum class CommitState { kValid, kDamaged, kOldFormat, kUnsupported };
CommitState decode_commit(const uint8_t* p, uint64_t available, CommitRecord* record, std::string* why);

bool valid_region_name(const std::string& name);
bool valid_user_name(const std::string& user);

}  // namespace pmu
