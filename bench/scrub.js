#!/usr/bin/env node
'use strict';
// Scrub and checksum-skipping resync, one run (docs/MIRROR.md quotes it):
//   1. bytes a resync moves for a region with 1% of its 4 KiB pages changed while the replica
//      was away: with CHECKSUM comparison (now) and without (before: read, write, re-read);
//   2. scrub MB/s of that region across 2 replicas (no rate limit);
//   3. a well-behaved writer's 4 KiB 'flushed' p50/p99 on another mirrored x2 region, in the same
//      run: (a) alone, (b) with the background scrubber running at its default rate over the
//      first region (the bytes it scrubbed during the window are counted: 0 fails the run),
//      (c) during a resync of a --resync-mib region whose every byte differs on the target (done
//      by pmu2's own replica agent, as in production; the window is its resync-start..resync-done).
//   node bench/scrub.js [--mib 256] [--resync-mib 64] [--rate-mib RATE] [--resync-rate-mib RATE] [--seconds 5] [--no-bytes]
//   (--resync-rate-mib: pmu2's agent resyncs at that rate, as `pmu serve --join --resync-rate`; default no limit)
// --rate-mib overrides the scrubber's default rate; --no-bytes skips 1 and 2. Needs dist/ and etcd.
// Processes: etcd, two PMU processes (bench/peers/pmu-replica.js, each with its replica agent),
// this one as the client.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { MirrorDirectory, MirroredRegion, PmuPool, createMirroredRegion, resync, scrubRegion, startScrubber } = require('pmu/mirror');
const { withoutReplica } = require('../dist/mirror/config');
const { startEtcdProcess, startPmuReplica, freePort, waitFor, USER, SECRET } = require('./lib/cluster');
const { summarize } = require('./lib/stats');

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, 'resync-mib': { type: 'string', default: '64' }, 'rate-mib': { type: 'string' }, 'resync-rate-mib': { type: 'string' }, seconds: { type: 'string', default: '5' }, 'no-bytes': { type: 'boolean', default: false } } });
const MiB = 1024 * 1024;
const size = Number(values.mib) * MiB;
const resyncSize = Number(values['resync-mib']) * MiB;
const rate = values['rate-mib'] === undefined ? undefined : Number(values['rate-mib']) * MiB;
const seconds = Number(values.seconds);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-scrub-'));
const procs = [];
const log = (line) => process.stdout.write(line + '\n');
const us = (x) => `${x.toFixed(0)} µs`;

async function main() {
  const etcd = await startEtcdProcess(path.join(work, 'etcd'));
  procs.push(etcd.proc);
  const directory = MirrorDirectory.connect(etcd.url, { set: 'bench', timeoutMs: 1000 });
  await directory.init(2);
  const agentEvents = [];
  for (const id of ['pmu1', 'pmu2']) {
    const env = { UNIT: path.join(work, `${id}.pmu`), UNIT_BYTES: String(size + resyncSize + 64 * MiB), PORT: String(await freePort()), ETCD: etcd.url, SET: 'bench', ID: id, ...(values['resync-rate-mib'] ? { RESYNC_BYTES_PER_SECOND: String(Number(values['resync-rate-mib']) * MiB) } : {}) };
    procs.push(await startPmuReplica(id, env, (event) => agentEvents.push(event)));
  }
  const pool = new PmuPool(directory, { user: USER, secret: SECRET, timeoutMs: 5000 });
  const results = { machine: `${os.cpus().length} vCPU, ${os.cpus()[0].model}`, node: process.version, mib: size / MiB };

  // The region the scrubber goes over (and, in 1, the one resynced).
  await createMirroredRegion(directory, pool, 'big', size, 2);
  const big = await MirroredRegion.open(directory, pool, 'big');
  const fill = Buffer.alloc(MiB);
  for (let at = 0; at < size; at += MiB) {
    for (let i = 0; i < MiB; i += 4) fill.writeUInt32LE((at + i) * 2654435761 >>> 0, i);
    await big.write(at, fill, { durability: 'mapped' });
  }
  if (!values['no-bytes']) {
    // 1. Resync bytes. The replica is taken out of the in-sync set by a configuration change
    // (as a failed write would), 1% of the pages change, and this process resyncs it; pmu2's own
    // agent starts the same resync, and the two meet in etcd: one joins, the other finds the
    // replica in sync (the tally counts what this one moved).
    const pages = size / 4096;
    const moved = {};
    for (const checksums of [false, true]) {
      const config = await directory.config('big');
      await directory.transition(config, withoutReplica(config, 'pmu2'));
      await waitFor('writer to drop pmu2', () => !big.configuration.inSync.includes('pmu2'), 10_000);
      for (let i = 0; i < pages / 100; i++) await big.write(4096 * Math.floor(Math.random() * pages), Buffer.alloc(4096, i & 0xff), { durability: 'mapped' });
      const tally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
      const t0 = process.hrtime.bigint();
      await resync(directory, pool, 'big', 'pmu2', { tally, checksums });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const key = checksums ? 'withChecksums' : 'copyAll';
      moved[key] = { ...tally, moved: tally.bytesRead + tally.bytesWritten, seconds: s };
      log(`resync of ${size / MiB} MiB, 1% of pages changed, ${checksums ? 'with CHECKSUM skipping' : 'copy all (before)'}: read ${(tally.bytesRead / MiB).toFixed(1)} MiB + wrote ${(tally.bytesWritten / MiB).toFixed(1)} MiB = ${((tally.bytesRead + tally.bytesWritten) / MiB).toFixed(1)} MiB moved (${(((tally.bytesRead + tally.bytesWritten) / size) * 100).toFixed(1)}% of the region x1), ${tally.checksums} checksums, ${s.toFixed(2)} s`);
    }
    results.resync = moved;
    // 2. Scrub rate, no limit.
    const t0 = process.hrtime.bigint();
    const full = await scrubRegion(directory, pool, 'big', { bytesPerSecond: Infinity });
    const unlimited = size / MiB / (Number(process.hrtime.bigint() - t0) / 1e9);
    results.scrubUnlimitedMiBps = unlimited;
    log(`scrub pass, no rate limit: ${unlimited.toFixed(0)} MiB/s per replica (${full.mismatches.length} mismatches)`);
  }
  await waitFor('big in sync on both', async () => (await directory.config('big')).inSync.length === 2, 30_000);

  // 3. A writer's 4 KiB 'flushed' latency on 'lat': alone, with the scrubber, during a resync.
  await createMirroredRegion(directory, pool, 'lat', 16 * MiB, 2);
  const lat = await MirroredRegion.open(directory, pool, 'lat');
  // Every block written once first: a block's first write-back costs double (FLOORS.md trap 5).
  for (let at = 0; at < 16 * MiB; at += MiB) await lat.write(at, Buffer.alloc(MiB, 1), { durability: 'flushed' });
  await createMirroredRegion(directory, pool, 'rs', resyncSize, 2);
  const rs = await MirroredRegion.open(directory, pool, 'rs');
  for (let at = 0; at < resyncSize; at += MiB) await rs.write(at, Buffer.alloc(MiB, 2), { durability: 'flushed' });
  const data = Buffer.alloc(4096, 7);
  /** Writes one at a time until until() is true; each sample [start ms, ns]. */
  const sample = async (until) => {
    const samples = [];
    while (!until()) {
      const start = Date.now();
      const t = process.hrtime.bigint();
      await lat.write(4096 * Math.floor(Math.random() * 4096), data, { durability: 'flushed' });
      samples.push([start, Number(process.hrtime.bigint() - t)]);
    }
    return samples;
  };
  const forSeconds = () => {
    const end = Date.now() + seconds * 1000;
    return () => Date.now() >= end;
  };
  const alone = summarize((await sample(forSeconds())).map(([, ns]) => ns));
  // The default rate unless --rate-mib; intervalMs 0: passes back to back, so it never idles in the window.
  const scrubber = startScrubber(directory, pool, { ...(rate ? { bytesPerSecond: rate } : {}), intervalMs: 0, only: (config) => config.name === 'big', onError: (region, error) => log(`scrub of ${region} failed: ${error.message}`) });
  const before = scrubber.counters.bytesScrubbed;
  const ts = Date.now();
  const scrubbing = summarize((await sample(forSeconds())).map(([, ns]) => ns));
  const scrubbed = scrubber.counters.bytesScrubbed - before;
  const scrubRate = scrubbed / MiB / ((Date.now() - ts) / 1000);
  await scrubber.stop();
  if (!(scrubbed > 0)) throw new Error('the scrubber scrubbed nothing during the writer\'s window: the measurement would be of a writer alone');
  // The resync: every byte of pmu2's copy of 'rs' changes behind the set's back (so no chunk's
  // checksum matches and the resync copies all of it), then pmu2 leaves the in-sync set and its
  // agent resyncs it from pmu1.
  const direct = await pool.openRegion('pmu2', 'rs');
  for (let at = 0; at < resyncSize; at += MiB) await direct.write(at, Buffer.alloc(MiB, 3), { durability: 'mapped' });
  const seen = agentEvents.length;
  let config = await directory.config('rs');
  await directory.transition(config, withoutReplica(config, 'pmu2'));
  const agentEvent = (what) => agentEvents.slice(seen).find((e) => e.id === 'pmu2' && e.region === 'rs' && e.what === what);
  // Sample from before the agent starts until its resync is done; keep the samples inside its window.
  const during = await sample(() => agentEvent('resync-done') || agentEvent('resync-failed'));
  const failed = agentEvent('resync-failed');
  if (failed) throw new Error(`pmu2's resync of rs failed`);
  const { t: started } = agentEvent('resync-start');
  const { t: done } = agentEvent('resync-done');
  const resyncing = summarize(during.filter(([t]) => t >= started && t <= done).map(([, ns]) => ns));
  config = await directory.config('rs');
  if (!config.inSync.includes('pmu2')) throw new Error('pmu2 did not rejoin rs');
  const rsSame = (await (await pool.openRegion('pmu2', 'rs')).checksum(0, Math.min(resyncSize, 16 * MiB))) === (await (await pool.openRegion('pmu1', 'rs')).checksum(0, Math.min(resyncSize, 16 * MiB)));
  results.writer = {
    alone,
    scrubber: { ...scrubbing, rateMiBps: rate ? rate / MiB : 'default', bytesScrubbed: scrubbed, measuredMiBps: scrubRate },
    resync: { ...resyncing, mib: resyncSize / MiB, rateMiBps: values['resync-rate-mib'] ? Number(values['resync-rate-mib']) : 'unlimited', seconds: (done - started) / 1000, equalAfter: rsSame },
  };
  log(`4 KiB 'flushed' write on a mirrored x2 region, one at a time:`);
  log(`  alone (${seconds} s):                      p50 ${us(alone.p50)}  p99 ${us(alone.p99)}  (n ${alone.n})`);
  log(`  scrubber at ${rate ? `${rate / MiB} MiB/s` : 'its default rate'} (${seconds} s, ${(scrubbed / MiB).toFixed(0)} MiB scrubbed, ${scrubRate.toFixed(1)} MiB/s): p50 ${us(scrubbing.p50)}  p99 ${us(scrubbing.p99)}  (n ${scrubbing.n})`);
  log(`  resync of ${resyncSize / MiB} MiB by pmu2's agent${values['resync-rate-mib'] ? ` at ${values['resync-rate-mib']} MiB/s` : ''} (${((done - started) / 1000).toFixed(2)} s): p50 ${us(resyncing.p50)}  p99 ${us(resyncing.p99)}  max ${us(resyncing.max)}  (n ${resyncing.n})${rsSame ? '' : '  (first 16 MiB NOT equal after!)'}`);
  await rs.close();
  await lat.close();
  await big.close();
  await pool.close();
  directory.close();
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'scrub.json'), JSON.stringify(results, null, 2) + '\n');
  log('results in bench/results/scrub.json');
}

main()
  .catch((error) => {
    process.stderr.write(`bench/scrub: ${error.stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const proc of procs) proc.kill('SIGKILL');
    fs.rmSync(work, { recursive: true, force: true });
    process.exit();
  });
