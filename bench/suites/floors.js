'use strict';
// Physical floors measured in the same run as pmu: memcpy and memcpy + msync timed in C on a
// file prepared as pmu prepares its own (the bench's floor addon, lib/floor-addon.js; without
// it these rows are left out and the run says why), and a Node request/ack ping-pong over TCP
// and a Unix socket between two processes.
const path = require('node:path');
const { floorAddon } = require('../lib/floor-addon');
const { summarize } = require('../lib/stats');
const { startChild } = require('../lib/child');
const { PingPong, frameOf } = require('../lib/pingpong');
const { windowed } = require('../lib/throughput');

const ECHO = path.join(__dirname, '..', 'peers', 'echo-server.js');

async function pingPongRows(ctx, kind, target, size) {
  const client = await PingPong.open(target);
  try {
    const frame = frameOf(size);
    const n = ctx.iterations(size);
    for (let i = 0; i < Math.min(100, n); i++) await client.send(frame);
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await client.send(frame);
      samples[i] = Number(process.hrtime.bigint() - t0);
    }
    const rows = [{ name: `Node ${kind} ping-pong (write → 8 B ack)`, size, ...summarize(samples) }];
    if (size <= 65536 || size === 1 << 20) {
      const total = ctx.iterations(size) * (size <= 4096 ? 10 : 2);
      const opsPerSec = await windowed(() => client.send(frame), total, 64);
      rows.push({ name: `Node ${kind} pipelined writes, 64 in flight`, size, opsPerSec, bytesPerSec: opsPerSec * size });
    }
    return rows;
  } finally {
    client.close();
  }
}

module.exports = {
  name: 'floors',
  async setup(ctx) {
    const tcp = await startChild(process.execPath, [ECHO, 'tcp'], /ready (\d+)/);
    const socketPath = path.join(ctx.dir, 'echo.sock');
    const unix = await startChild(process.execPath, [ECHO, 'unix', socketPath], /ready/);
    return { tcp, unix, tcpTarget: { port: Number(tcp.match[1]) }, socketPath };
  },
  async teardown(state) {
    await state.tcp.stop();
    await state.unix.stop();
  },
  cases(ctx) {
    const cases = [];
    const floor = floorAddon(ctx);
    for (const size of floor ? ctx.sizes : []) {
      cases.push({
        label: `floor memcpy ${ctx.sizeName(size)}`,
        run: () => ({ name: 'memcpy into the mapping (C)', size, ...summarize(floor.measureFloor(path.join(ctx.dir, 'floor'), floorFile(size), size, ctx.iterations(size), false)) }),
      });
      cases.push({
        label: `floor msync ${ctx.sizeName(size)}`,
        run: () => ({ name: 'memcpy + msync (C)', size, ...summarize(floor.measureFloor(path.join(ctx.dir, 'floor'), floorFile(size), size, ctx.iterations(size), true)) }),
      });
    }
    for (const size of ctx.networkSizes) {
      cases.push({ label: `TCP ping-pong ${ctx.sizeName(size)}`, run: (state) => pingPongRows(ctx, 'TCP', state.tcpTarget, size) });
      cases.push({ label: `Unix ping-pong ${ctx.sizeName(size)}`, run: (state) => pingPongRows(ctx, 'Unix', state.socketPath, size) });
    }
    return cases;
  },
};

function floorFile(size) {
  return Math.max(1 << 24, Math.ceil(size / 4096) * 4096 * 2);
}
