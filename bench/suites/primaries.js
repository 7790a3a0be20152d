'use strict';
// Checkpoint primaries, each with its own connection and its own append-mode log region on
// one server, each appending durably one record at a time: the aggregate appends/s and how
// many writes one server msync served (group commit). Redis XADD with appendfsync always,
// one connection and stream per primary, is the peer.
const { startPmuServer } = require('../lib/pmu-server');
const { hasRedis, startRedis } = require('../lib/redis');
const { PmuClient, openPrimary } = require('pmu');
const { lanes, perLane, openMany } = require('../lib/lanes');

const RECORD = 256;
const LOG_BYTES = 1 << 20;

function counts(ctx) {
  return ctx.quick ? [1, 8, 64] : [1, 4, 16, 64];
}

async function pmuPoint(server, count, total, tag) {
  const clients = await openMany(count, () => PmuClient.connect(server.urls.TCP, server.credentials));
  const admin = clients[0];
  const names = Array.from({ length: count }, (_, i) => `log-${tag}-${i}`);
  try {
    // Each primary appends at most LOG_BYTES / 2 per point: the ring never fills, no reader needed.
    const per = Math.min(perLane(total, count), Math.floor(LOG_BYTES / 2 / (RECORD + 64)));
    for (const name of names) await admin.createRegion(name, LOG_BYTES);
    const regions = await Promise.all(clients.map((c, i) => c.openRegion(names[i])));
    const writers = await Promise.all(regions.map((r) => openPrimary(r, { mode: 'append', heartbeatMs: 0 }).then((t) => t.writer)));
    const update = Buffer.alloc(RECORD, 0x5a);
    await lanes(count, 2, (lane) => writers[lane].append(update));
    const before = await server.stats();
    const result = await lanes(count, per, (lane) => writers[lane].append(update));
    const after = await server.stats();
    await Promise.all(writers.map((w) => w.close()));
    const flushes = after.flushes - before.flushes;
    const writes = after.flushedWrites - before.flushedWrites;
    return { ...result, groupSize: flushes > 0 ? writes / flushes : undefined };
  } finally {
    for (const name of names) await admin.deleteRegion(name).catch(() => undefined);
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function redisPoint(redis, count, total) {
  const clients = await openMany(count, () => redis.connect());
  try {
    const value = Buffer.alloc(RECORD, 0x5a);
    await lanes(count, 2, (lane) => clients[lane].xadd(`s${lane}`, '*', 'v', value));
    return await lanes(count, perLane(total, count), (lane) => clients[lane].xadd(`s${lane}`, '*', 'v', value));
  } finally {
    for (const c of clients) c.disconnect();
  }
}

function cases(ctx) {
  return counts(ctx).map((count) => ({
    label: `${count} checkpoint primar${count > 1 ? 'ies' : 'y'}, durable appends`,
    run: async (state) => {
      const total = ctx.quick ? 300 : 3000;
      const rows = [];
      const p = await pmuPoint(state.server, count, total, count);
      rows.push({
        name: `pmu append, 'flushed', ${count} primar${count > 1 ? 'ies' : 'y'}`,
        size: RECORD,
        ...p,
        note: p.groupSize !== undefined ? `${p.groupSize.toFixed(1)} appends per server msync` : '',
        curve: { chart: 'primaries', series: "pmu append, 'flushed'", x: count, groupSize: p.groupSize },
      });
      if (state.redisAof) {
        const r = await redisPoint(state.redisAof, count, total);
        rows.push({ name: `Redis XADD, appendfsync always, ${count} connection${count > 1 ? 's' : ''}`, size: RECORD, ...r, curve: { chart: 'primaries', series: 'Redis XADD, appendfsync always', x: count } });
      }
      return rows;
    },
  }));
}

module.exports = {
  name: 'primaries',
  async setup(ctx) {
    const state = { server: await startPmuServer(ctx, 'primaries-server') };
    if (hasRedis()) state.redisAof = await startRedis(ctx, 'primaries-redis-aof', ['--appendonly', 'yes', '--appendfsync', 'always']);
    else ctx.note('primaries: redis-server or ioredis is missing: the Redis XADD curve is left out (bash bench/peers/install.sh as root)');
    return state;
  },
  async teardown(state) {
    if (state.redisAof) {
      state.redisAof.client.disconnect();
      await state.redisAof.server.stop();
    }
    await state.server.stop();
  },
  cases,
};
