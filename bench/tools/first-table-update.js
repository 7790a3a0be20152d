#!/usr/bin/env node
'use strict';
// The first table update after open against the later ones (issue 24, item 5), with the bytes
// the device wrote for each (a large page-cache folio would show as far more than the table):
//   node bench/tools/first-table-update.js [--max-regions 4096] [--updates 5] [--dir DIR]
// For a new file and for the same file reopened: time and device bytes of each createRegion
// (a table update: the spare copy rewritten and flushed, then the commit record). Needs dist/
// (npm run prepare). The file goes in --dir (default: the working directory, which sits on a
// real disk; /tmp may be tmpfs, where msync costs nothing).
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { PersistentMemoryUnit } = require('pmu');
const { bytesWrittenDuring, deviceFor } = require('../lib/disk');

const { values: args } = parseArgs({ options: { 'max-regions': { type: 'string', default: '4096' }, updates: { type: 'string', default: '5' }, dir: { type: 'string', default: process.cwd() } } });
const maxRegions = Number(args['max-regions']);
const updates = Number(args.updates);
const dir = fs.mkdtempSync(path.join(args.dir, 'pmu-first-update-'));

async function main() {
  const file = path.join(dir, 'unit.pmu');
  // Warm the JS paths on another file first, so the first timed update pays only for the table.
  const warm = PersistentMemoryUnit.open(path.join(dir, 'warm.pmu'), { size: 8 << 20, maxRegions: 16 });
  for (let i = 0; i < 3; i++) warm.createRegion(`warm-${i}`, 4096);
  await warm.close();
  console.log(`# table updates after open (maxRegions ${maxRegions}; device stat ${deviceFor(dir) ?? 'not found: no device bytes'})`);
  for (const fresh of [true, false]) {
    let t0 = process.hrtime.bigint();
    const unit = PersistentMemoryUnit.open(file, fresh ? { size: 64 << 20, maxRegions } : {});
    const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const cells = [];
    for (let i = 0; i < updates; i++) {
      t0 = process.hrtime.bigint();
      const { bytes } = await bytesWrittenDuring(dir, () => unit.createRegion(`${fresh ? 'new' : 'again'}-${i}`, 4096));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      cells.push(`${ms.toFixed(2)} ms${bytes === undefined ? '' : ` (${(bytes / 1024).toFixed(0)} KiB)`}`);
    }
    console.log(`${(fresh ? 'new file' : 'reopened').padEnd(9)} open ${openMs.toFixed(1)} ms; createRegion: ${cells.join(' / ')}`);
    await unit.close();
  }
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
