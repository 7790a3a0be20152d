#!/usr/bin/env bash
# The package as a user meets it: `npm pack`, then install the tarball into a fresh project
# with no compiler on PATH (no g++, cc, make, python), run the embedded example from the README
# and `pmu serve` until it listens. Proves the prebuilt addon is in the tarball and is used.
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
test -f node_modules/pmu/prebuilds/linux-x64/pmu.glibc.node
test ! -d node_modules/pmu/build

# The README's embedded example, verbatim (CommonJS).
node "$repo/scripts/readme-blocks.js" "$repo/README.md" --id embedded > embedded.js
PATH="$bin" node embedded.js
echo "embedded example: ok"

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

# pmu bench from the installed package: pmu's own suites, results under the working directory.
PATH="$bin" npx pmu bench --quick --only floors,embedded > bench.log 2>&1
test -f pmu-bench-results/latest.md
test ! -e node_modules/pmu/bench/results
echo "pmu bench: ran from the install, results in ./pmu-bench-results"
echo "pack-install: ok"
