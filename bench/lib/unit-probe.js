'use strict';
// One unit size in a fresh process: create, open (timed, with the RSS it adds), a region at
// the far end, its first durable 4 KiB write and the next ones; prints one JSON line.
// Usage: node unit-probe.js FILE BYTES. Removes FILE when done.
const fs = require('node:fs');
const { PersistentMemoryUnit } = require('pmu');
const { floorAddon } = require('./floor-addon');
const { summarize } = require('./stats');

const [file, bytesText] = process.argv.slice(2);
const bytes = Number(bytesText);
const us = (t0) => Number(process.hrtime.bigint() - t0) / 1000;

try {
  let t0 = process.hrtime.bigint();
  PersistentMemoryUnit.open(file, { size: bytes }).closeSync();
  const createUs = us(t0);
  const rss0 = process.memoryUsage().rss;
  t0 = process.hrtime.bigint();
  const unit = PersistentMemoryUnit.open(file);
  const openUs = us(t0);
  const openRssBytes = process.memoryUsage().rss - rss0;
  // Fill the unit with one big region, then a 1 MiB one at the end: its pages were never touched.
  const free = unit.info().largestFreeExtent;
  const spare = 1 << 20;
  if (free > 2 * spare) unit.createRegion('filler', free - 2 * spare);
  const far = unit.createRegion('far', spare);
  const data = Buffer.alloc(4096, 0x5a);
  t0 = process.hrtime.bigint();
  far.writeSync(0, data);
  const firstWriteUs = us(t0);
  const next = [];
  for (let i = 1; i < 100; i++) {
    t0 = process.hrtime.bigint();
    far.writeSync(4096 * (i % 200), data);
    next.push(us(t0) * 1000);
  }
  unit.closeSync();
  // Without the floor addon no floor figure: the suite (unit-size.js) has noted why.
  const floor = floorAddon();
  const floorUs = floor ? summarize(floor.measureFloor(file + '.floor', 1 << 24, 4096, 100, true)).p50 : null;
  process.stdout.write(JSON.stringify({ createUs, openUs, openRssBytes, firstWriteUs, nextWriteUs: summarize(next).p50, floorUs }) + '\n');
} finally {
  fs.rmSync(file, { force: true });
  fs.rmSync(file + '.floor', { force: true });
}
