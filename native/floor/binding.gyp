# The bench's floor addon (measureFloor: memcpy + msync timed in C), a target of its own so
# the production addon carries no benchmark. Loaded by bench/lib/floor-addon.js only: in a
# clone it builds this on demand (npm run build:floor; out: native/floor/build/Release/
# pmu_floor.node); an installed package has the prebuilt one (prebuilds/linux-*/floor/,
# made by scripts/prebuild.sh) and not these sources.
{
  "targets": [
    {
      "target_name": "pmu_floor",
      "sources": ["floor.cpp"],
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
