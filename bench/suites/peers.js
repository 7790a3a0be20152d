'use strict';
// What users would pick instead, on the same machine in the same run: Redis (AOF off, and
// appendonly with appendfsync always) through ioredis, lmdb-js (durable and noSync), and a
// plain fs write + fdatasync. A peer that is missing is skipped with a line saying so.
const fs = require('node:fs');
const path = require('node:path');
const { summarize, sampleAsync, sampleSync } = require('../lib/stats');
const { hasRedis, startRedis } = require('../lib/redis');
const { windowed } = require('../lib/throughput');

async function redisRows(ctx, peer, label) {
  const value = Buffer.alloc(4096, 0x5a);
  const n = ctx.iterations(4096);
  const rows = [];
  rows.push({ name: `Redis ${label}: SET`, size: 4096, ...summarize(await sampleAsync((i) => peer.client.set(`k${i % 100}`, value), n)) });
  rows.push({ name: `Redis ${label}: GET`, size: 4096, ...summarize(await sampleAsync((i) => peer.client.getBuffer(`k${i % 100}`), n)) });
  const batches = ctx.quick ? 5 : 30;
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < batches; b++) {
    const pipeline = peer.client.pipeline();
    for (let i = 0; i < 100; i++) pipeline.set(`p${i}`, value);
    await pipeline.exec();
  }
  const perSec = (batches * 100) / (Number(process.hrtime.bigint() - t0) / 1e9);
  rows.push({ name: `Redis ${label}: SET, pipeline of 100`, size: 4096, opsPerSec: perSec });
  rows.push({ name: `Redis ${label}: XADD (log append)`, size: 4096, ...summarize(await sampleAsync(() => peer.client.xadd('log', '*', 'v', value), n)) });
  rows.push({ name: `Redis ${label}: XRANGE 100 entries`, size: 4096 * 100, ...summarize(await sampleAsync(() => peer.client.xrange('log', '-', '+', 'COUNT', 100), Math.max(20, n / 10))) });
  return rows;
}

module.exports = {
  name: 'peers',
  async setup(ctx) {
    const state = { skipped: [] };
    let ioredis = true;
    try {
      require.resolve('ioredis');
    } catch {
      ioredis = false;
    }
    if (!ioredis) {
      state.skipped.push('Redis: the ioredis client is not installed: Redis rows skipped (npm install ioredis, and a redis-server)');
    } else if (hasRedis()) {
      state.redisPlain = await startRedis(ctx, 'redis-plain', ['--appendonly', 'no']);
      state.redisAof = await startRedis(ctx, 'redis-aof', ['--appendonly', 'yes', '--appendfsync', 'always']);
    } else {
      state.skipped.push(`Redis: redis-server is not installed: Redis rows skipped (apt-get install redis-server, or bash ${path.join(__dirname, '..', 'peers', 'install.sh')} as root)`);
    }
    try {
      state.lmdb = require('lmdb');
    } catch (error) {
      const missing = error.code === 'MODULE_NOT_FOUND' && /'lmdb'/.test(error.message);
      state.skipped.push(missing ? 'lmdb-js: not installed: lmdb rows skipped (npm install lmdb)' : `lmdb-js: cannot load (${error.message.split('\n')[0]}): lmdb rows skipped`);
    }
    for (const line of state.skipped) ctx.note(line);
    return state;
  },
  async teardown(state) {
    for (const peer of [state.redisPlain, state.redisAof]) {
      if (!peer) continue;
      peer.client.disconnect();
      await peer.server.stop();
    }
  },
  cases(ctx) {
    const value = Buffer.alloc(4096, 0x5a);
    const n = ctx.iterations(4096);
    return [
      {
        label: 'Redis, no persistence',
        run: (state) => (state.redisPlain ? redisRows(ctx, state.redisPlain, 'AOF off') : []),
      },
      {
        label: 'Redis, appendfsync always',
        run: (state) => (state.redisAof ? redisRows(ctx, state.redisAof, 'appendfsync always') : []),
      },
      {
        label: 'lmdb-js',
        run: async (state) => {
          if (!state.lmdb) return [];
          const rows = [];
          for (const noSync of [false, true]) {
            const db = state.lmdb.open({ path: path.join(ctx.dir, `lmdb-${noSync}`), noSync, compression: false, encoding: 'binary' });
            const label = noSync ? 'lmdb-js noSync' : 'lmdb-js durable';
            rows.push({ name: `${label}: await put`, size: 4096, ...summarize(await sampleAsync((i) => db.put(`k${i % 100}`, value), Math.min(n, noSync ? n : 500))) });
            rows.push({ name: `${label}: putSync`, size: 4096, ...summarize(sampleSync((i) => db.putSync(`k${i % 100}`, value), Math.min(n, noSync ? n : 500))) });
            const total = ctx.quick ? 500 : 5000;
            const rate = await windowed((i) => db.put(`w${i % 1000}`, value), total, 256);
            rows.push({ name: `${label}: put, 256 in flight`, size: 4096, opsPerSec: rate });
            await db.close();
          }
          return rows;
        },
      },
      {
        label: 'fs write + fdatasync',
        run: () => {
          const file = path.join(ctx.dir, 'fdatasync.bin');
          const fd = fs.openSync(file, 'w+');
          try {
            const overwrite = sampleSync(() => {
              fs.writeSync(fd, value, 0, value.length, 0);
              fs.fdatasyncSync(fd);
            }, Math.min(n, 500));
            let position = 4096;
            const append = sampleSync(() => {
              fs.writeSync(fd, value, 0, value.length, position);
              position += value.length;
              fs.fdatasyncSync(fd);
            }, Math.min(n, 500));
            return [
              { name: 'fs pwrite + fdatasync, overwrite', size: 4096, ...summarize(overwrite) },
              { name: 'fs pwrite + fdatasync, append', size: 4096, ...summarize(append) },
            ];
          } finally {
            fs.closeSync(fd);
          }
        },
      },
    ];
  },
};
