/*
 * The glibc-only symbols that Debian's libstdc++.so.6 and libgcc_s.so.1 import, for the musl
 * Bun of scripts/musl-runtime.sh, which links the GNU libstdc++ (Alpine's, built for musl) and
 * finds Debian's (built for glibc) here instead. Only Bun's own C++ runtime goes through these;
 * the addon under test links libc++ statically and calls musl's libc directly. Each stand-in is
 * the conservative choice: not single-threaded, no thread-exit destructors (a test process
 * exits), no _dl_find_object (libgcc falls back to dl_iterate_phdr), no CPU features.
 * Built with zig: zig cc -target ARCH-linux-musl -shared -fPIC -O2 -o libpmushim.so shim.c
 */
#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != (ssize_t)sizeof value) {
  }
  return value;
}

size_t __strftime_l(char* s, size_t n, const char* format, const struct tm* tm, locale_t locale) {
  return strftime_l(s, n, format, tm, locale);
}

int __cxa_thread_atexit_impl(void (*dtor)(void*), void* object, void* dso) {
  (void)dtor;
  (void)object;
  (void)dso;
  return 0;
}

// aarch64's libstdc++ reads hardware capabilities with glibc's internal name for getauxval.
unsigned long __getauxval(unsigned long type) { return getauxval(type); }

char __libc_single_threaded = 0;

int _dl_find_object(void* pc, void* result) {
  (void)pc;
  (void)result;
  return -1;
}

struct {
  unsigned vendor, type, subtype;
  unsigned features[1];
} __cpu_model;
unsigned __cpu_features2[4];
int __cpu_indicator_init(void) { return 0; }
