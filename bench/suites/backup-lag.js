'use strict';
// Backup lag: a primary appends 256 B records durably through the server at a fixed rate,
// and a backup on its own connection reads each batch and clears it. Per rate: the lag in
// milliseconds (record stamped at append, seen by the backup) and in records, until the pair
// cannot keep up (the primary falls short of the rate, or the lag passes a second).
const { startPmuServer } = require('../lib/pmu-server');
const { PmuClient, CheckpointReader, openPrimary } = require('pmu');
const { summarize } = require('../lib/stats');

const RECORD = 256;
const LOG_BYTES = 8 << 20;
const IN_FLIGHT = 64;

function rates(ctx) {
  return ctx.quick ? [1000, 5000, 20000] : [1000, 2000, 5000, 10000, 20000, 40000, 80000];
}

async function point(state, rate, seconds) {
  const { server } = state;
  const name = `lag-${rate}`;
  const admin = await PmuClient.connect(server.urls.TCP, server.credentials);
  const backupClient = await PmuClient.connect(server.urls.TCP, server.credentials);
  try {
    const region = await admin.createRegion(name, LOG_BYTES);
    const writer = (await openPrimary(region, { mode: 'append', whenFull: 'wait', fullWaitMs: 30_000, heartbeatMs: 0 })).writer;
    const reader = await CheckpointReader.open(await backupClient.openRegion(name));
    const lagNs = [];
    const lagRecords = [];
    let appended = 0;
    let issued = 0;
    let running = true;
    const follow = (async () => {
      for (;;) {
        const batch = await reader.readBatch();
        const now = process.hrtime.bigint();
        for (const record of batch.records) lagNs.push(Number(now - record.payload.readBigUInt64LE(0)));
        if (batch.records.length > 0) {
          const last = batch.records[batch.records.length - 1].sequence;
          lagRecords.push(issued - Number(last)); // records the primary had sent but the backup had not seen
          await reader.clear(last);
        } else if (!running) {
          break;
        } else {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
    })();
    const update = Buffer.alloc(RECORD, 0x5a);
    const total = Math.round(rate * seconds);
    const t0 = process.hrtime.bigint();
    let inFlight = 0;
    await new Promise((resolve, reject) => {
      const pump = () => {
        const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
        const due = Math.min(total, Math.floor(elapsed * rate) + 1);
        while (issued < due && inFlight < IN_FLIGHT) {
          issued++;
          inFlight++;
          const stamp = Buffer.from(update);
          stamp.writeBigUInt64LE(process.hrtime.bigint(), 0);
          writer.append(stamp).then(() => {
            inFlight--;
            appended++;
            if (appended === total) resolve();
          }, reject);
        }
        if (issued < total) setImmediate(pump);
      };
      pump();
    });
    const achieved = total / (Number(process.hrtime.bigint() - t0) / 1e9);
    running = false;
    await follow;
    await writer.close();
    return { lag: summarize(lagNs), lagRecords: summarize(lagRecords.map((n) => n * 1000)), achieved, seen: lagNs.length, total };
  } finally {
    await admin.deleteRegion(name).catch(() => undefined);
    await backupClient.close();
    await admin.close();
  }
}

function cases(ctx) {
  return [
    {
      label: 'backup lag at rising append rates',
      run: async (state) => {
        const rows = [];
        for (const rate of rates(ctx)) {
          const r = await point(state, rate, ctx.quick ? 0.3 : 1.5);
          const behind = r.achieved < rate * 0.9 || r.lag.p99 > 1e6;
          // lagRecords was scaled ×1000 so summarize's µs are records.
          rows.push({
            name: `backup lag, primary asked for ${rate}/s`,
            size: RECORD,
            p50: r.lag.p50,
            p99: r.lag.p99,
            opsPerSec: r.achieved,
            note: `lag p50 ${r.lagRecords.p50.toFixed(0)} records, max ${r.lagRecords.max.toFixed(0)}; ${r.seen}/${r.total} seen${behind ? '; cannot keep up' : ''}`,
            curve: { chart: 'backup-lag', series: 'lag', x: rate, achieved: r.achieved, lagRecordsP50: r.lagRecords.p50, lagRecordsMax: r.lagRecords.max },
          });
          if (behind) break;
        }
        return rows;
      },
    },
  ];
}

module.exports = {
  name: 'backup-lag',
  async setup(ctx) {
    return { server: await startPmuServer(ctx, 'lag-server') };
  },
  async teardown(state) {
    await state.server.stop();
  },
  cases,
};
