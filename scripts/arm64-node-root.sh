#!/usr/bin/env bash
# An arm64 Node from Debian's own packages, unpacked into a directory (not installed), so that a
# test can load the cross-built linux-arm64 prebuild under qemu-user:
#   qemu-aarch64-static -L ROOT ROOT/usr/bin/node ...
# Idempotent; needs root and the Debian registry (adds the arm64 architecture to apt once).
# Usage: bash scripts/arm64-node-root.sh [ROOT]   (default /var/cache/pmu/arm64-node)
set -euo pipefail
root="${1:-${PMU_ARM64_ROOT:-/var/cache/pmu/arm64-node}}"
if [ -x "$root/usr/bin/node" ]; then
  echo "arm64 node: $root"
  exit 0
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi
debs="$(mktemp -d)"
trap 'rm -rf "$debs"' EXIT
# Debian's nodejs and what it loads at run time (libraries, and the JS it keeps outside the binary).
packages=(nodejs:arm64 libnode108:arm64 libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 libuv1:arm64 libicu72:arm64
  libssl3:arm64 zlib1g:arm64 libbrotli1:arm64 libc-ares2:arm64 libnghttp2-14:arm64
  node-acorn node-cjs-module-lexer node-undici node-xtend)
(cd "$debs" && apt-get download "${packages[@]}" >/dev/null 2>&1) || { apt-get update -qq && (cd "$debs" && apt-get download "${packages[@]}" >/dev/null); }
mkdir -p "$root.tmp"
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root.tmp"; done
rm -rf "$root"
mv "$root.tmp" "$root"
echo "arm64 node: $root ($(qemu-aarch64-static -L "$root" "$root/usr/bin/node" --version))"
