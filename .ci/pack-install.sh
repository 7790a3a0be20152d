#!/usr/bin/env bash
# The package as a user meets it: `npm pack`, then install the tarball into a fresh project
# with no compiler on PATH (no g++, cc, make, python), run the embedded example from the README
# and `pmu serve` until it listens. Proves the prebuilt addon is in the tarball and is used.
# Then `pmu bench` from the install, with the prebuilt floor addon and without it, and the
# tarball's own sources built into the addon (npm install --build-from-source, compiler on PATH).
# Usage: bash .ci/pack-install.sh [TARBALL]   (packs the work tree when no tarball is given)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/pmu-pack-install.XXXXXX)"
trap 'kill "${serve_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

tarball="${1:-}"
if [ -z "$tarball" ]; then
  (cd "$repo" && npm pack --pack-destination "$work" >/dev/null)
  tarball="$(ls "$work"/pmu-*.tgz)"
fi
echo "tarball: $(basename "$tarball"), $(stat -c %s "$tarball") bytes, $(tar -tzf "$tarball" | wc -l) files"

# A PATH with every program of this machine except compilers, make and python.
bin="$work/bin"
mkdir -p "$bin"
IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  case "$dir" in *pyenv*) continue ;; esac
  for program in "$dir"/*; do
    name="$(basename "$program")"
    case "$name" in
      *gcc*|*g++*|cc|c++|*clang*|make|gmake|python*|cpp|*-ld|ld|ld.*) continue ;;
    esac
    [ -x "$program" ] && [ ! -e "$bin/$name" ] && ln -s "$program" "$bin/$name"
  done
done
if PATH="$bin" command -v g++ >/dev/null || PATH="$bin" command -v make >/dev/null; then
  echo "pack-install: could not hide the compiler" >&2
  exit 1
fi

project="$work/project"
mkdir -p "$project"
cd "$project"
PATH="$bin" npm init -y >/dev/null
start=$(date +%s%N)
PATH="$bin" npm install --no-audit --no-fund "$tarball" 2>&1 | tail -5
end=$(date +%s%N)
echo "install without a compiler: $(( (end - start) / 1000000 )) ms"
for libc in glibc musl; do
  test -f "node_modules/pmu/prebuilds/linux-x64/pmu.$libc.node"
  test -f "node_modules/pmu/prebuilds/linux-x64/floor/pmu_floor.$libc.node"
done
test ! -d node_modules/pmu/build
# What this (glibc) machine loads from the install: the zig-built glibc 2.28 prebuild, no build/.
loaded="$(node -e "process.stdout.write(require('node-gyp-build').path(require('path').resolve('node_modules/pmu')))")"
case "$loaded" in */node_modules/pmu/prebuilds/linux-x64/pmu.glibc.node) ;; *) echo "pack-install: loads $loaded" >&2; exit 1 ;; esac
# The installed files' floors, read by check-prebuilds.js (not in the package) beside a link to them.
mkdir -p "$work/floors/scripts"
cp "$repo/scripts/check-prebuilds.js" "$work/floors/scripts/"
ln -s "$project/node_modules/pmu/prebuilds" "$work/floors/prebuilds"
node "$work/floors/scripts/check-prebuilds.js" --table
echo "loads: prebuilds/linux-x64/pmu.glibc.node, within its floor"

# The README's embedded example, verbatim (CommonJS).
node "$repo/scripts/readme-blocks.js" "$repo/README.md" --id embedded > embedded.js
PATH="$bin" node embedded.js
echo "embedded example: ok"

# The ES module entry points from the install: 'pmu' and its subpaths import, and are the one
# CommonJS core (the default export is its module.exports). pmu/langgraph needs LangChain, which
# this project lacks: its ES module build is only checked to be there (test/ts-matrix runs it).
PATH="$bin" node --input-type=module -e "
  import pmu, { PmuError, PersistentMemoryUnit } from 'pmu';
  import { FrameReader } from 'pmu/wire';
  import { MirroredRegion } from 'pmu/mirror';
  if (pmu.PmuError !== PmuError || typeof PersistentMemoryUnit.open !== 'function' || typeof FrameReader !== 'function' || typeof MirroredRegion !== 'function') process.exit(1);
"
test -f node_modules/pmu/dist/langgraph-esm/index.js
test -f node_modules/pmu/dist/langgraph-esm/package.json
echo "ES module entry points: ok"

# pmu serve: wait for its listening line (bounded), then stop it with SIGINT.
# The installed bin itself (not npx, which does not pass SIGINT on), so $! is the server.
PATH="$bin" node_modules/.bin/pmu serve --port 0 --size 16MiB > serve.log 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on tcp://" serve.log && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
grep "listening on tcp://" serve.log
PATH="$bin" npx pmu region list > /dev/null
kill -INT "$serve_pid"
wait "$serve_pid"
serve_pid=""
grep -q "pmu: stopped" serve.log
echo "pmu serve: listened, answered, stopped"

# pmu bench from the installed package: pmu's own suites, results under the working directory,
# the C floor rows timed by the prebuilt floor addon.
PATH="$bin" npx pmu bench --quick --only floors,embedded > bench.log 2>&1
test -f pmu-bench-results/latest.md
test ! -e node_modules/pmu/bench/results
grep -q '^| memcpy + msync (C) | 4 KiB |' pmu-bench-results/latest.md
grep -q '^| memcpy + msync (C), interleaved | 4 KiB |' pmu-bench-results/latest.md
echo "pmu bench: ran from the install with the prebuilt floor addon, results in ./pmu-bench-results"

# Without a floor addon that loads here (as on a platform with no prebuild): one note says why,
# no floor rows, and pmu's own rows and the Node ping-pong still run.
mv node_modules/pmu/prebuilds/linux-x64/floor "$work/floor-aside"
PATH="$bin" npx pmu bench --quick --only floors,embedded --out no-floor > bench-no-floor.log 2>&1
mv "$work/floor-aside" node_modules/pmu/prebuilds/linux-x64/floor
test "$(grep -c '^- floor rows skipped' no-floor/latest.md)" = 1
grep '^- floor rows skipped' no-floor/latest.md
if grep -q '(C)' no-floor/latest.md; then echo 'pack-install: floor rows without a floor addon' >&2; exit 1; fi
grep -q "^| writeSync, 'flushed' | 4 KiB |" no-floor/latest.md
grep -q '^| Node TCP ping-pong (write → 8 B ack) | 4 KiB |' no-floor/latest.md
echo "pmu bench: without the floor addon, its rows left out with one note; pmu's rows ran"

# The tarball's sources are enough to build the addon: a second project installs it with
# --build-from-source (the compiler back on PATH), node-gyp builds from the shipped files, and
# the package loads that build (build/Release comes before prebuilds/ for node-gyp-build).
source_project="$work/source-project"
mkdir -p "$source_project"
cd "$source_project"
npm init -y >/dev/null
npm install --no-audit --no-fund --build-from-source "$tarball" 2>&1 | tail -3
test -f node_modules/pmu/build/Release/pmu.node
node -e "
  const loaded = require('node-gyp-build').path(require('path').join(process.cwd(), 'node_modules/pmu'));
  if (!loaded.endsWith('build/Release/pmu.node')) throw new Error('loaded ' + loaded);
  const { PersistentMemoryUnit } = require('pmu');
  const unit = PersistentMemoryUnit.open(require('path').join(process.cwd(), 'source-build.pmu'), { size: 16 << 20 });
  unit.createRegion('r', 1 << 20).writeSync(0, Buffer.from('built from the tarball'));
  unit.closeSync();
"
echo "source build from the tarball: node-gyp built the shipped sources, the addon loads and writes"
echo "pack-install: ok"
