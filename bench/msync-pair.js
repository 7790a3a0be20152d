#!/usr/bin/env node
'use strict';
// The floor under a mirrored 'flushed' write when both replicas share one disk (as every PMU
// does on a single test host): 4 KiB memcpy + msync in C (the bench's floor addon, bench/lib/floor-addon.js), p50 of one
// process alone, then of two processes at once on two files of the same file system.
//   node bench/msync-pair.js [--iterations 2000] [--dir DIR]
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '2000' }, dir: { type: 'string' }, child: { type: 'string' } } });
const iterations = Number(values.iterations);

if (values.child) {
  const { requireFloorAddon } = require('./lib/floor-addon');
  const ns = requireFloorAddon().measureFloor(values.child, 64 << 20, 4096, iterations, true);
  const sorted = Array.from(ns).sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: sorted[sorted.length >> 1] / 1000 }) + '\n');
  process.exit(0);
}

// Built (in a clone) or found once here, not by two children at once.
require('./lib/floor-addon').requireFloorAddon();
const dir = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'pmu-msync-pair-'));
const run = (n) =>
  Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [__filename, '--child', path.join(dir, `f${i}`), '--iterations', String(iterations)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (c) => (out += c));
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).p50) : reject(new Error(`child exited ${code}`))));
      }),
    ),
  );

(async () => {
  try {
    const rows = [];
    for (let round = 0; round < 3; round++) {
      const [alone] = await run(1);
      const pair = await run(2);
      rows.push({ alone, pair: Math.max(...pair) });
    }
    for (const { alone, pair } of rows) console.log(`4 KiB memcpy+msync p50: one process ${alone.toFixed(1)} µs; two at once (slower of the two) ${pair.toFixed(1)} µs; ratio ${(pair / alone).toFixed(2)}x`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();
