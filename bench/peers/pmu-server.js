'use strict';
// A PMU server for the bench, in its own process as in production: a fresh unit in DATA_DIR,
// one admin user whose secret comes from PMU_BENCH_SECRET, TCP on a free loopback port and a
// Unix socket. Prints "ready <tcp-url> <unix-url>". Usage: node pmu-server.js DATA_DIR
// PMU_BENCH_METRICS=127.0.0.1:9464 also serves its Prometheus metrics there, to watch a server
// under the bench with `pmu stat` (one server at a time: the port is fixed);
// PMU_BENCH_METRICS_INTERVAL_MS sets how long a scrape's text is reused (0: every scrape is fresh).
// PMU_BENCH_UNIT_BYTES sizes the unit (default 160 MiB). SIGUSR2 prints one line
// "stats <json>" with the unit's group-commit counters, for the scale suites.
const path = require('node:path');
const { PersistentMemoryUnit, PmuServer, UserDirectory, PmuMetrics, serveMetrics, CheckpointLogFigures } = require('pmu');

async function main() {
  const dataDir = process.argv[2];
  const unit = PersistentMemoryUnit.open(path.join(dataDir, 'bench.pmu'), { size: Number(process.env.PMU_BENCH_UNIT_BYTES || 160 << 20) });
  const users = new UserDirectory({ bench: { secret: process.env.PMU_BENCH_SECRET, admin: true } });
  // One user opens up to 256 connections in the scale suites: above the default per-user limit.
  const limits = { maxConnectionsPerUser: 1024, maxConnections: 2048 };
  const server = new PmuServer({ unit, users, limits, tcp: { host: '127.0.0.1', port: 0 }, socket: path.join(dataDir, 'pmu.sock') });
  // PMU_BENCH_FLUSH picks where a lone durable write's msync runs (OpenOptions.loneFlush), to compare.
  if (process.env.PMU_BENCH_FLUSH) unit.loneFlush = process.env.PMU_BENCH_FLUSH;
  const addresses = await server.listen();
  if (process.env.PMU_BENCH_METRICS) {
    const [host, port] = process.env.PMU_BENCH_METRICS.split(':');
    const logFigures = new CheckpointLogFigures(unit);
    const metrics = new PmuMetrics({ serverStats: () => server.stats(), unit, logs: () => logFigures.logs() });
    const minIntervalMs = process.env.PMU_BENCH_METRICS_INTERVAL_MS === undefined ? undefined : Number(process.env.PMU_BENCH_METRICS_INTERVAL_MS);
    await serveMetrics(metrics, { host, port: Number(port) }, { minIntervalMs }).catch(() => undefined);
  }
  process.stdout.write(`ready ${addresses.tcp} ${addresses.unix}\n`);
  process.on('SIGUSR2', () => {
    const { flushes, flushedWrites } = unit.stats();
    process.stdout.write(`stats ${JSON.stringify({ flushes, flushedWrites })}\n`);
  });
  process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
