'use strict';
// pmu embedded: LocalRegion write/read latency at each size and durability, ops/s
// throughput for the fast path, and group commit with 16 concurrent durable writers.
const path = require('node:path');
const { PersistentMemoryUnit } = require('pmu');
const { floorAddon } = require('../lib/floor-addon');
const { summarize, sampleSync, sampleAsync } = require('../lib/stats');
const { measure } = require('../lib/throughput');
const { bytesWrittenDuring } = require('../lib/disk');

const WRITERS = 16;
const ROUNDS = 20;
/** The floors suite's file size for 4 KiB writes (floors.js floorFile). */
const FLOOR_FILE_BYTES = 1 << 24;

module.exports = {
  name: 'embedded',
  async setup(ctx) {
    const unit = PersistentMemoryUnit.open(path.join(ctx.dir, 'embedded.pmu'), { size: 96 << 20 });
    const region = unit.createRegion('bench', 40 << 20);
    return { unit, region };
  },
  async teardown(state) {
    await state.unit.close();
  },
  cases(ctx) {
    const cases = [];
    for (const size of ctx.sizes) {
      const data = Buffer.alloc(size, 0x5a);
      const target = Buffer.alloc(size);
      const n = ctx.iterations(size);
      cases.push({
        label: `embedded writes ${ctx.sizeName(size)}`,
        run: async ({ region }) => {
          const rows = [
            { name: "writeSync, 'mapped'", size, ...summarize(sampleSync(() => region.writeSync(0, data, { durability: 'mapped' }), n)) },
          ];
          // Warm up outside the window, so the device bytes are divided by the writes that made them.
          for (let i = 0; i < Math.min(200, n); i++) region.writeSync(0, data);
          const flushed = await bytesWrittenDuring(ctx.dir, () => sampleSync(() => region.writeSync(0, data), n, 0));
          rows.push({ name: "writeSync, 'flushed'", size, ...summarize(flushed.result), deviceBytesPerOp: flushed.bytes === undefined ? undefined : flushed.bytes / n });
          rows.push({ name: "await write, 'flushed'", size, ...summarize(await sampleAsync(() => region.write(0, data), n)) });
          rows.push({ name: 'readIntoSync', size, ...summarize(sampleSync(() => region.readIntoSync(0, target), n)) });
          return rows;
        },
      });
    }
    const data = Buffer.alloc(4096, 0x5a);
    const floor = floorAddon(ctx);
    if (floor) {
      cases.push({
        // The headline's durable ratio: pmu and the msync floor in alternating rounds, as the
        // remote rows are, since this shared disk's flush time drifts between suites minutes apart.
        label: "embedded 4 KiB 'flushed', interleaved with the msync floor",
        run: async ({ region }) => {
          const per = Math.ceil(ctx.iterations(4096) / ROUNDS);
          const floorDir = path.join(ctx.dir, 'floor-interleaved');
          const floorSamples = [];
          const durable = [];
          for (let i = 0; i < Math.min(200, per); i++) region.writeSync(0, data);
          for (let round = 0; round < ROUNDS; round++) {
            floorSamples.push(...floor.measureFloor(floorDir, FLOOR_FILE_BYTES, 4096, per, true));
            durable.push(...sampleSync(() => region.writeSync(0, data), per, 0));
          }
          return [
            { name: 'memcpy + msync (C), interleaved', size: 4096, ...summarize(floorSamples) },
            { name: "writeSync, 'flushed', interleaved", size: 4096, ...summarize(durable) },
          ];
        },
      });
    }
    cases.push({
      label: 'embedded throughput',
      run: async ({ region }) => {
        const maxTime = ctx.quick ? 0.2 : 1;
        const write = await measure(() => region.writeSync(0, data, { durability: 'mapped' }), { maxTime });
        const target = Buffer.alloc(4096);
        const read = await measure(() => region.readIntoSync(0, target), { maxTime });
        return [
          { name: "writeSync 'mapped' throughput", size: 4096, opsPerSec: write.hz, note: `±${write.rme.toFixed(1)}%` },
          { name: 'readIntoSync throughput', size: 4096, opsPerSec: read.hz, note: `±${read.rme.toFixed(1)}%` },
        ];
      },
    });
    // Group commit: WRITERS writers, each awaiting its own durable write then issuing the next.
    // 'own page': every writer dirties a page of its own, so one msync writes back 16 pages;
    // 'packed': 64-byte records side by side (a log), so one msync writes back one page.
    for (const [layout, recordSize, stride] of [['own 4 KiB page each', 4096, 4096], ['packed 64 B records', 64, 64]]) {
      cases.push({
        label: `group commit, ${WRITERS} writers, ${layout}`,
        run: async ({ unit, region }) => {
          const record = Buffer.alloc(recordSize, 0x5a);
          const perWriter = ctx.quick ? 20 : 200;
          const serialN = ctx.quick ? 50 : 500;
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < serialN; i++) await region.write(0, record);
          const serialRate = serialN / (Number(process.hrtime.bigint() - t0) / 1e9);
          const flushesBefore = unit.groupFlushes;
          const t1 = process.hrtime.bigint();
          await Promise.all(
            Array.from({ length: WRITERS }, async (_, w) => {
              for (let i = 0; i < perWriter; i++) await region.write(w * stride, record);
            }),
          );
          const concurrentRate = (WRITERS * perWriter) / (Number(process.hrtime.bigint() - t1) / 1e9);
          const flushes = unit.groupFlushes - flushesBefore;
          // The ceiling: WRITERS msyncs of one page against one msync of WRITERS pages, in C, now.
          const floor = floorAddon(ctx);
          let ceiling = '';
          if (floor && recordSize === 4096) {
            const dir = path.join(ctx.dir, 'group-ceiling');
            const one = summarize(floor.measureFloor(dir, FLOOR_FILE_BYTES, 4096, ctx.quick ? 20 : 200, true)).p50;
            const all = summarize(floor.measureFloor(dir, FLOOR_FILE_BYTES, 4096 * WRITERS, ctx.quick ? 20 : 200, true)).p50;
            ceiling = `; ceiling ${((WRITERS * one) / all).toFixed(1)}× (${WRITERS} × msync of 4 KiB ÷ msync of ${(4 * WRITERS)} KiB, C, this run)`;
          }
          return [
            { name: `serial durable writes, one writer (${layout})`, size: recordSize, opsPerSec: serialRate },
            {
              name: `${WRITERS} concurrent durable writers (${layout})`,
              size: recordSize,
              opsPerSec: concurrentRate,
              ratio: concurrentRate / serialRate,
              note: `${((WRITERS * perWriter) / flushes).toFixed(1)} writes per msync; ${(concurrentRate / serialRate).toFixed(1)}× the serial rate${ceiling}`,
            },
          ];
        },
      });
    }
    return cases;
  },
};
