#!/usr/bin/env node
'use strict';
// Where the time of one large durable append goes, part by part, beside the floor (memcpy +
// msync in C) for the same size:   node bench/tools/append-parts.js [--mib 16] [--runs 4]
// The parts are timed on their own: a copy into a fresh record buffer (what append(Uint8Array)
// makes; a record frame skips it), the CRC32C over the payload, the copy into the mapping, the
// msync of it; then whole appends ('flushed') into a fresh log. Needs dist/ (npm run prepare).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { PersistentMemoryUnit, crc32c, openPrimary } = require('pmu');
const { requireFloorAddon } = require('../lib/floor-addon');

const { values: args } = parseArgs({ options: { mib: { type: 'string', default: '16' }, runs: { type: 'string', default: '4' } } });
const size = Number(args.mib) * (1 << 20);
const runs = Number(args.runs);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-append-parts-'));
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (values) => values.map((v) => v.toFixed(1)).join(' / ') + ' ms';

async function main() {
  const payload = Buffer.alloc(size, 0x5a);
  const parts = { 'copy into a fresh record buffer': [], 'CRC32C of the payload': [], 'copy into the mapping (fresh pages)': [], 'msync of it': [], "whole append, 'flushed'": [] };
  const unit = PersistentMemoryUnit.open(path.join(dir, 'parts.pmu'), { size: 2 * runs * size + (16 << 20) });
  try {
    const scratch = unit.createRegion('scratch', runs * size);
    const log = unit.createRegion('log', runs * size + (4 << 20));
    const writer = (await openPrimary(log, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < runs; i++) {
      let t0 = process.hrtime.bigint();
      const frame = Buffer.allocUnsafe(size + 80);
      payload.copy(frame, 40);
      parts['copy into a fresh record buffer'].push(ms(t0));
      t0 = process.hrtime.bigint();
      crc32c(payload, 0);
      parts['CRC32C of the payload'].push(ms(t0));
      t0 = process.hrtime.bigint();
      scratch.writeSync(i * size, payload, { durability: 'mapped' });
      parts['copy into the mapping (fresh pages)'].push(ms(t0));
      t0 = process.hrtime.bigint();
      scratch.flushSync(i * size, size);
      parts['msync of it'].push(ms(t0));
      t0 = process.hrtime.bigint();
      await writer.append(payload);
      parts["whole append, 'flushed'"].push(ms(t0));
    }
    await writer.close();
  } finally {
    await unit.close();
  }
  const floor = Array.from(requireFloorAddon().measureFloor(path.join(dir, 'floor'), 2 * Math.ceil(size / 4096) * 4096, size, runs, true), (ns) => ns / 1e6);
  console.log(`# one ${args.mib} MiB durable append, part by part (${runs} runs each; ${os.cpus().length} CPUs, Node ${process.versions.node}, files in ${dir})`);
  for (const [name, values] of Object.entries(parts)) console.log(`${name.padEnd(40)} ${fmt(values)}`);
  console.log(`${'floor: memcpy + msync in C'.padEnd(40)} ${fmt(floor)}`);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
