#!/usr/bin/env node
'use strict';
// Mirrored PMUs beside a single PMU, one run (docs/MIRROR.md quotes it):
//   1. 4 KiB 'flushed' write p50: a region on one PMU vs a mirrored region on two, in
//      alternating blocks so drift on a shared machine hits both alike;
//   2. SIGKILL of one PMU of a mirrored region to the next acknowledged write (of a write
//      started after the kill), p50 and worst of N runs (the dead PMU restarts and resyncs
//      between runs);
//   3. resync of a 256 MiB region while a writer keeps writing 4 KiB 'flushed' writes.
//   node bench/mirror.js [--runs 30] [--resync-mib 256] [--quick]
// Needs dist/ and etcd (apt-get install etcd-server). Processes: etcd, three PMU processes
// (scripts/nemesis/pmu.js: PmuServer + replica agent), this one as the client.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { PmuClient } = require('pmu');
const { MirrorDirectory, MirroredRegion, PmuPool, createMirroredRegion } = require('pmu/mirror');
const { startEtcdProcess, startPmuReplica, freePort, waitFor, USER, SECRET } = require('./lib/cluster');
const { summarize } = require('./lib/stats');

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, 'resync-mib': { type: 'string', default: '256' }, quick: { type: 'boolean', default: false } } });
const quick = values.quick;
const runs = quick ? 3 : Number(values.runs);
const resyncMiB = quick ? 16 : Number(values['resync-mib']);
const blocks = quick ? 2 : 6;
const perBlock = quick ? 100 : 500;
const MiB = 1024 * 1024;
const TIMEOUT_MS = 500;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-mirror-'));
const procs = [];
const log = (line) => process.stdout.write(line + '\n');

async function main() {
  const etcd = await startEtcdProcess(path.join(work, 'etcd'));
  procs.push(etcd.proc);
  const directory = MirrorDirectory.connect(etcd.url, { set: 'bench', timeoutMs: 1000 });
  await directory.init(2);
  const unitBytes = (resyncMiB + 64) * MiB;
  const pmus = new Map();
  const agentEvents = [];
  const startPmu = async (id, env) => {
    const proc = await startPmuReplica(id, env, (event) => agentEvents.push(event));
    procs.push(proc);
    pmus.set(id, { proc, env });
  };
  for (const id of ['pmu1', 'pmu2', 'pmu3']) {
    await startPmu(id, { UNIT: path.join(work, `${id}.pmu`), UNIT_BYTES: String(unitBytes), PORT: String(await freePort()), ETCD: etcd.url, SET: 'bench', ID: id });
  }
  const restart = async (id) => {
    const { proc, env } = pmus.get(id);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await proc.done;
    }
    await startPmu(id, env);
  };
  const pool = new PmuPool(directory, { user: USER, secret: SECRET, timeoutMs: TIMEOUT_MS });
  const results = { machine: `${os.cpus().length} vCPU, ${os.cpus()[0].model}`, node: process.version, failureDeadlineMs: TIMEOUT_MS };

  // 1. Latency, single vs mirrored, 4 KiB 'flushed'.
  const size = 16 * MiB;
  const single = await (await PmuClient.connect((await directory.pmu('pmu1')).url, { user: USER, secret: SECRET })).createRegion('single', size);
  await createMirroredRegion(directory, pool, 'lat', size, 2);
  const mirrored = await MirroredRegion.open(directory, pool, 'lat');
  const chunk = Buffer.alloc(MiB, 1);
  // Write every block once first: a block's first write-back costs double (FLOORS.md trap 5).
  for (let at = 0; at < size; at += MiB) {
    await single.write(at, chunk);
    await mirrored.write(at, chunk);
  }
  const data = Buffer.alloc(4096, 7);
  const sample = async (region) => {
    const samples = [];
    for (let i = 0; i < perBlock; i++) {
      const offset = Math.floor(Math.random() * (size / 4096)) * 4096;
      const t0 = process.hrtime.bigint();
      await region.write(offset, data, { durability: 'flushed' });
      samples.push(Number(process.hrtime.bigint() - t0));
    }
    return samples;
  };
  const singleSamples = [];
  const mirroredSamples = [];
  await sample(single);
  await sample(mirrored);
  for (let b = 0; b < blocks; b++) {
    singleSamples.push(...(await sample(single)));
    mirroredSamples.push(...(await sample(mirrored)));
  }
  const s = summarize(singleSamples);
  const m = summarize(mirroredSamples);
  results.latency = { single: s, mirrored: m, ratioP50: m.p50 / s.p50 };
  log(`4 KiB 'flushed' write, ${singleSamples.length} each: single PMU p50 ${s.p50.toFixed(0)} µs (p99 ${s.p99.toFixed(0)}), mirrored x2 p50 ${m.p50.toFixed(0)} µs (p99 ${m.p99.toFixed(0)}), ratio ${(m.p50 / s.p50).toFixed(2)}`);
  await mirrored.close();

  // The cost of one configuration change (an etcd transaction: etcd fsyncs its log), for context.
  let scratch = { name: 'scratch', size: 8, replicas: ['pmu1'], inSync: ['pmu1'], syncing: [], epoch: 1 };
  await directory.recordRegion(scratch);
  const txns = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    scratch = await directory.transition(scratch, { ...scratch, epoch: scratch.epoch + 1 });
    txns.push(Number(process.hrtime.bigint() - t0));
  }
  await directory.forgetRegion('scratch');
  results.etcdTransaction = summarize(txns);
  log(`etcd transaction (one configuration change): p50 ${(results.etcdTransaction.p50 / 1000).toFixed(2)} ms, max ${(results.etcdTransaction.max / 1000).toFixed(2)} ms`);

  // 2. SIGKILL of one PMU to the next acknowledged write.
  await createMirroredRegion(directory, pool, 'kill', MiB, 2);
  const killRegion = await MirroredRegion.open(directory, pool, 'kill');
  let stop = false;
  const acks = [];
  let writeErrors = 0;
  const errorCodes = {};
  const writer = (async () => {
    while (!stop) {
      const started = performance.now();
      try {
        await killRegion.write(Math.floor(Math.random() * 255) * 4096, data, { durability: 'flushed' });
        acks.push({ started, done: performance.now() });
      } catch (error) {
        writeErrors++;
        errorCodes[error.code] = (errorCodes[error.code] ?? 0) + 1;
      }
    }
  })();
  const killTimes = [];
  for (let run = 0; run < runs; run++) {
    const config = await directory.config('kill');
    const victim = config.inSync[run % config.inSync.length];
    const { proc } = pmus.get(victim);
    const killedAt = performance.now();
    proc.kill('SIGKILL');
    const ack = await waitFor('an ack after the kill', () => acks.find((a) => a.started >= killedAt), 10_000, 1);
    killTimes.push(ack.done - killedAt);
    await proc.done;
    await restart(victim);
    await waitFor(`${victim} back in sync`, async () => (await directory.config('kill')).inSync.length === 2, 60_000, 20);
  }
  stop = true;
  await writer;
  killTimes.sort((a, b) => a - b);
  results.killToAck = { runs, p50Ms: killTimes[Math.floor((killTimes.length - 1) / 2)], worstMs: killTimes[killTimes.length - 1], allMs: killTimes.map((t) => Number(t.toFixed(1))), writeErrors, errorCodes };
  log(`SIGKILL of one PMU to the next acked write, ${runs} runs: p50 ${results.killToAck.p50Ms.toFixed(1)} ms, worst ${results.killToAck.worstMs.toFixed(1)} ms (failure deadline ${TIMEOUT_MS} ms; ${writeErrors} writes failed${writeErrors ? ': ' + JSON.stringify(errorCodes) : ''})`);
  await killRegion.close();

  // 3. Resync of a large region while a writer keeps writing.
  const bigSize = resyncMiB * MiB;
  const big = await createMirroredRegion(directory, pool, 'big', bigSize, 2);
  const bigRegion = await MirroredRegion.open(directory, pool, 'big');
  const fill = Buffer.alloc(MiB);
  for (let at = 0; at < bigSize; at += MiB) {
    fill.fill(at / MiB);
    await bigRegion.write(at, fill, { durability: 'flushed' });
  }
  const victim = big.replicas[1];
  pmus.get(victim).proc.kill('SIGKILL');
  await pmus.get(victim).proc.done;
  await bigRegion.write(0, data);
  stop = false;
  const during = [];
  const bigWriter = (async () => {
    while (!stop) {
      const t0 = process.hrtime.bigint();
      await bigRegion.write(Math.floor(Math.random() * (bigSize / 4096)) * 4096, data, { durability: 'flushed' });
      during.push(Number(process.hrtime.bigint() - t0));
    }
  })();
  const seen = agentEvents.length;
  await restart(victim);
  const done = await waitFor('the resync to finish', () => agentEvents.slice(seen).find((e) => e.id === victim && e.what === 'resync-done'), 600_000, 50);
  const start = agentEvents.slice(seen).find((e) => e.id === victim && e.what === 'resync-start');
  stop = true;
  await bigWriter;
  const seconds = (done.t - start.t) / 1000;
  const d = summarize(during);
  results.resync = { mib: resyncMiB, seconds, mibPerSecond: resyncMiB / seconds, writesDuring: during.length, writeDuringP50Us: d.p50, writeDuringP99Us: d.p99 };
  log(`resync of a ${resyncMiB} MiB region while writing: ${seconds.toFixed(2)} s, ${(resyncMiB / seconds).toFixed(0)} MiB/s; ${during.length} 4 KiB 'flushed' writes went on meanwhile (p50 ${d.p50.toFixed(0)} µs, p99 ${d.p99.toFixed(0)} µs)`);
  if ((await directory.config('big')).inSync.length !== 2) throw new Error('the resynced replica did not join the in-sync set');
  await bigRegion.close();
  await pool.close();
  directory.close();
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'mirror.json'), JSON.stringify(results, null, 2) + '\n');
  log(`results in bench/results/mirror.json`);
}

main()
  .catch((error) => {
    process.stderr.write(`bench/mirror: ${error.stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const proc of procs) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
    fs.rmSync(work, { recursive: true, force: true });
    process.exit();
  });
