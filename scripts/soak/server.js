'use strict';
// The soak's server: a PmuServer with the default limits, in its own process so its RSS is its own.
// Environment: SOAK_DIR. Talks to its parent over IPC: sends { ready, url, unix, pid }, answers 'stats'
// with { stats, rss, peakRss }, closes on 'stop'.
const fs = require('node:fs');
const path = require('node:path');
// SOAK_SERVER_DIST: another build's dist/ (e.g. an older commit's) to soak that server instead.
const dist = process.env.SOAK_SERVER_DIST ?? path.join(__dirname, '..', '..', 'dist');
const { PmuServer, PersistentMemoryUnit, PmuMetrics, serveMetrics, CheckpointLogFigures } = require(dist);
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
  // The metrics endpoint as pmu serve --metrics runs it: unauthenticated, so it is attacked too.
  let metricsUrl;
  let metricsEndpoint;
  if (PmuMetrics && serveMetrics && CheckpointLogFigures) {
    const figures = new CheckpointLogFigures(unit);
    metricsEndpoint = await serveMetrics(new PmuMetrics({ serverStats: () => server.stats(), unit, logs: () => figures.logs() }), { host: '127.0.0.1', port: 0 });
    metricsUrl = metricsEndpoint.url;
  }
  // A TLS listener in the same process (so the same descriptor limit): the TLS handshake flood
  // attacks it, and must lock out neither its TLS clients nor the Unix and TCP ones above.
  let tlsUrl;
  let tlsCa;
  const certDir = path.join(dir, 'tls');
  fs.mkdirSync(certDir, { recursive: true });
  const made = require('node:child_process').spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  let tlsServer;
  if (made.status === 0) {
    const tlsUnit = PersistentMemoryUnit.open(path.join(dir, 'tls-unit.pmu'), { size: 4 << 20 });
    const tls = { key: fs.readFileSync(path.join(certDir, 'key.pem')), cert: fs.readFileSync(path.join(certDir, 'cert.pem')) };
    tlsServer = new PmuServer({ unit: tlsUnit, users: path.join(dir, 'users.json'), tcp: { host: '127.0.0.1', port: 0 }, tls, log });
    tlsUrl = (await tlsServer.listen()).tcp;
    tlsCa = path.join(certDir, 'cert.pem');
  }
  process.send({ ready: true, url: addresses.tcp, unix: addresses.unix, metricsUrl, tlsUrl, tlsCa, pid: process.pid });
  process.on('message', async (message) => {
    if (message === 'stats') process.send({ stats: { limitHits: {}, ...server.stats() }, metrics: metricsEndpoint?.stats, ...memory() });
    if (message === 'stop') {
      await server.close();
      await tlsServer?.close();
      process.send({ stopped: true, ...memory() });
      process.disconnect();
    }
  });
})().catch((error) => {
  process.stderr.write(`soak server: ${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
