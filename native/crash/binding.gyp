# The crash-recording variant of the addon (test/crash-states.test.ts, scripts/crash-states.js):
# the sources of ../../binding.gyp (read from it when gyp runs) plus the recorder and its JS face
# (crash_recorder.cpp, crash_binding.cpp: this directory, never in the npm package), with the
# storage layer's mmap, munmap, msync, fsync, fdatasync and fallocate calls routed through the
# recorder by the linker (--wrap). Never shipped, never loaded by default: lib/unit/native.ts
# loads it only when PMU_ADDON_PATH names it. Build: node scripts/build-crash-addon.js
# (out: native/crash/build/Release/pmu_crash.node).
{
  "targets": [
    {
      "target_name": "pmu_crash",
      "sources": [
        "<!@(node ../../scripts/build-crash-addon.js --sources)",
        "crash_recorder.cpp",
        "crash_binding.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "PMU_CRASH_RECORD"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "ldflags": [
        "-Wl,--wrap=mmap", "-Wl,--wrap=mmap64", "-Wl,--wrap=munmap", "-Wl,--wrap=msync",
        "-Wl,--wrap=fsync", "-Wl,--wrap=fdatasync",
        "-Wl,--wrap=fallocate64", "-Wl,--wrap=posix_fallocate64",
        "-Wl,--wrap=fallocate", "-Wl,--wrap=posix_fallocate"
      ]
    }
  ]
}
