#!/usr/bin/env node
'use strict';
// Profiles both ends of the remote write path: a pmu server and a client in separate
// processes, each under --cpu-prof, the client doing sequential 4 KiB 'mapped' writes; then
// prints the top self-time functions of each side. Where the time over the ping-pong goes.
// --echo profiles the ping-pong floor's pair (echo server, PingPong client) the same way;
// with --onread both ends of that pair read with onread, as pmu's client and server do.
// Besides the top functions it prints the busy (non-idle) CPU per request on each side,
// which, unlike latency, a loaded machine barely moves.
// --plain runs without the profiler: CPU per request only (the profiler's sampling costs CPU).
// --interval US samples every US microseconds (default 1000): finer shows the small functions.
//   node bench/tools/profile-remote.js [tcp|unix] [--one-core] [--echo [--onread]] [--plain] [--interval US] [--writes N] [--out DIR]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const { canPin } = require('../lib/child');

const { values, positionals } = parseArgs({ allowPositionals: true, options: { plain: { type: 'boolean', default: false }, echo: { type: 'boolean', default: false }, onread: { type: 'boolean', default: false }, 'one-core': { type: 'boolean', default: false }, writes: { type: 'string', default: '20000' }, interval: { type: 'string' }, out: { type: 'string' }, child: { type: 'string' } } });

/** Top self-time entries of a .cpuprofile: [{ name, url:line, ms, share }]. */
function top(file, count = 25) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const self = new Map();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const key = `${node.callFrame.functionName || '(anonymous)'} ${path.basename(node.callFrame.url || '')}:${node.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) || 0) + (dt[i] || 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const busy = total - (self.get('(idle) :0') || 0);
  return { busy, rows: [...self].sort((a, b) => b[1] - a[1]).slice(0, count).map(([name, us]) => ({ name, ms: us / 1000, share: us / total })) };
}

function cpuPer(start, writes) {
  const { user, system } = process.cpuUsage(start);
  const switches = (contextSwitches('self') - startSwitches) / writes;
  return `CPU ${((user + system) / writes).toFixed(2)} µs (user ${(user / writes).toFixed(2)}, system ${(system / writes).toFixed(2)}), ${switches.toFixed(2)} context switches`;
}

/** Voluntary + involuntary context switches of a process so far. */
function contextSwitches(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}
let startSwitches = 0;

/** user + system CPU of another process, in µs, from /proc (clock ticks of 10 ms: use long runs). */
function processCpuUs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: (Number(fields[11]) * 1e6) / 100, system: (Number(fields[12]) * 1e6) / 100 };
}

async function client(url, secret, writes) {
  if (values.echo) {
    const { PingPong, frameOf } = require('../lib/pingpong');
    const pp = await PingPong.open(url.startsWith('/') ? url : { port: Number(url) }, { onread: values.onread });
    const frame = frameOf(4096);
    for (let i = 0; i < 2000; i++) await pp.send(frame);
    startSwitches = contextSwitches('self');
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < writes; i++) await pp.send(frame);
    process.stdout.write(`mean ${(Number(process.hrtime.bigint() - t0) / 1000 / writes).toFixed(1)} µs per write; client per write: ${cpuPer(c0, writes)}\n`);
    pp.close();
    return;
  }
  const { PmuClient } = require('pmu');
  const c = await PmuClient.connect(url, { user: 'bench', secret });
  const region = await c.openRegion('bench');
  const data = Buffer.alloc(4096, 0x5a);
  for (let i = 0; i < 2000; i++) await region.write(0, data, { durability: 'mapped' });
  startSwitches = contextSwitches('self');
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < writes; i++) await region.write(0, data, { durability: 'mapped' });
  const us = Number(process.hrtime.bigint() - t0) / 1000 / writes;
  process.stdout.write(`mean ${us.toFixed(1)} µs per write; client per write: ${cpuPer(c0, writes)}\n`);
  await c.close();
}

async function main() {
  if (values.child) return client(values.child, process.env.PMU_BENCH_SECRET, Number(values.writes));
  const transport = positionals[0] === 'unix' ? 'unix' : 'tcp';
  const out = path.resolve(values.out || fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-profile-')));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-profile-data-'));
  const secret = crypto.randomBytes(32).toString('hex');
  const env = { ...process.env, PMU_BENCH_SECRET: secret };
  const pin = (cpu, argv) => (canPin() ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0], argv.slice(1)]);
  const prof = (side) => (values.plain ? [] : ['--cpu-prof', '--cpu-prof-dir', path.join(out, side), ...(values.interval ? ['--cpu-prof-interval', values.interval] : [])]);
  const [serverCmd, serverArgs] = pin(1, [process.execPath, ...prof('server'), ...(values.echo ? [path.join(__dirname, '..', 'peers', 'echo-server.js'), transport, path.join(dataDir, 'echo.sock'), ...(values.onread ? ['--onread'] : [])] : [path.join(__dirname, '..', 'peers', 'pmu-server.js'), dataDir])]);
  const server = spawn(serverCmd, serverArgs, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (chunk) => {
      text += chunk;
      const m = values.echo ? text.match(/ready (\S+)/) : text.match(/ready (\S+) (\S+)/);
      if (m) resolve(m);
    });
    server.on('exit', () => reject(new Error('server exited')));
  });
  let url = transport === 'unix' ? ready[2] : ready[1];
  if (values.echo) {
    url = ready[1];
  } else {
    const { PmuClient } = require('pmu');
    const admin = await PmuClient.connect(ready[1], { user: 'bench', secret });
    await admin.createRegion('bench', 1 << 20);
    await admin.close();
  }
  const [clientCmd, clientArgs] = pin(values['one-core'] ? 1 : 0, [process.execPath, ...prof('client'), __filename, '--child', url, '--writes', values.writes, ...(values.echo ? ['--echo'] : []), ...(values.onread ? ['--onread'] : [])]);
  const serverCpu0 = processCpuUs(server.pid);
  const serverSwitches0 = contextSwitches(server.pid);
  const result = spawnSync(clientCmd, clientArgs, { env, encoding: 'utf8' });
  const serverCpu1 = processCpuUs(server.pid);
  const requests = Number(values.writes) + 2000;
  const serverUser = (serverCpu1.user - serverCpu0.user) / requests;
  const serverSystem = (serverCpu1.system - serverCpu0.system) / requests;
  const serverSwitches = (contextSwitches(server.pid) - serverSwitches0) / (Number(values.writes) + 2000);
  process.stdout.write(`${values.echo ? 'echo' : 'pmu'} ${transport}${values['one-core'] ? ', one core' : ''}: ${result.stdout.trim()}${result.stderr}; server CPU ${(serverUser + serverSystem).toFixed(2)} (user ${serverUser.toFixed(2)}, system ${serverSystem.toFixed(2)}) µs and ${serverSwitches.toFixed(2)} context switches per request (incl. warm-up and connect)\n`);
  await new Promise((resolve) => {
    server.on('exit', resolve);
    server.kill('SIGTERM');
  });
  for (const side of values.plain ? [] : ['client', 'server']) {
    const dir = path.join(out, side);
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    const { busy, rows } = top(path.join(dir, file));
    const requests = Number(values.writes) + 2000;
    process.stdout.write(`\n${side} (${path.join(dir, file)}): busy ${(busy / requests).toFixed(2)} µs per request (whole run, start-up included); top self time\n`);
    for (const row of rows) process.stdout.write(`  ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.ms.toFixed(0).padStart(6)} ms  ${row.name}\n`);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
