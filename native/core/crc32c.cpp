#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace pmu {

namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // reflected Castagnoli

struct Table {
  uint32_t entries[256];
  Table() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
      entries[i] = c;
    }
  }
};

uint32_t crc32c_table(const uint8_t* p, size_t n, uint32_t crc) {
  static const Table table;
  for (size_t i = 0; i < n; i++) crc = table.entries[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
// "crc32" as well as "sse4.2": clang 16+ (the zig toolchain of the prebuilds) asks for the crc32
// feature by name for _mm_crc32_*; GCC accepts both. Only this function gets the instructions:
// the rest of the addon stays baseline x86-64, so the table path runs on a CPU without SSE4.2.
__attribute__((target("sse4.2,crc32"))) uint32_t crc32c_hw(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // memcpy: the input need not be aligned
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    n--;
  }
  return c32;
}

// CPUID leaf 1, ECX bit 20, read directly: __builtin_cpu_supports needs libgcc's (or
// compiler-rt's) __cpu_model, which a toolchain that links no libgcc (zig, for the prebuilds)
// does not provide.
bool cpu_has_sse42() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_SSE4_2) != 0;
  }();
  return has;
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t length, uint32_t crc) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
#if defined(__x86_64__)
  c = cpu_has_sse42() ? crc32c_hw(p, length, c) : crc32c_table(p, length, c);
#else
  c = crc32c_table(p, length, c);
#endif
  return ~c;
}

}  // namespace pmu
