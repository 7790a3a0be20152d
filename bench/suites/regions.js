'use strict';
// Regions in one unit, 1 … 4,096 (the most a unit's table holds): the cost of creating,
// opening and deleting one region when N exist, and a 4 KiB 'mapped' write to a region
// picked at random among N (does a bigger table, or more mappings touched, slow a write?).
// Every point uses a fresh unit whose table has room for 4,096, so only N changes.
const path = require('node:path');
const { PersistentMemoryUnit } = require('pmu');
const { summarize } = require('../lib/stats');

const TABLE = 4096;
const REGION = 4096;
const SAMPLE = 256;

function counts(ctx) {
  return ctx.quick ? [1, 64, 256] : [1, 16, 256, 4096];
}

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

function point(ctx, count) {
  const file = path.join(ctx.dir, `regions-${count}.pmu`);
  const unit = PersistentMemoryUnit.open(file, { size: TABLE * REGION + (16 << 20), maxRegions: TABLE });
  try {
    const names = Array.from({ length: count }, (_, i) => `r${i}`);
    const regions = [];
    const create = names.map((name) => time(() => regions.push(unit.createRegion(name, REGION))));
    // Open and delete are timed on a sample of at most SAMPLE names (deletes are durable table
    // updates: thousands of them would dominate the run); the rest are deleted untimed.
    const sample = names.filter((_, i) => i % Math.ceil(count / SAMPLE) === 0);
    const open = sample.map((name) => time(() => unit.openRegion(name)));
    const data = Buffer.alloc(REGION, 0x5a);
    const writes = Math.max(2000, count * 2);
    let seed = 12345;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return regions[seed % count];
    };
    for (let i = 0; i < Math.min(writes, 4096); i++) pick().writeSync(0, data, { durability: 'mapped' });
    const write = Array.from({ length: ctx.quick ? 2000 : 20000 }, () => {
      const region = pick();
      return time(() => region.writeSync(0, data, { durability: 'mapped' }));
    });
    const del = sample.map((name) => time(() => unit.deleteRegion(name)));
    return { create: summarize(create), open: summarize(open), write: summarize(write), del: summarize(del) };
  } finally {
    unit.closeSync();
  }
}

function cases(ctx) {
  return counts(ctx).map((count) => ({
    label: `${count} regions in one unit`,
    run: () => {
      const r = point(ctx, count);
      const row = (op, s, size) => ({ name: `${op}, ${count} region${count > 1 ? 's' : ''} in the unit`, size, ...s, curve: { chart: 'regions', series: op, x: count } });
      return [
        row('createRegion', r.create, REGION),
        row('openRegion', r.open, REGION),
        row("writeSync 'mapped' to a random region", r.write, REGION),
        row('deleteRegion', r.del, REGION),
      ];
    },
  }));
}

module.exports = {
  name: 'regions',
  async setup() {
    return {};
  },
  cases,
};
