'use strict';
// The soak's server: a PmuServer with the default limits, in its own process so its RSS is its own.
// Environment: SOAK_DIR. Talks to its parent over IPC: sends { ready, url, unix, pid }, answers 'stats'
// with { stats, rss, peakRss }, closes on 'stop'.
const fs = require('node:fs');
const path = require('node:path');
// SOAK_SERVER_DIST: another build's dist/ (e.g. an older commit's) to soak that server instead.
const dist = process.env.SOAK_SERVER_DIST ?? path.join(__dirname, '..', '..', 'dist');
const { PmuServer, PersistentMemoryUnit } = require(dist);
const { createLog } = fs.existsSync(path.join(dist, 'obs', 'log.js')) ? require(path.join(dist, 'obs', 'log')) : { createLog: () => undefined };

function memory() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { rss: kib('VmRSS') * 1024, peakRss: kib('VmHWM') * 1024 };
}

(async () => {
  const dir = process.env.SOAK_DIR;
  const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 96 << 20 });
  // Warnings (failed logins, limit hits) go to a file: the soak reports how many lines it wrote.
  const log = createLog({ level: 'warn', fd: fs.openSync(path.join(dir, 'server.log'), 'a') });
  const server = new PmuServer({ unit, users: path.join(dir, 'users.json'), tcp: { host: '127.0.0.1', port: 0 }, socket: path.join(dir, 'pmu.sock'), log });
  const addresses = await server.listen();
  process.send({ ready: true, url: addresses.tcp, unix: addresses.unix, pid: process.pid });
  process.on('message', async (message) => {
    if (message === 'stats') process.send({ stats: { limitHits: {}, ...server.stats() }, ...memory() });
    if (message === 'stop') {
      await server.close();
      process.send({ stopped: true, ...memory() });
      process.disconnect();
    }
  });
})().catch((error) => {
  process.stderr.write(`soak server: ${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
