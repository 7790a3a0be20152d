'use strict';
// The checkpoint protocol, embedded and through a PMU server: a durable append (the primary's
// hot path) one at a time and pipelined, an overwrite checkpoint at each size, and the backup
// reading a batch and clearing it. The backup keeps clearing, so the ring never fills.
// First pass against rewrite: the same 4 KiB 'flushed' write and append on pages never written
// since the region was made, and on pages written before, interleaved one for one so that the
// machine's drift hits both alike; with the device bytes each op cost (no folio trap).
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { PersistentMemoryUnit, CheckpointReader, openPrimary, PmuClient } = require('pmu');
const { summarize, sampleAsync } = require('../lib/stats');
const { startChild } = require('../lib/child');
const { windowed } = require('../lib/throughput');
const { bytesWrittenDuring } = require('../lib/disk');

const SERVER = path.join(__dirname, '..', 'peers', 'pmu-server.js');
const LOG_BYTES = 32 << 20;
const SNAPSHOT_BYTES = 36 << 20;

async function regionsFor(kind, state) {
  if (kind === 'embedded') {
    return { log: state.unit.createRegion(`log-${state.n}`, LOG_BYTES), slots: state.unit.createRegion(`slots-${state.n++}`, SNAPSHOT_BYTES) };
  }
  return { log: await state.client.createRegion(`log-${state.n}`, LOG_BYTES), slots: await state.client.createRegion(`slots-${state.n++}`, SNAPSHOT_BYTES) };
}

async function makeRegion(kind, state, name, size) {
  return kind === 'embedded' ? state.unit.createRegion(`${name}-${state.n++}`, size) : state.client.createRegion(`${name}-${state.n++}`, size);
}

/** p50 of both passes, their ratio, and device bytes per op over the interleaved loop. */
async function interleaved(ctx, n, first, rewrite) {
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  const measured = await bytesWrittenDuring(ctx.dir, async () => {
    for (let i = 0; i < n; i++) {
      let t0 = process.hrtime.bigint();
      await first(i);
      a[i] = Number(process.hrtime.bigint() - t0);
      t0 = process.hrtime.bigint();
      await rewrite(i);
      b[i] = Number(process.hrtime.bigint() - t0);
    }
  });
  const deviceBytesPerOp = measured.bytes === undefined ? undefined : measured.bytes / (2 * n);
  return { first: summarize(a), rewrite: summarize(b), deviceBytesPerOp };
}

async function firstPassRows(ctx, kind, where, state) {
  const size = 4096;
  const n = ctx.quick ? 100 : 1000;
  const data = Buffer.alloc(size, 0x5a);
  const rows = [];
  const push = (what, r) => {
    const ratio = r.first.p50 / r.rewrite.p50;
    rows.push({ name: `${where}: ${what}, first pass (fresh region)`, size, ...r.first, deviceBytesPerOp: r.deviceBytesPerOp });
    rows.push({ name: `${where}: ${what}, rewrite (same pages again)`, size, ...r.rewrite, ratio, note: `first pass / rewrite = ${ratio.toFixed(2)}× (p50)` });
  };
  // Writes: pages [0, n) written once beforehand are rewritten while pages [n, 2n) see their first write.
  const region = await makeRegion(kind, state, 'firstpass', 2 * n * size);
  const write = (offset) => (kind === 'embedded' ? region.writeSync(offset, data) : region.write(offset, data));
  for (let i = 0; i < n; i++) await write(i * size);
  push("write, 'flushed'", await interleaved(ctx, n, (i) => write((n + i) * size), (i) => write(i * size)));
  // Appends: one log on a fresh region, one on a region every page of which was written before.
  const logBytes = n * (size + 64) + (1 << 20);
  const fresh = await makeRegion(kind, state, 'fresh-log', logBytes);
  const used = await makeRegion(kind, state, 'used-log', logBytes);
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 0; at < logBytes; at += zeros.length) await used.write(at, zeros.subarray(0, Math.min(zeros.length, logBytes - at)));
  const freshWriter = (await openPrimary(fresh, { mode: 'append' })).writer;
  const usedWriter = (await openPrimary(used, { mode: 'append' })).writer;
  push("append, 'flushed'", await interleaved(ctx, n, () => freshWriter.append(data), () => usedWriter.append(data)));
  await freshWriter.close();
  await usedWriter.close();
  return rows;
}

module.exports = {
  name: 'checkpoint',
  async setup(ctx) {
    const unit = PersistentMemoryUnit.open(path.join(ctx.dir, 'checkpoint.pmu'), { size: 160 << 20 });
    const secret = crypto.randomBytes(32).toString('hex');
    const dataDir = path.join(ctx.dir, 'checkpoint-server');
    fs.mkdirSync(dataDir, { recursive: true });
    const server = await startChild(process.execPath, [SERVER, dataDir], /ready (\S+) (\S+)/, { env: { PMU_BENCH_SECRET: secret } });
    const client = await PmuClient.connect(server.match[1], { user: 'bench', secret, timeoutMs: 60_000 });
    return { embedded: { unit, n: 0 }, remote: { client, n: 0 }, unit, server, client };
  },
  async teardown(state) {
    await state.client.close();
    await state.server.stop();
    await state.unit.close();
  },
  cases(ctx) {
    const cases = [];
    for (const kind of ['embedded', 'remote']) {
      const where = kind === 'embedded' ? 'embedded' : 'remote TCP';
      cases.push({ label: `${where} first pass against rewrite`, run: (state) => firstPassRows(ctx, kind, where, state[kind]) });
    }
    for (const kind of ['embedded', 'remote']) {
      const where = kind === 'embedded' ? 'embedded' : 'remote TCP';
      cases.push({
        label: `${where} append and overwrite`,
        run: async (state) => {
          const rows = [];
          const { log, slots } = await regionsFor(kind, state[kind]);
          const writer = (await openPrimary(log, { mode: 'append' })).writer;
          const reader = await CheckpointReader.open(log);
          const clearAll = async () => {
            const batch = await reader.readBatch();
            if (batch.records.length > 0) await reader.clear(batch.records[batch.records.length - 1].sequence);
            return batch.records.length;
          };
          for (const size of [64, 4096]) {
            const update = Buffer.alloc(size, 0x5a);
            const n = ctx.iterations(size);
            const s = summarize(await sampleAsync(() => writer.append(update), n, 50));
            rows.push({ name: `${where}: append, 'flushed', one at a time`, size, ...s });
            await clearAll();
            const total = ctx.quick ? 500 : 5000;
            const opsPerSec = await windowed(() => writer.append(update), total, 64);
            rows.push({ name: `${where}: append, 'flushed', 64 in flight`, size, opsPerSec, bytesPerSec: opsPerSec * size });
            const t0 = process.hrtime.bigint();
            const cleared = await clearAll();
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            rows.push({ name: `${where}: backup reads a batch and clears it`, size, opsPerSec: cleared / (ms / 1000), note: `${cleared} records in ${ms.toFixed(1)} ms` });
          }
          await writer.close();
          const overwriter = (await openPrimary(slots, { mode: 'overwrite' })).writer;
          for (const size of ctx.sizes.filter((s) => s >= 4096)) {
            const state = Buffer.alloc(size, 0x5a);
            const n = Math.max(3, Math.floor(ctx.iterations(size) / 2));
            const s = summarize(await sampleAsync(() => overwriter.checkpoint(state), n, 2));
            rows.push({ name: `${where}: overwrite checkpoint, 'flushed'`, size, ...s, bytesPerSec: size >= 1 << 20 ? size / (s.p50 / 1e6) : undefined });
          }
          await overwriter.close();
          return rows;
        },
      });
    }
    return cases;
  },
};
