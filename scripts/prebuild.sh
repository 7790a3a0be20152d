#!/usr/bin/env bash
# Builds the prebuilt addons that go into the npm package: pmu's own
# (prebuilds/linux-*/pmu.glibc.node) and the bench's floor addon from native/floor
# (prebuilds/linux-*/floor/pmu_floor.glibc.node, what `pmu bench` times its C floor rows with in
# an install, where there may be no compiler). linux-x64 natively and linux-arm64 with Debian's
# cross compiler (g++-aarch64-linux-gnu). N-API (--napi): one binary per platform serves every
# Node >= 20. Tagged with the libc so node-gyp-build never hands a glibc build to a musl system
# (there it builds from source). The floor addon sits in a subdirectory because node-gyp-build
# takes any *.node in prebuilds/linux-*/ as a candidate for pmu's own addon.
# Usage: npm run prebuilds [-- x64|arm64 ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(x64 arm64)

# prebuildify rebuilds in build/ and native/floor/build/: keep a clone's own source builds aside
# (in the work tree: prebuildify and mv rename, which stays on one file system) and put them
# back after.
scratch="build-prebuild.$$"
mkdir -p "$scratch"
saved=()
for dir in build native/floor/build; do
  if [ -d "$dir" ]; then mkdir -p "$scratch/saved/$(dirname "$dir")"; mv "$dir" "$scratch/saved/$dir"; saved+=("$dir"); fi
done
restore() {
  rm -rf build native/floor/build native/floor/prebuilds
  for dir in "${saved[@]}"; do mv "$scratch/saved/$dir" "$dir"; done
  rm -rf "$scratch"
}
trap restore EXIT

# prebuildify ARCH [ARGS...] for both addons: pmu's into prebuilds/linux-ARCH/, the floor addon's
# into native/floor/prebuilds/linux-ARCH/ (prebuildify's place for it), then moved to
# prebuilds/linux-ARCH/floor/.
prebuild() {
  local arch="$1"
  shift
  npx prebuildify --napi --strip --tag-libc --arch "$arch" "$@"
  npx prebuildify --cwd native/floor --name pmu_floor --napi --strip --tag-libc --arch "$arch" "$@"
  mkdir -p "prebuilds/linux-$arch/floor"
  mv "native/floor/prebuilds/linux-$arch/pmu_floor.glibc.node" "prebuilds/linux-$arch/floor/pmu_floor.glibc.node"
}

for arch in "${targets[@]}"; do
  echo "== prebuild linux-$arch"
  case "$arch" in
    x64)
      prebuild x64 ;;
    arm64)
      if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
        echo "prebuild: aarch64-linux-gnu-g++ is missing: install it with apt-get install -y g++-aarch64-linux-gnu" >&2
        exit 1
      fi
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
        prebuild arm64 --strip-bin aarch64-linux-gnu-strip ;;
    *)
      echo "prebuild: unknown target '$arch' (x64 or arm64)" >&2
      exit 2 ;;
  esac
done
ls -l prebuilds/*/ prebuilds/*/floor/
