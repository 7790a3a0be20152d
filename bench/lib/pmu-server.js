'use strict';
// The bench's PMU server process (peers/pmu-server.js) with credentials, and its group-commit
// counters on demand (SIGUSR2 → a "stats" line): how many writes one msync served.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { startChild } = require('./child');

const SERVER = path.join(__dirname, '..', 'peers', 'pmu-server.js');

async function startPmuServer(ctx, name, { unitBytes, cpu, env: extraEnv } = {}) {
  const secret = crypto.randomBytes(32).toString('hex');
  const dataDir = path.join(ctx.dir, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const env = { ...extraEnv, PMU_BENCH_SECRET: secret };
  if (unitBytes) env.PMU_BENCH_UNIT_BYTES = String(unitBytes);
  const server = await startChild(process.execPath, [SERVER, dataDir], /ready (\S+) (\S+)/, { env, cpu });
  const { child } = server;
  return {
    ...server,
    urls: { TCP: server.match[1], Unix: server.match[2] },
    credentials: { user: 'bench', secret, timeoutMs: 120_000 },
    /** { flushes, flushedWrites } since the server started. */
    stats() {
      return new Promise((resolve, reject) => {
        let buffer = '';
        const timer = setTimeout(() => {
          child.stdout.off('data', onData);
          reject(new Error('the pmu server did not answer SIGUSR2 within 5 s'));
        }, 5000);
        const onData = (chunk) => {
          buffer += chunk.toString();
          const match = buffer.match(/stats (\{.*\})\n/);
          if (match) {
            clearTimeout(timer);
            child.stdout.off('data', onData);
            resolve(JSON.parse(match[1]));
          }
        };
        child.stdout.on('data', onData);
        child.kill('SIGUSR2');
      });
    },
  };
}

module.exports = { startPmuServer };
