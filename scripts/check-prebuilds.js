#!/usr/bin/env node
'use strict';
// Run by `npm pack` / `npm publish` (prepack): a package without its prebuilt addons would make
// every user compile (and leave `pmu bench` without its C floor rows: the floor addon's sources
// are not in the package). Refuses to pack unless each one is there and is an ELF for its machine.
// PMU_PACK_WITHOUT_PREBUILDS=1 packs anyway (a local try-out), saying so.
const fs = require('node:fs');
const path = require('node:path');

const PLATFORMS = [
  { dir: 'linux-x64', machine: 62 }, // EM_X86_64
  { dir: 'linux-arm64', machine: 183 }, // EM_AARCH64
];
// pmu's own addon, and the bench's floor addon (scripts/prebuild.sh, bench/lib/floor-addon.js).
const FILES = ['pmu.glibc.node', 'floor/pmu_floor.glibc.node'];
const EXPECTED = PLATFORMS.flatMap(({ dir, machine }) => FILES.map((name) => ({ dir, machine, file: `${dir}/${name}` })));

const root = path.join(__dirname, '..');
const problems = [];
for (const { dir, machine, file: name } of EXPECTED) {
  const file = path.join(root, 'prebuilds', name);
  let header;
  try {
    header = fs.readFileSync(file).subarray(0, 20);
  } catch {
    problems.push(`${path.relative(root, file)} is missing`);
    continue;
  }
  const isElf = header.length === 20 && header.readUInt32BE(0) === 0x7f454c46;
  if (!isElf || header.readUInt16LE(18) !== machine) problems.push(`${path.relative(root, file)} is not a ${dir} shared object`);
}
if (problems.length > 0) {
  if (process.env.PMU_PACK_WITHOUT_PREBUILDS === '1') {
    process.stderr.write(`pmu: packing without prebuilt addons (${problems.join('; ')}): installs will build from source\n`);
  } else {
    process.stderr.write(`pmu: not packing: ${problems.join('; ')}. Run npm run prebuilds first (PMU_PACK_WITHOUT_PREBUILDS=1 packs without them).\n`);
    process.exit(1);
  }
}
