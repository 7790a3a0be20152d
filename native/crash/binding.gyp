# The crash-recording variant of the addon (test/crash-states.test.ts, scripts/crash-states.js):
# the same sources as ../../binding.gyp, plus the recorder, with the storage layer's msync, fsync,
# fdatasync, mmap and munmap routed through it by the linker (--wrap). Never shipped or loaded by
# default: lib/unit/native.ts loads it only when PMU_ADDON_PATH names it.
# Build: node scripts/build-crash-addon.js (out: native/crash/build/Release/pmu_crash.node).
{
  "targets": [
    {
      "target_name": "pmu_crash",
      "sources": [
        "../core/status.cpp",
        "../core/crc32c.cpp",
        "../core/pm_file.cpp",
        "../core/att.cpp",
        "../core/unit.cpp",
        "../core/crash_recorder.cpp",
        "../binding/addon.cpp",
        "../binding/unit_wrap.cpp",
        "../binding/flush_worker.cpp",
        "../binding/floor.cpp",
        "../binding/crash_binding.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "PMU_CRASH_RECORD"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "ldflags": [
        "-Wl,--wrap=mmap", "-Wl,--wrap=mmap64", "-Wl,--wrap=munmap", "-Wl,--wrap=msync",
        "-Wl,--wrap=fsync", "-Wl,--wrap=fdatasync",
        "-Wl,--wrap=fallocate64", "-Wl,--wrap=posix_fallocate64"
      ]
    }
  ]
}
