#!/usr/bin/env node
'use strict';
// The soak and abuse run: a PMU server (own process, default limits) serves a well-behaved primary
// and backup checkpointing through it, first alone (the idle baseline), then while many malicious
// clients of several users attack it (scripts/soak/attackers.js, own process). Loopback only.
// It measures the server's RSS (sampled, and its peak), the well-behaved primary's latency (p50,
// p99) idle against under attack, checks every acknowledged write reads back and that nothing
// outside a region changed.
//   npm run soak -- --minutes N      (prints the figures; exit 1 if a check fails)
// test/net-soak.test.ts runs it for ~25 s with the same checks.
const { fork } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { PmuClient, CheckpointReader, openPrimary, UserDirectory } = require('pmu');

const USERS = ['admin', 'primary', 'backup', 'mallory1', 'mallory2', 'mallory3', 'eve', 'revokee'];
const RECORD = 4096;
const LEDGER_BYTES = 8 << 20;
const CANARY_BYTES = 64 << 10;

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function once(child, predicate) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (!predicate(message)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code) => reject(new Error(`child ${child.pid} exited (${code}) before answering`));
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/**
 * The well-behaved pair for `ms`: the primary checkpoints (overwrite mode) and appends 4 KiB
 * records to a ledger with 'flushed' writes, one at a time, timing each; the backup keeps reading
 * the latest checkpoint (it must always be one the primary wrote) and ledger records already acked.
 */
async function wellBehaved(ctx, ms) {
  const latencies = [];
  const deadline = Date.now() + ms;
  let backupChecks = 0;
  let backupErrors = [];
  const backupLoop = (async () => {
    while (Date.now() < deadline) {
      const latest = await ctx.reader.latest();
      if (latest) {
        const expected = stateFor(latest.sequence);
        if (!latest.state.equals(expected)) backupErrors.push(`checkpoint ${latest.sequence} does not hold what the primary wrote`);
        if (latest.sequence < ctx.lastSeenCheckpoint) backupErrors.push(`checkpoint went back from ${ctx.lastSeenCheckpoint} to ${latest.sequence}`);
        ctx.lastSeenCheckpoint = latest.sequence;
      }
      if (ctx.acked > 0) {
        const index = Math.floor(Math.random() * ctx.acked);
        const got = await ctx.backupLedger.read(index * RECORD, RECORD);
        if (!got.equals(recordFor(index))) backupErrors.push(`ledger record ${index} reads back wrong on the backup`);
      }
      backupChecks++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  while (Date.now() < deadline) {
    const index = ctx.acked % (LEDGER_BYTES / RECORD);
    const started = process.hrtime.bigint();
    await ctx.ledger.write(index * RECORD, recordFor(index), { durability: 'flushed' });
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    ctx.acked = Math.max(ctx.acked, index + 1);
    ctx.ackedTotal++;
    if (ctx.ackedTotal % 8 === 0) ctx.checkpoints.push(await ctx.writer.checkpoint(stateFor(ctx.checkpoints.length + 1)));
  }
  await backupLoop;
  latencies.sort((a, b) => a - b);
  return { latencies, backupChecks, backupErrors };
}

function recordFor(index) {
  const record = crypto.createHash('sha256').update(`ledger ${index}`).digest();
  return Buffer.concat(Array(RECORD / record.length).fill(record));
}

function stateFor(sequence) {
  return Buffer.alloc(1024 + (sequence % 7) * 100, sequence & 0xff);
}

async function runSoak(options = {}) {
  const seconds = options.seconds ?? 60;
  const idleSeconds = options.idleSeconds ?? Math.min(30, Math.max(5, Math.round(seconds / 5)));
  const say = options.log ?? (() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-soak-'));
  const secrets = {};
  const users = {};
  for (const user of USERS) {
    secrets[user] = crypto.randomBytes(32).toString('hex');
    users[user] = { secret: secrets[user], admin: user === 'admin' };
  }
  new UserDirectory(users).save(path.join(dir, 'users.json'));
  const server = fork(path.join(__dirname, 'server.js'), [], { env: { ...process.env, SOAK_DIR: dir }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let attackers;
  const clients = [];
  try {
    const ready = await once(server, (m) => m.ready);
    const connect = async (user) => {
      const client = await PmuClient.connect(ready.url, { user, secret: secrets[user], timeoutMs: 30_000 });
      clients.push(client);
      return client;
    };
    const admin = await connect('admin');
    // Canaries sit between the attackers' regions: a write past one region's end would land in one.
    await admin.createRegion('ckpt', 1 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }, { user: 'mallory1', rights: 'r' }] });
    await admin.createRegion('ledger', LEDGER_BYTES, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    await admin.createRegion('m1', 64 << 10, { owner: 'mallory1', grants: [{ user: 'mallory2', rights: 'rw' }] });
    await admin.createRegion('m5', 4 << 20, { owner: 'mallory1' });
    const canaries = [];
    for (const [name, next] of [['canary-a', 'm2'], ['canary-b', 'm3'], ['canary-c', 'm4']]) {
      const canary = await admin.createRegion(name, CANARY_BYTES);
      const pattern = crypto.randomBytes(CANARY_BYTES);
      await canary.write(0, pattern);
      canaries.push({ canary, pattern });
      if (next === 'm2') await admin.createRegion('m2', 1 << 20, { owner: 'mallory2' });
      if (next === 'm3') await admin.createRegion('m3', 16 << 20, { owner: 'mallory3' });
      if (next === 'm4') await admin.createRegion('m4', 4096, { owner: 'admin', grants: [{ user: 'revokee', rights: 'rw' }] });
    }
    const primary = await connect('primary');
    const backup = await connect('backup');
    const ckpt = await primary.openRegion('ckpt');
    const ctx = {
      ledger: await primary.openRegion('ledger'),
      backupLedger: await backup.openRegion('ledger'),
      writer: (await openPrimary(ckpt, { mode: 'overwrite', heartbeatMs: 0 })).writer,
      reader: undefined,
      acked: 0,
      ackedTotal: 0,
      checkpoints: [],
      lastSeenCheckpoint: 0,
    };
    ctx.reader = await CheckpointReader.open(await backup.openRegion('ckpt'));

    say(`idle baseline: ${idleSeconds} s`);
    const idle = await wellBehaved(ctx, idleSeconds * 1000);
    server.send('stats');
    const idleServer = await once(server, (m) => m.stats);

    say(`under attack: ${seconds} s`);
    attackers = fork(path.join(__dirname, 'attackers.js'), [], { env: { ...process.env, SOAK_URL: ready.url, SOAK_UNIX: ready.unix, SOAK_METRICS: ready.metricsUrl ?? '', SOAK_TLS: ready.tlsUrl ?? '', SOAK_TLS_CA: ready.tlsCa ?? '', SOAK_SECRETS: JSON.stringify(secrets) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const started = await once(attackers, (m) => m.started);
    let peakSampledRss = 0;
    let connectionsPeak = 0;
    const sampler = setInterval(() => server.send('stats'), 250);
    const onStats = (m) => {
      if (!m.stats) return;
      peakSampledRss = Math.max(peakSampledRss, m.rss);
      connectionsPeak = Math.max(connectionsPeak, m.stats.connectionsOpen);
    };
    server.on('message', onStats);
    const attacked = await wellBehaved(ctx, seconds * 1000);
    clearInterval(sampler);
    attackers.send('stop');
    const report = await once(attackers, (m) => m.counts);
    server.off('message', onStats);
    server.send('stats');
    const after = await once(server, (m) => m.stats);

    // Every acknowledged write reads back; nothing outside a region changed.
    const problems = [...idle.backupErrors, ...attacked.backupErrors];
    const check = await connect('primary');
    const ledger = await check.openRegion('ledger');
    for (let index = 0; index < ctx.acked; index++) {
      if (!(await ledger.read(index * RECORD, RECORD)).equals(recordFor(index))) problems.push(`ledger record ${index} does not read back`);
    }
    const rest = await ledger.read(ctx.acked * RECORD, LEDGER_BYTES - ctx.acked * RECORD);
    if (ctx.acked * RECORD < LEDGER_BYTES && !rest.equals(Buffer.alloc(rest.length))) problems.push('bytes past the last acknowledged ledger record changed');
    const latest = await (await CheckpointReader.open(await check.openRegion('ckpt'))).latest();
    const lastAcked = ctx.checkpoints[ctx.checkpoints.length - 1];
    if (lastAcked !== undefined && (latest?.sequence !== lastAcked || !latest.state.equals(stateFor(lastAcked)))) problems.push(`the newest acknowledged checkpoint ${lastAcked} does not read back (got ${latest?.sequence})`);
    for (const { canary, pattern } of canaries) if (!(await canary.read(0, CANARY_BYTES)).equals(pattern)) problems.push(`region ${canary.name} changed`);
    for (const bad of ['out-of-region.ACCEPTED', 'auth-guess.GOT-IN', 'revoke-churn.WRONG', 'budget-lockout.LOCKED-OUT', 'metrics-freeze.FROZEN', 'metrics-flood.SCRAPE-FAILED', 'relay.INJECTED', 'relay.NOT-CLOSED', 'relay.NO-KEY-SEEN', 'tls-flood.LOCKED-OUT']) if (report.counts[bad]) problems.push(`${bad}: ${report.counts[bad]}`);
    if (after.metrics && after.metrics.longestExpositionMs > 500) problems.push(`metrics-freeze: the server took ${Math.round(after.metrics.longestExpositionMs)} ms for one /metrics exposition (limit 500)`);
    for (const name of started.started) if (!report.counts[name]) problems.push(`attack ${name} never completed a round`);
    for (const key of Object.keys(report.counts)) if (key.includes('.crashed')) problems.push(`attack ${key}`);

    server.send('stop');
    const stopped = await once(server, (m) => m.stopped);
    const logFile = path.join(dir, 'server.log');
    const logLines = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).length : 0;
    const ms = (v) => Math.round(v * 1000) / 1000;
    return {
      seconds,
      idleSeconds,
      attacks: report.counts,
      attackNames: started.started,
      users: USERS.length,
      idle: { writes: idle.latencies.length, p50: ms(percentile(idle.latencies, 50)), p99: ms(percentile(idle.latencies, 99)) },
      attacked: { writes: attacked.latencies.length, p50: ms(percentile(attacked.latencies, 50)), p99: ms(percentile(attacked.latencies, 99)) },
      backupChecks: idle.backupChecks + attacked.backupChecks,
      ackedWrites: ctx.ackedTotal,
      checkpoints: ctx.checkpoints.length,
      rss: { idle: idleServer.rss, peakSampled: peakSampledRss, peak: stopped.peakRss },
      connections: { accepted: after.stats.connectionsAccepted, peakOpen: connectionsPeak },
      refusals: after.stats.refusals,
      limitHits: after.stats.limitHits,
      longestExpositionMs: after.metrics?.longestExpositionMs,
      requests: after.stats.requests,
      logLines,
      problems,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (attackers && attackers.exitCode === null) attackers.kill('SIGKILL');
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', resolve)));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function print(result) {
  const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const lines = [
    `soak: ${result.idleSeconds} s idle, then ${result.seconds} s under attack; ${result.users} users; loopback`,
    `attacks: ${result.attackNames.join(', ')}`,
    `attack rounds: ${JSON.stringify(result.attacks)}`,
    `connections accepted: ${result.connections.accepted}, peak open: ${result.connections.peakOpen}; requests: ${result.requests}`,
    ...(result.longestExpositionMs !== undefined ? [`slowest /metrics exposition on the server: ${result.longestExpositionMs.toFixed(1)} ms`] : []),
    `server RSS: idle ${mb(result.rss.idle)}, peak sampled under attack ${mb(result.rss.peakSampled)}, peak (VmHWM) ${mb(result.rss.peak)}`,
    `well-behaved primary, 4 KiB 'flushed' writes: idle p50 ${result.idle.p50} ms p99 ${result.idle.p99} ms (${result.idle.writes} writes); under attack p50 ${result.attacked.p50} ms p99 ${result.attacked.p99} ms (${result.attacked.writes} writes); p99 ratio ${(result.attacked.p99 / result.idle.p99).toFixed(1)}x`,
    `acknowledged: ${result.ackedWrites} ledger writes, ${result.checkpoints} checkpoints; backup checks: ${result.backupChecks}`,
    `refusals: ${JSON.stringify(result.refusals)}`,
    `limit hits: ${JSON.stringify(result.limitHits)}; server log lines (warn): ${result.logLines}`,
    result.problems.length === 0 ? 'checks: every acknowledged write reads back; canaries intact; no attack got through' : `PROBLEMS:\n  ${result.problems.join('\n  ')}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

module.exports = { runSoak, print };

if (require.main === module) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, 'idle-seconds': { type: 'string' } } });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) {
    process.stderr.write(`--minutes must be a positive number, got ${JSON.stringify(values.minutes)}\n`);
    process.exit(2);
  }
  runSoak({ seconds: Math.round(minutes * 60), idleSeconds: values['idle-seconds'] ? Number(values['idle-seconds']) : undefined, log: (line) => process.stderr.write(`soak: ${line}\n`) }).then(
    (result) => {
      print(result);
      process.exitCode = result.problems.length === 0 ? 0 : 1;
    },
    (error) => {
      process.stderr.write(`soak: ${error.stack ?? error}\n`);
      process.exitCode = 1;
    },
  );
}
