#!/usr/bin/env node
'use strict';
// Where the µs of one remote durable ack go, on the server: a pmu server (bench/peers/pmu-server.js,
// on the server CPU) under `perf trace` of its system calls, while this process makes lone 4 KiB
// 'flushed' writes over TCP; then, per write, the time from the request's read() returning to the
// msync starting, the msync, from msync to the reply's write(), and on which thread the msync ran.
//   node bench/tools/ack-trace.js [--flush auto|pool] [--writes N]     (as root: perf needs it)
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const { performance } = require('node:perf_hooks');
const { PmuClient } = require('pmu');
const { startPmuServer } = require('../lib/pmu-server');

const { values } = parseArgs({ options: { flush: { type: 'string', default: 'auto' }, writes: { type: 'string', default: '400' } } });
const writes = Number(values.writes);
const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : NaN);
const p99 = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.ceil(a.length * 0.99) - 1)] : NaN);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-ack-trace-'));
  const server = await startPmuServer({ dir }, 'server', { env: { PMU_BENCH_FLUSH: values.flush } });
  const client = await PmuClient.connect(server.urls.TCP, server.credentials);
  await client.createRegion('w', 1 << 20);
  const region = await client.openRegion('w');
  const data = Buffer.alloc(4096, 0x5a);
  for (let i = 0; i < 500; i++) await region.write((i % 64) * 4096, data);
  const out = path.join(dir, 'trace.txt');
  const perf = spawn('perf', ['trace', '-p', String(server.child.pid), '-e', 'read,write,writev,msync,futex,epoll_wait,epoll_pwait', '-o', out], { stdio: 'ignore' });
  // perf attaches in the background; give it time to (there is no event to wait for).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const client0 = [];
  for (let i = 0; i < writes; i++) {
    const t0 = performance.now();
    await region.write((i % 64) * 4096, data);
    client0.push((performance.now() - t0) * 1000);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  perf.kill('SIGINT');
  await new Promise((resolve) => perf.once('exit', resolve));
  await client.close();
  await server.stop();
  // Lines: " 12.345 ( 0.012 ms): node/1234 msync(start: ..., len: 4096, flags: SYNC) = 0"
  const lines = fs.readFileSync(out, 'utf8').split('\n');
  const events = [];
  for (const line of lines) {
    const m = line.match(/^\s*([\d.]+) \(\s*([\d.]+) ms\): [^/]+\/(\d+) (\w+)\(/);
    if (m) events.push({ at: Number(m[1]) * 1000, dur: Number(m[2]) * 1000, tid: Number(m[3]), call: m[4], line });
  }
  // Threads write their lines apart: put them in time order.
  events.sort((a, b) => a.at - b.at);
  const main = server.child.pid;
  const parts = { read: [], toMsync: [], msync: [], toReply: [], reply: [], total: [] };
  let inline = 0;
  let untraced = 0;
  let pooled = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.call !== 'read' || e.tid !== main || !/= 4[0-9]{3}$/.test(e.line.trim())) continue;
    const readEnd = e.at + e.dur;
    // The reply (a 12-byte OK frame) on the event loop; the msync is the one in between.
    const replyAt = events.findIndex((x, j) => j > i && (x.call === 'write' || x.call === 'writev') && x.tid === main && /= 12$/.test(x.line.trim()));
    if (replyAt < 0) continue;
    const reply = events[replyAt];
    const ms = events.slice(i + 1, replyAt).find((x) => x.call === 'msync');
    if (!ms) {
      untraced++;
      continue;
    }
    if (ms.tid === main) inline++;
    else pooled++;
    parts.read.push(e.dur);
    parts.reply.push(reply.dur);
    parts.toMsync.push(ms.at - readEnd);
    parts.msync.push(ms.dur);
    parts.toReply.push(reply.at - (ms.at + ms.dur));
    parts.total.push(reply.at + reply.dur - e.at);
    if (process.env.ACK_TRACE_SLOW && reply.at + reply.dur - e.at > Number(process.env.ACK_TRACE_SLOW)) console.log(events.slice(i, events.indexOf(reply) + 1).map((x) => x.line).join('\n') + '\n--');
  }
  console.log(`loneFlush '${values.flush}': ${parts.total.length} writes traced, msync on the event loop ${inline}, on the pool ${pooled}; ${untraced} whose msync perf lost`);
  for (const [name, a] of Object.entries(parts)) console.log(`  ${name.padEnd(8)} p50 ${median(a).toFixed(1)} µs  p99 ${p99(a).toFixed(1)} µs`);
  console.log(`  client round trip under perf: p50 ${median(client0).toFixed(0)} µs, p99 ${p99(client0).toFixed(0)} µs`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
