// CRC32C (Castagnoli), the checksum of every on-disk structure and checkpoint record.
// Uses the SSE4.2 instruction where the CPU has it, a table otherwise; both give the same value.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pmu {

// Continues a running CRC: crc32c(b, crc32c(a)) == crc32c(a + b). Start with 0.
uint32_t crc32c(const void* data, size_t length, uint32_t crc = 0);

}  // namespace pmu
