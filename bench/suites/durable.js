'use strict';
// The durable remote ack against the peer a Node team would pick instead, in one interleaved
// series: a pmu server in its own process and Redis with `appendonly yes` + `appendfsync
// always`, both on the server CPU, measured in alternating short rounds with their floors (the
// Node TCP ping-pong and a memcpy + msync of 4 KiB in C), so a burst of load on this shared
// machine lands on every series alike. pmu's rows: a 4 KiB 'flushed' write and a 4 KiB
// checkpoint append ('flushed'); Redis's: SET and XADD of the same 4 KiB.
const path = require('node:path');
const { PmuClient, openPrimary } = require('pmu');
const { summarize, sampleAsync } = require('../lib/stats');
const { startChild } = require('../lib/child');
const { startPmuServer } = require('../lib/pmu-server');
const { hasRedis, startRedis } = require('../lib/redis');
const { PingPong, frameOf } = require('../lib/pingpong');
const { floorAddon } = require('../lib/floor-addon');

const ECHO = path.join(__dirname, '..', 'peers', 'echo-server.js');
const SIZE = 4096;
/** Many short rounds (a multiple of the six series, for the rotation below): each series gets SAMPLES samples in all. */
const ROUNDS = 24;
const SAMPLES = 5000;
const ROUND_WARM_UP = 20;
const FLOOR_FILE_BYTES = 64 << 20;

module.exports = {
  name: 'durable',
  async setup(ctx) {
    const state = { skipped: [] };
    state.server = await startPmuServer(ctx, 'durable-server', { env: process.env.PMU_BENCH_FLUSH ? { PMU_BENCH_FLUSH: process.env.PMU_BENCH_FLUSH } : undefined });
    state.client = await PmuClient.connect(state.server.urls.TCP, state.server.credentials);
    await state.client.createRegion('durable-write', 1 << 20);
    await state.client.createRegion('durable-log', 64 << 20);
    state.region = await state.client.openRegion('durable-write');
    state.log = await state.client.openRegion('durable-log');
    state.writer = (await openPrimary(state.log, { mode: 'append' })).writer;
    state.echo = await startChild(process.execPath, [ECHO, 'tcp'], /ready (\d+)/);
    state.pingPong = await PingPong.open({ port: Number(state.echo.match[1]) });
    if (hasRedis()) state.redis = await startRedis(ctx, 'redis-durable', ['--appendonly', 'yes', '--appendfsync', 'always']);
    else state.skipped.push('Redis: redis-server or ioredis is missing: the Redis rows are skipped (bash bench/peers/install.sh as root)');
    state.floor = floorAddon(ctx);
    for (const line of state.skipped) ctx.note(line);
    return state;
  },
  async teardown(state) {
    state.pingPong.close();
    await state.echo.stop();
    if (state.redis) {
      state.redis.client.disconnect();
      await state.redis.server.stop();
    }
    await state.writer.close();
    await state.client.close();
    await state.server.stop();
  },
  cases(ctx) {
    return [
      {
        label: '4 KiB durable acks, pmu and Redis interleaved with their floors',
        run: async (state) => {
          const data = Buffer.alloc(SIZE, 0x5a);
          const frame = frameOf(SIZE);
          const total = ctx.quick ? 250 : SAMPLES;
          const per = Math.ceil(total / ROUNDS);
          const floorDir = path.join(ctx.dir, 'durable-floor');
          const series = { pingPong: [], msync: [], write: [], append: [], set: [], xadd: [] };
          const redis = state.redis && state.redis.client;
          // 64 MiB of log holds every append of a full run (5,000 × 4 KiB and their headers).
          const append = () => state.writer.append(data);
          // Each round runs the series in another order (rotated by one), so that none always
          // follows the same neighbour: the floor's file create and delete, or Redis's fsyncs,
          // leave journal work behind that would otherwise land on one series only.
          const steps = [
            async () => series.pingPong.push(...(await sampleAsync(() => state.pingPong.send(frame), per, ROUND_WARM_UP))),
            async () => state.floor && series.msync.push(...state.floor.measureFloor(floorDir, FLOOR_FILE_BYTES, SIZE, per + ROUND_WARM_UP, true).subarray(ROUND_WARM_UP)),
            async () => series.write.push(...(await sampleAsync((i) => state.region.write((i % 64) * SIZE, data, { durability: 'flushed' }), per, ROUND_WARM_UP))),
            async () => redis && series.set.push(...(await sampleAsync((i) => redis.set(`k${i % 64}`, data), per, ROUND_WARM_UP))),
            async () => series.append.push(...(await sampleAsync(append, per, ROUND_WARM_UP))),
            async () => redis && series.xadd.push(...(await sampleAsync(() => redis.xadd('log', 'MAXLEN', '~', '10000', '*', 'v', data), per, ROUND_WARM_UP))),
          ];
          for (let round = 0; round < ROUNDS; round++) {
            for (let k = 0; k < steps.length; k++) await steps[(round + k) % steps.length]();
          }
          const rows = [];
          const pingPong = summarize(series.pingPong);
          rows.push({ name: 'Node TCP ping-pong (floor), interleaved', size: SIZE, ...pingPong });
          let physical;
          if (series.msync.length > 0) {
            const msync = summarize(series.msync);
            rows.push({ name: 'memcpy + msync (C floor), interleaved', size: SIZE, ...msync });
            physical = pingPong.p50 + msync.p50;
          }
          const set = redis ? summarize(series.set) : undefined;
          const xadd = redis ? summarize(series.xadd) : undefined;
          const note = (mine, peer) => {
            const parts = [];
            if (peer) parts.push(`p50 ${(mine.p50 / peer.p50).toFixed(2)}×, p99 ${(mine.p99 / peer.p99).toFixed(2)}× Redis`);
            if (physical) parts.push(`${(mine.p50 - physical).toFixed(0)} µs over ping-pong + msync`);
            return parts.join('; ');
          };
          const write = summarize(series.write);
          const append2 = summarize(series.append);
          rows.push({ name: "pmu TCP write, 'flushed', interleaved", size: SIZE, ...write, note: note(write, set) });
          if (set) rows.push({ name: 'Redis SET, appendfsync always, interleaved', size: SIZE, ...set });
          rows.push({ name: "pmu TCP checkpoint append, 'flushed', interleaved", size: SIZE, ...append2, note: note(append2, xadd) });
          if (xadd) rows.push({ name: 'Redis XADD, appendfsync always, interleaved', size: SIZE, ...xadd });
          return rows;
        },
      },
      {
        label: "4 KiB 'flushed' writes during a createRegion in reused space, against idle",
        run: async (state) => {
          // A server of its own with room for one big region twice over: created and deleted
          // first, so the new one's extent needs its zeros written (1–2 s per GiB).
          const big = ctx.quick ? 64 << 20 : 1 << 30;
          const server = await startPmuServer(ctx, 'durable-create-server', { unitBytes: big + (64 << 20) });
          try {
            const admin = await PmuClient.connect(server.urls.TCP, server.credentials);
            const client = await PmuClient.connect(server.urls.TCP, server.credentials);
            await admin.createRegion('old', big);
            await admin.deleteRegion('old');
            await admin.createRegion('w', 1 << 20);
            const region = await client.openRegion('w');
            const data = Buffer.alloc(SIZE, 0x5a);
            const write = (i) => region.write((i % 64) * SIZE, data, { durability: 'flushed' });
            // Warm-up first: the deleted region's create prefetched 64 MiB, whose reads must be done.
            const idle = await sampleAsync(write, ctx.quick ? 200 : 3000, ctx.quick ? 100 : 1000);
            const during = [];
            let creating = true;
            const t0 = process.hrtime.bigint();
            const create = admin.createRegion('fresh', big).finally(() => (creating = false));
            for (let i = 0; creating; i++) {
              const t = process.hrtime.bigint();
              await write(i);
              during.push(Number(process.hrtime.bigint() - t));
            }
            await create;
            const createMs = Number(process.hrtime.bigint() - t0) / 1e6;
            await client.close();
            await admin.close();
            const a = summarize(idle);
            const b = summarize(during);
            return [
              { name: "pmu TCP write, 'flushed', idle server", size: SIZE, ...a },
              { name: `pmu TCP write, 'flushed', during a ${ctx.sizeName(big)} createRegion in reused space`, size: SIZE, ...b, note: `p99 ${(b.p99 / a.p99).toFixed(2)}× idle; the create took ${createMs.toFixed(0)} ms, ${b.n} writes meanwhile` },
            ];
          } finally {
            await server.stop();
          }
        },
      },
    ];
  },
};
