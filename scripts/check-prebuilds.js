#!/usr/bin/env node
'use strict';
// Run by `npm pack` / `npm publish` (prepack): a package without its prebuilt addons would make
// every user compile. Refuses to pack unless each one is there and is an ELF for its machine.
// PMU_PACK_WITHOUT_PREBUILDS=1 packs anyway (a local try-out), saying so.
const fs = require('node:fs');
const path = require('node:path');

const EXPECTED = [
  { dir: 'linux-x64', machine: 62 }, // EM_X86_64
  { dir: 'linux-arm64', machine: 183 }, // EM_AARCH64
];

const root = path.join(__dirname, '..');
const problems = [];
for (const { dir, machine } of EXPECTED) {
  const file = path.join(root, 'prebuilds', dir, 'pmu.glibc.node');
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
