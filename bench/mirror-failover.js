'use strict';
// Failover on a mirrored region: from SIGKILL of the primary (its own process) to the backup's
// watchPrimary resolving (the takeover starts), and to the takeover done. Two PMU processes
// and an etcd on this machine; the lease is 20 s, so only connection-drop notices count.
// Usage: node bench/mirror-failover.js [rounds=20]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const { CheckpointReader, openPrimary } = require('pmu');
const { MirrorDirectory, MirroredRegion, PmuPool, createMirroredRegion } = require('pmu/mirror');
const { freePort, PMU_REPLICA, SECRET, spawnLogged, startEtcdProcess, USER, waitFor } = require('./lib/cluster');

const PRIMARY = path.join(__dirname, 'peers', 'mirror-primary.js');
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  const rounds = Number(process.argv[2] ?? 20);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-failover-'));
  const etcd = await startEtcdProcess(path.join(work, 'etcd'));
  const directory = MirrorDirectory.connect(etcd.url, { set: 'failover', timeoutMs: 1000 });
  await directory.init(2);
  const pmus = [];
  for (const id of ['pmu1', 'pmu2']) {
    let ready = false;
    const env = { UNIT: path.join(work, `${id}.pmu`), PORT: String(await freePort()), ETCD: etcd.url, SET: 'failover', ID: id, PMU_USER: USER, PMU_SECRET: SECRET, UNIT_BYTES: String(16 << 20) };
    pmus.push(spawnLogged(id, PMU_REPLICA, env, (_, line) => (ready ||= line.includes(' READY'))));
    await waitFor(`${id} ready`, () => ready, 15_000);
  }
  const pool = new PmuPool(directory, { user: USER, secret: SECRET, timeoutMs: 1000 });
  await createMirroredRegion(directory, pool, 'fast', 1 << 20, 2);
  const noticed = [];
  const taken = [];
  for (let round = 0; round < rounds; round++) {
    const child = spawn(process.execPath, [PRIMARY], { env: { ...process.env, ETCD_URL: etcd.url, SET: 'failover', REGION: 'fast', PMU_USER: USER, PMU_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => String(chunk).includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`primary exited ${code}`)));
    });
    const backup = await MirroredRegion.open(directory, pool, 'fast');
    const reader = await CheckpointReader.open(backup);
    const watching = reader.watchPrimary({ leaseMs: 20_000 });
    // Answered after watchPrimary's subscriptions (same connections): both are in place.
    const unwatch = await backup.watchWriters(() => undefined);
    const killedAt = performance.now();
    child.kill('SIGKILL');
    const failure = await watching;
    const at = performance.now();
    if (failure.reason !== 'disconnected') throw new Error(`round ${round}: ${failure.reason}`);
    const takeover = await openPrimary(reader, { heartbeatMs: 0 });
    const done = performance.now();
    noticed.push(at - killedAt);
    taken.push(done - killedAt);
    await unwatch();
    await takeover.writer.close();
    await backup.close();
  }
  noticed.sort((a, b) => a - b);
  taken.sort((a, b) => a - b);
  const row = (name, values) => `${name.padEnd(34)} p50 ${percentile(values, 50).toFixed(1).padStart(7)} ms   p99 ${percentile(values, 99).toFixed(1).padStart(7)} ms`;
  process.stdout.write(`mirrored region failover, 2 PMUs, ${rounds} rounds (${os.cpus().length} cores, ${os.cpus()[0].model.trim()})\n`);
  process.stdout.write(row('SIGKILL -> takeover starts', noticed) + '\n');
  process.stdout.write(row('SIGKILL -> takeover done', taken) + '\n');
  await pool.close();
  directory.close();
  for (const proc of pmus) proc.kill('SIGKILL');
  etcd.proc.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
