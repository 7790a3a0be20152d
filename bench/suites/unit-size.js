'use strict';
// Unit size, 64 MiB … 8 GiB: how long create and open take, the resident memory open
// adds, and the first durable 4 KiB write into a region at the far end of the file. Each
// size runs in a fresh process (bench/lib/unit-probe.js) so RSS is that unit's alone.
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { floorAddon } = require('../lib/floor-addon');

const PROBE = path.join(__dirname, '..', 'lib', 'unit-probe.js');

function sizes(ctx) {
  return ctx.quick ? [64 << 20, 512 << 20] : [64 << 20, 512 << 20, 2 * 2 ** 30, 8 * 2 ** 30];
}

function cases(ctx) {
  // Here, once, before the probes run: a clone builds the floor addon now rather than in each
  // probe; without one, the run's note says why and the probes leave out the floor row.
  floorAddon(ctx);
  return sizes(ctx).map((bytes) => ({
    label: `unit of ${ctx.sizeName(bytes)}`,
    run: () => {
      const file = path.join(ctx.dir, `size-${bytes}.pmu`);
      const out = execFileSync(process.execPath, [PROBE, file, String(bytes)], { encoding: 'utf8', timeout: 120_000 });
      const r = JSON.parse(out.trim().split('\n').pop());
      const label = ctx.sizeName(bytes);
      const row = (series, fields, note, extra = {}) => ({ name: `${series}, ${label} unit`, size: 4096, ...fields, note, curve: { chart: 'unit-size', series, x: bytes, ...extra } });
      const rows = [
        row('create (every byte written once)', { p50: r.createUs }),
        row('open (metadata scan)', { p50: r.openUs }, `RSS +${(r.openRssBytes / 2 ** 20).toFixed(1)} MiB after open`, { rssBytes: r.openRssBytes }),
        row("first 4 KiB write, 'flushed', far end", { p50: r.firstWriteUs }),
        row("next 4 KiB writes, 'flushed', far end", { p50: r.nextWriteUs }),
      ];
      // null when this install has no floor addon (bench/lib/floor-addon.js).
      if (r.floorUs !== null) rows.push(row('memcpy + msync floor (C), 4 KiB', { p50: r.floorUs }));
      return rows;
    },
  }));
}

module.exports = {
  name: 'unit-size',
  async setup() {
    return {};
  },
  cases,
};
