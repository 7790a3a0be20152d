'use strict';
// The checkpoint protocol, embedded and through a PMU server: a durable append (the primary's
// hot path) one at a time and pipelined, an overwrite checkpoint at each size, and the backup
// reading a batch and clearing it. The backup keeps clearing, so the ring never fills.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { PersistentMemoryUnit, CheckpointWriter, CheckpointReader } = require('../../dist');
const { PmuClient } = require('../../dist/net/client');
const { summarize, sampleAsync } = require('../lib/stats');
const { startChild } = require('../lib/child');
const { windowed } = require('../lib/throughput');

const SERVER = path.join(__dirname, '..', 'peers', 'pmu-server.js');
const LOG_BYTES = 32 << 20;
const SNAPSHOT_BYTES = 36 << 20;

async function regionsFor(kind, state) {
  if (kind === 'embedded') {
    return { log: state.unit.createRegion(`log-${state.n}`, LOG_BYTES), slots: state.unit.createRegion(`slots-${state.n++}`, SNAPSHOT_BYTES) };
  }
  return { log: await state.client.createRegion(`log-${state.n}`, LOG_BYTES), slots: await state.client.createRegion(`slots-${state.n++}`, SNAPSHOT_BYTES) };
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
      cases.push({
        label: `${where} append and overwrite`,
        run: async (state) => {
          const rows = [];
          const { log, slots } = await regionsFor(kind, state[kind]);
          const writer = await CheckpointWriter.open(log, { mode: 'append' });
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
          const overwriter = await CheckpointWriter.open(slots, { mode: 'overwrite' });
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
