#!/usr/bin/env bash
# Builds the prebuilt addons that go into the npm package (prebuilds/linux-*/pmu.glibc.node):
# linux-x64 natively and linux-arm64 with Debian's cross compiler (g++-aarch64-linux-gnu).
# N-API (--napi): one binary per platform serves every Node >= 20. Tagged with the libc so
# node-gyp-build never hands a glibc build to a musl system (there it builds from source).
# Usage: npm run prebuilds [-- x64|arm64 ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(x64 arm64)

# prebuildify rebuilds in build/: keep a clone's own source build aside and put it back after.
saved=""
if [ -d build ]; then saved="build.before-prebuild.$$"; mv build "$saved"; fi
restore() { rm -rf build; if [ -n "$saved" ]; then mv "$saved" build; fi; }
trap restore EXIT

for arch in "${targets[@]}"; do
  echo "== prebuild linux-$arch"
  case "$arch" in
    x64)
      npx prebuildify --napi --strip --tag-libc --arch x64 ;;
    arm64)
      if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
        echo "prebuild: aarch64-linux-gnu-g++ is missing: install it with apt-get install -y g++-aarch64-linux-gnu" >&2
        exit 1
      fi
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
        npx prebuildify --napi --strip --strip-bin aarch64-linux-gnu-strip --tag-libc --arch arm64 ;;
    *)
      echo "prebuild: unknown target '$arch' (x64 or arm64)" >&2
      exit 2 ;;
  esac
done
ls -l prebuilds/*/
