{
  "targets": [
    {
      "target_name": "pmu",
      "sources": [
        "native/core/status.cpp",
        "native/core/crc32c.cpp",
        "native/core/pm_file.cpp",
        "native/core/att.cpp",
        "native/core/unit.cpp",
        "native/binding/addon.cpp",
        "native/binding/unit_wrap.cpp",
        "native/binding/flush_worker.cpp",
        "native/binding/checksum_worker.cpp",
        "native/binding/create_region_worker.cpp",
        "native/binding/create_worker.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
