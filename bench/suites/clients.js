'use strict';
// Concurrent clients, each on its own connection, each writing 4 KiB to its own page one
// write at a time: p50/p99 per write and the aggregate rate, pmu ('mapped' and 'flushed')
// beside Redis SET (AOF off and appendfsync always) with the same number of connections.
const { startPmuServer } = require('../lib/pmu-server');
const { hasRedis, startRedis } = require('../lib/redis');
const { PmuClient } = require('pmu');
const { lanes, perLane, openMany } = require('../lib/lanes');

const SIZE = 4096;

async function pmuPoint(server, count, durability, total) {
  const clients = await openMany(count, () => PmuClient.connect(server.urls.TCP, server.credentials));
  try {
    const regions = await Promise.all(clients.map((c) => c.openRegion('clients')));
    const data = Buffer.alloc(SIZE, 0x5a);
    await lanes(count, 2, (lane) => regions[lane].write(lane * SIZE, data, { durability })); // connect warm-up
    return await lanes(count, perLane(total, count), (lane) => regions[lane].write(lane * SIZE, data, { durability }));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function redisPoint(redis, count, total) {
  const clients = await openMany(count, () => redis.connect());
  try {
    const value = Buffer.alloc(SIZE, 0x5a);
    await lanes(count, 2, (lane) => clients[lane].set(`c${lane}`, value));
    return await lanes(count, perLane(total, count), (lane) => clients[lane].set(`c${lane}`, value));
  } finally {
    for (const c of clients) c.disconnect();
  }
}

function counts(ctx) {
  return ctx.quick ? [1, 16, 64] : [1, 4, 16, 64, 256];
}

/** Cases for run.js; state: { server, redisPlain?, redisAof? }. */
function cases(ctx) {
  const out = [];
  for (const count of counts(ctx)) {
    out.push({
      label: `${count} clients, 4 KiB writes`,
      run: async (state) => {
        const rows = [];
        const row = (series, durable, r) => ({ name: `${series}, ${count} client${count > 1 ? 's' : ''}`, size: SIZE, ...r, curve: { chart: 'clients', series, x: count, durable } });
        const fast = ctx.quick ? 600 : 6000;
        const slow = ctx.quick ? 300 : 3000;
        rows.push(row("pmu TCP 'mapped'", false, await pmuPoint(state.server, count, 'mapped', fast)));
        rows.push(row("pmu TCP 'flushed'", true, await pmuPoint(state.server, count, 'flushed', slow)));
        if (state.redisPlain) rows.push(row('Redis SET, AOF off', false, await redisPoint(state.redisPlain, count, fast)));
        if (state.redisAof) rows.push(row('Redis SET, appendfsync always', true, await redisPoint(state.redisAof, count, slow)));
        return rows;
      },
    });
  }
  return out;
}

async function prepare(server) {
  const admin = await PmuClient.connect(server.urls.TCP, server.credentials);
  try {
    await admin.createRegion('clients', 256 * SIZE);
  } finally {
    await admin.close();
  }
}

module.exports = {
  name: 'clients',
  async setup(ctx) {
    const server = await startPmuServer(ctx, 'clients-server');
    await prepare(server);
    const state = { server };
    if (hasRedis()) {
      state.redisPlain = await startRedis(ctx, 'clients-redis-plain', ['--appendonly', 'no']);
      state.redisAof = await startRedis(ctx, 'clients-redis-aof', ['--appendonly', 'yes', '--appendfsync', 'always']);
    } else {
      ctx.note('clients: redis-server or ioredis is missing: the Redis curves are left out (bash bench/peers/install.sh as root)');
    }
    return state;
  },
  async teardown(state) {
    for (const redis of [state.redisPlain, state.redisAof]) {
      if (!redis) continue;
      redis.client.disconnect();
      await redis.server.stop();
    }
    await state.server.stop();
  },
  cases,
};
