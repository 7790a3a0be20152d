#!/usr/bin/env bash
# An older glibc and libstdc++ than this machine's, unpacked into a directory (not installed),
# so that a test can load the linux-x64 glibc prebuild where the old one could not load: Debian
# 11's libc6 (glibc 2.31: no GLIBC_2.33 fstat64) and libstdc++6 (GCC 10: GLIBCXX_3.4.28, no
# GLIBCXX_3.4.29), from Debian's bullseye suite through a private apt configuration (the
# machine's own sources and state are not touched). Node itself (this machine's, the official
# build: GLIBC_2.28 and GLIBCXX_3.4.21 at most) runs on it through bullseye's own loader:
#   ROOT/run FILE.js  =  ROOT/lib64/ld-linux-x86-64.so.2 --library-path ROOT/... node FILE.js
# glibc 2.28 itself (RHEL 8, Debian 10) is not on Debian's mirror any more; 2.31 is the oldest
# there. Idempotent; needs the Debian registry.
# Usage: bash scripts/old-glibc-root.sh [ROOT]   (default /var/cache/pmu/glibc-2.31)
set -euo pipefail
root="${1:-${PMU_OLD_GLIBC_ROOT:-/var/cache/pmu/glibc-2.31}}"
node="${NODE:-$(command -v node)}"
if [ -x "$root/run" ] && "$root/run" -e 'process.exit(0)' 2>/dev/null; then
  echo "old glibc: $root ($("$root/run" -p "process.report.getReport().header.glibcVersionRuntime") under node $("$root/run" --version))"
  exit 0
fi
apt_dir="$(mktemp -d)"
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" >"$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache" -o Dir::State::Status=/dev/null -o APT::Architectures::=amd64 -qq)
apt-get "${opts[@]}" update
(cd "$apt_dir/debs" && apt-get "${opts[@]}" download libc6 libstdc++6 libgcc-s1 >/dev/null 2>&1) \
  || (cd "$apt_dir/debs" && apt-get "${opts[@]}" download libc6 libstdc++6 libgcc-s1)
tmp="$root.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$tmp"; done
cat >"$tmp/run" <<EOF
#!/bin/sh
# Node on Debian 11's glibc and libstdc++ (scripts/old-glibc-root.sh).
exec "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" "$node" "\$@"
EOF
chmod +x "$tmp/run"
rm -rf "$root"
mkdir -p "$(dirname "$root")"
mv "$tmp" "$root"
echo "old glibc: $root ($("$root/run" -p "process.report.getReport().header.glibcVersionRuntime") under node $("$root/run" --version))"
