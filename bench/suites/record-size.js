'use strict';
// Record size, 64 B … 16 MiB: one primary appending durably ('flushed') to an embedded log,
// one record at a time; MB/s against the floor for the same size (memcpy + msync in C, on
// a file prepared the same way). The reader clears between timed batches, untimed.
const path = require('node:path');
const { PersistentMemoryUnit, CheckpointReader, openPrimary } = require('pmu');
const { floorAddon } = require('../lib/floor-addon');
const { summarize } = require('../lib/stats');

const LOG_BYTES = 96 << 20;

function sizes(ctx) {
  return ctx.quick ? [64, 4096, 1 << 20] : [64, 1024, 4096, 65536, 1 << 20, 16 << 20];
}

function cases(ctx) {
  const floorLib = floorAddon(ctx);
  return sizes(ctx).map((size) => ({
    label: `append ${ctx.sizeName(size)} records`,
    run: async () => {
      const file = path.join(ctx.dir, `record-${size}.pmu`);
      const unit = PersistentMemoryUnit.open(file, { size: LOG_BYTES + (8 << 20) });
      try {
        const log = unit.createRegion('log', LOG_BYTES);
        const writer = (await openPrimary(log, { mode: 'append', heartbeatMs: 0 })).writer;
        const reader = await CheckpointReader.open(log);
        const update = Buffer.alloc(size, 0x5a);
        const n = Math.max(3, Math.floor(ctx.iterations(size) / 2));
        const perBatch = Math.max(1, Math.floor(LOG_BYTES / 4 / (size + 64)));
        let seconds = 0;
        for (let done = 0; done < n; ) {
          const k = Math.min(perBatch, n - done);
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < k; i++) await writer.append(update);
          seconds += Number(process.hrtime.bigint() - t0) / 1e9;
          done += k;
          const batch = await reader.readBatch();
          if (batch.records.length) await reader.clear(batch.records[batch.records.length - 1].sequence);
        }
        await writer.close();
        const appendRate = (n * size) / seconds;
        const append = { name: "append, 'flushed', one at a time", size, opsPerSec: n / seconds, bytesPerSec: appendRate, curve: { chart: 'record-size', series: "pmu append, 'flushed'", x: size, bytesPerSec: appendRate } };
        if (!floorLib) return [append];
        const floor = summarize(floorLib.measureFloor(path.join(ctx.dir, 'record-floor'), Math.max(1 << 24, Math.ceil(size / 4096) * 4096 * 2), size, n, true));
        const floorRate = size / (floor.mean / 1e6);
        return [
          { ...append, note: `${((appendRate / floorRate) * 100).toFixed(0)}% of the floor` },
          { name: 'memcpy + msync floor (C)', size, p50: floor.p50, p99: floor.p99, bytesPerSec: floorRate, curve: { chart: 'record-size', series: 'memcpy + msync floor (C)', x: size, bytesPerSec: floorRate } },
        ];
      } finally {
        await unit.close();
        require('node:fs').rmSync(file, { force: true });
      }
    },
  }));
}

module.exports = {
  name: 'record-size',
  async setup() {
    return {};
  },
  cases,
};
