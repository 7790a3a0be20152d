'use strict';
// pmu over the network: a PmuServer in its own process, the client here. Sequential write
// (both durability words) and read latency over TCP and a Unix socket at each size, pipelined
// throughput, a 16 MiB checkpoint, and 16 connections writing durably at once.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { PmuClient } = require('pmu');
const { summarize, sampleAsync } = require('../lib/stats');
const { startChild } = require('../lib/child');
const { windowed } = require('../lib/throughput');
const { PingPong, frameOf } = require('../lib/pingpong');

const ECHO = path.join(__dirname, '..', 'peers', 'echo-server.js');
/**
 * The headline pairs alternate in many short rounds, so that a burst of other work on this
 * shared machine (a writeback, another guest) lands on pmu and its floor alike; each series
 * gets HEADLINE_SAMPLES × ctx.iterations(4096) samples in all.
 */
const ROUNDS = 20;
const HEADLINE_SAMPLES = 5;
/** Per round, after the warm-up below: the pair is already warm, this only refills caches. */
const ROUND_WARM_UP = 20;
/**
 * Untimed round trips of each pair before the interleaved rounds: the figures are steady-state
 * p50s, and a fresh server (the one-core pair's) runs its first requests unoptimized. pmu's
 * longer path needs more calls than the echo pair's to be fully compiled, so without this the
 * first round measures V8's tiering, not the protocol.
 */
const WARM_UP = 2000;

async function warmUp(ctx, ...operations) {
  const count = ctx.quick ? WARM_UP / 10 : WARM_UP;
  for (const operation of operations) for (let i = 0; i < count; i++) await operation();
}

const SERVER = path.join(__dirname, '..', 'peers', 'pmu-server.js');
const REGION_SIZE = 40 << 20;
const CONNECTIONS = 16;

module.exports = {
  name: 'remote',
  async setup(ctx) {
    const secret = crypto.randomBytes(32).toString('hex');
    const dataDir = path.join(ctx.dir, 'pmu-server');
    fs.mkdirSync(dataDir, { recursive: true });
    const server = await startChild(process.execPath, [SERVER, dataDir], /ready (\S+) (\S+)/, { env: { PMU_BENCH_SECRET: secret } });
    const credentials = { user: 'bench', secret, timeoutMs: 60_000 };
    const urls = { TCP: server.match[1], Unix: server.match[2] };
    const admin = await PmuClient.connect(urls.TCP, credentials);
    await admin.createRegion('bench', REGION_SIZE);
    const clients = {};
    const regions = {};
    for (const [transport, url] of Object.entries(urls)) {
      clients[transport] = await PmuClient.connect(url, credentials);
      regions[transport] = await clients[transport].openRegion('bench');
    }
    // The ping-pong floor, measured here again in rounds interleaved with pmu's own, so that
    // drift on a shared machine (which core each process lands on) hits both alike.
    const echoTcp = await startChild(process.execPath, [ECHO, 'tcp'], /ready (\d+)/);
    const echoUnix = await startChild(process.execPath, [ECHO, 'unix', path.join(ctx.dir, 'remote-echo.sock')], /ready/);
    const pingPongs = { TCP: await PingPong.open({ port: Number(echoTcp.match[1]) }), Unix: await PingPong.open(path.join(ctx.dir, 'remote-echo.sock')) };
    // The same floor with both ends reading as pmu's do (net's onread into a reused buffer, no
    // readable stream), shown beside it: pmu's margin over a pair that skips the same work.
    const onreadEchoTcp = await startChild(process.execPath, [ECHO, 'tcp', '--onread'], /ready (\d+)/);
    const onreadEchoUnix = await startChild(process.execPath, [ECHO, 'unix', path.join(ctx.dir, 'remote-echo-onread.sock'), '--onread'], /ready/);
    const onreadPingPongs = { TCP: await PingPong.open({ port: Number(onreadEchoTcp.match[1]) }, { onread: true }), Unix: await PingPong.open(path.join(ctx.dir, 'remote-echo-onread.sock'), { onread: true }) };
    // The same pair again with both servers on the bench's own CPU, for the same-core figures.
    const sameDir = path.join(ctx.dir, 'pmu-server-same-core');
    fs.mkdirSync(sameDir, { recursive: true });
    const sameServer = await startChild(process.execPath, [SERVER, sameDir], /ready (\S+) (\S+)/, { env: { PMU_BENCH_SECRET: secret }, cpu: 0 });
    const sameClient = await PmuClient.connect(sameServer.match[1], credentials);
    await sameClient.createRegion('bench', 1 << 20);
    const sameEcho = await startChild(process.execPath, [ECHO, 'tcp'], /ready (\d+)/, { cpu: 0 });
    const sameOnreadEcho = await startChild(process.execPath, [ECHO, 'tcp', '--onread'], /ready (\d+)/, { cpu: 0 });
    const sameCore = {
      server: sameServer,
      client: sameClient,
      region: await sameClient.openRegion('bench'),
      echoes: [sameEcho, sameOnreadEcho],
      pingPong: await PingPong.open({ port: Number(sameEcho.match[1]) }),
      onreadPingPong: await PingPong.open({ port: Number(sameOnreadEcho.match[1]) }, { onread: true }),
    };
    return { server, admin, clients, regions, urls, credentials, echoes: [echoTcp, echoUnix, onreadEchoTcp, onreadEchoUnix], pingPongs, onreadPingPongs, sameCore };
  },
  async teardown(state) {
    state.sameCore.pingPong.close();
    state.sameCore.onreadPingPong.close();
    for (const pingPong of Object.values(state.onreadPingPongs)) pingPong.close();
    await state.sameCore.client.close();
    await state.sameCore.server.stop();
    for (const echo of state.sameCore.echoes) await echo.stop();
    for (const pingPong of Object.values(state.pingPongs)) pingPong.close();
    for (const echo of state.echoes) await echo.stop();
    for (const client of Object.values(state.clients)) await client.close();
    await state.admin.close();
    await state.server.stop();
  },
  cases(ctx) {
    const cases = [];
    for (const transport of ['TCP', 'Unix']) {
      cases.push({
        label: `${transport} 4 KiB, interleaved with the ping-pong floor`,
        run: async ({ regions, pingPongs, onreadPingPongs }) => {
          const region = regions[transport];
          const data = Buffer.alloc(4096, 0x5a);
          const frame = frameOf(4096);
          const per = Math.ceil((HEADLINE_SAMPLES * ctx.iterations(4096)) / ROUNDS);
          const samples = { floor: [], onreadFloor: [], mapped: [], flushed: [], read: [] };
          await warmUp(
            ctx,
            () => pingPongs[transport].send(frame),
            () => onreadPingPongs[transport].send(frame),
            () => region.write(0, data, { durability: 'mapped' }),
          );
          for (let round = 0; round < ROUNDS; round++) {
            samples.floor.push(...(await sampleAsync(() => pingPongs[transport].send(frame), per, ROUND_WARM_UP)));
            samples.onreadFloor.push(...(await sampleAsync(() => onreadPingPongs[transport].send(frame), per, ROUND_WARM_UP)));
            samples.mapped.push(...(await sampleAsync(() => region.write(0, data, { durability: 'mapped' }), per, ROUND_WARM_UP)));
            // A durable write is a flush (hundreds of µs): the usual count, not the headline's.
            samples.flushed.push(...(await sampleAsync(() => region.write(0, data, { durability: 'flushed' }), Math.ceil(per / HEADLINE_SAMPLES), 5)));
            samples.read.push(...(await sampleAsync(() => region.read(0, 4096), per, ROUND_WARM_UP)));
          }
          return [
            { name: `Node ${transport} ping-pong, interleaved`, size: 4096, ...summarize(samples.floor) },
            { name: `Node ${transport} ping-pong, onread at both ends, interleaved`, size: 4096, ...summarize(samples.onreadFloor) },
            { name: `${transport} write, 'mapped'`, size: 4096, ...summarize(samples.mapped) },
            { name: `${transport} write, 'flushed'`, size: 4096, ...summarize(samples.flushed) },
            { name: `${transport} read`, size: 4096, ...summarize(samples.read) },
          ];
        },
      });
      cases.push({
        label: `${transport} pipelined 4 KiB`,
        run: async ({ regions }) => {
          const region = regions[transport];
          const data = Buffer.alloc(4096, 0x5a);
          const total = ctx.quick ? 5000 : 50000;
          await windowed(() => region.write(0, data, { durability: 'mapped' }), total / 5, 64); // warm-up
          const opsPerSec = await windowed(() => region.write(0, data, { durability: 'mapped' }), total, 64);
          const durable = await windowed((i) => region.write((i % 64) * 64, data.subarray(0, 64)), total / 10, 64);
          return [
            { name: `${transport} pipelined writes, 'mapped', 64 in flight`, size: 4096, opsPerSec, bytesPerSec: opsPerSec * 4096 },
            { name: `${transport} pipelined 64 B writes, 'flushed', 64 in flight`, size: 64, opsPerSec: durable },
          ];
        },
      });
      for (const size of ctx.networkSizes.filter((n) => n !== 4096)) {
        const data = Buffer.alloc(size, 0x5a);
        const n = ctx.iterations(size);
        cases.push({
          label: `${transport} ${ctx.sizeName(size)}`,
          run: async ({ regions }) => {
            const region = regions[transport];
            const rows = [];
            for (const durability of ['mapped', 'flushed']) {
              const s = summarize(await sampleAsync(() => region.write(0, data, { durability }), n, Math.min(100, n)));
              rows.push({ name: `${transport} write, '${durability}'`, size, ...s, bytesPerSec: size >= 1 << 20 ? size / (s.p50 / 1e6) : undefined });
            }
            const r = summarize(await sampleAsync(() => region.read(0, size), n, Math.min(100, n)));
            rows.push({ name: `${transport} read`, size, ...r, bytesPerSec: size >= 1 << 20 ? size / (r.p50 / 1e6) : undefined });
            return rows;
          },
        });
      }
    }
    cases.push({
      label: 'TCP 4 KiB, client and server on one core',
      run: async ({ sameCore }) => {
        const data = Buffer.alloc(4096, 0x5a);
        const frame = frameOf(4096);
        const per = Math.ceil((HEADLINE_SAMPLES * ctx.iterations(4096)) / ROUNDS);
        const floor = [];
        const onreadFloor = [];
        const mapped = [];
        await warmUp(
          ctx,
          () => sameCore.pingPong.send(frame),
          () => sameCore.onreadPingPong.send(frame),
          () => sameCore.region.write(0, data, { durability: 'mapped' }),
        );
        for (let round = 0; round < ROUNDS; round++) {
          floor.push(...(await sampleAsync(() => sameCore.pingPong.send(frame), per, ROUND_WARM_UP)));
          onreadFloor.push(...(await sampleAsync(() => sameCore.onreadPingPong.send(frame), per, ROUND_WARM_UP)));
          mapped.push(...(await sampleAsync(() => sameCore.region.write(0, data, { durability: 'mapped' }), per, ROUND_WARM_UP)));
        }
        return [
          { name: 'Node TCP ping-pong, interleaved, one core', size: 4096, ...summarize(floor) },
          { name: 'Node TCP ping-pong, onread at both ends, interleaved, one core', size: 4096, ...summarize(onreadFloor) },
          { name: "TCP write, 'mapped', one core", size: 4096, ...summarize(mapped) },
        ];
      },
    });
    const big = 16 << 20;
    cases.push({
      label: '16 MiB checkpoint over TCP',
      run: async ({ regions }) => {
        const data = Buffer.alloc(big, 0x5a);
        const n = ctx.quick ? 3 : 15;
        const rows = [];
        for (const durability of ['mapped', 'flushed']) {
          const s = summarize(await sampleAsync(() => regions.TCP.write(0, data, { durability }), n, 2));
          rows.push({ name: `TCP checkpoint write, '${durability}'`, size: big, ...s, bytesPerSec: big / (s.p50 / 1e6) });
        }
        return rows;
      },
    });
    cases.push({
      label: `${CONNECTIONS} connections writing durably`,
      run: async ({ urls, credentials }) => {
        const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => PmuClient.connect(urls.Unix, credentials)));
        try {
          const regions = await Promise.all(clients.map((c) => c.openRegion('bench')));
          const perWriter = ctx.quick ? 20 : 200;
          const record = Buffer.alloc(64, 0x5a);
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < perWriter * 2; i++) await regions[0].write(0, record);
          const serial = (perWriter * 2) / (Number(process.hrtime.bigint() - t0) / 1e9);
          const t1 = process.hrtime.bigint();
          await Promise.all(regions.map(async (region, w) => {
            for (let i = 0; i < perWriter; i++) await region.write(w * 64, record);
          }));
          const rate = (CONNECTIONS * perWriter) / (Number(process.hrtime.bigint() - t1) / 1e9);
          return [
            { name: "Unix, one connection, serial 64 B 'flushed' writes", size: 64, opsPerSec: serial },
            { name: `Unix, ${CONNECTIONS} connections, 64 B 'flushed' writes`, size: 64, opsPerSec: rate, note: `${(rate / serial).toFixed(1)}× one connection` },
          ];
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
      },
    });
    return cases;
  },
};
