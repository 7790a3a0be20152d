#!/usr/bin/env node
'use strict';
// Failover time of examples/kv-service.js: from the SIGKILL of the primary to the backup
// answering a request, over N runs (default 30), with a hot standby and a client writing.
//   node bench/failover.js [--runs 30] [--remote]
// Embedded: the backup waits for the unit's file lock. --remote: both are clients of a
// `pmu serve` child; the backup follows the log and hears of the death from the server.
// Needs dist/ (npm run prepare, or npx tsc -p tsconfig.build.json).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, remote: { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const root = path.join(__dirname, '..');
const example = path.join(root, 'examples', 'kv-service.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-failover-'));
const children = new Set();

function start(args, env = process.env) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function line(child, pattern, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${seen.slice(-300)}`)), timeoutMs);
    const onData = (chunk) => {
      seen += chunk;
      const match = seen.match(pattern);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(match);
      }
    };
    child.stdout.on('data', onData);
  });
}

function put(port, key) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/' + key }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`status ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end('v');
  });
}

/** Retries a PUT until the new primary answers: the first answered request ends the failover. */
async function firstAnswer(port) {
  for (;;) {
    try {
      return await put(port, 'probe');
    } catch {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  let where = path.join(dir, 'kv.pmu');
  let env = process.env;
  if (values.remote) {
    const server = start([path.join(root, 'bin', 'pmu.js'), 'serve', '--data', dir, '--port', '0', '--size', '64MiB']);
    where = (await line(server, /listening on (tcp:\/\/\S+)/))[1];
    const credential = JSON.parse(fs.readFileSync(path.join(dir, 'admin.credential.json'), 'utf8'));
    env = { ...process.env, PMU_USER: credential.user, PMU_SECRET: credential.secret };
  }
  let primary = start([example, 'primary', where, '0'], env);
  let port = Number((await line(primary, /serving on (\d+)/))[1]);
  const times = [];
  for (let run = 0; run < runs; run++) {
    const backup = start([example, 'backup', where, '0'], env);
    const serving = line(backup, /serving on (\d+)/);
    await line(backup, /standing by/);
    // A client keeps writing; the kill lands after a random number of acknowledged writes.
    let stop = false;
    const writes = Math.floor(Math.random() * 50);
    for (let i = 0; i < writes; i++) await put(port, `k${run}-${i}`);
    const client = (async () => {
      for (let i = 0; !stop; i++) await put(port, `c${run}-${i}`).catch(() => (stop = true));
    })();
    const killedAt = process.hrtime.bigint();
    primary.kill('SIGKILL');
    port = Number((await serving)[1]);
    await firstAnswer(port);
    times.push(Number(process.hrtime.bigint() - killedAt) / 1e6);
    stop = true;
    await client;
    primary = backup;
  }
  const sorted = [...times].sort((a, b) => a - b);
  const mode = values.remote ? 'remote (pmu serve, watchWriters + 500 ms lease)' : 'embedded (file lock)';
  console.log(`failover ${mode}, ${runs} runs, SIGKILL -> first answered request:`);
  console.log(`  p50 ${percentile(sorted, 50).toFixed(1)} ms   p90 ${percentile(sorted, 90).toFixed(1)} ms   worst ${sorted[sorted.length - 1].toFixed(1)} ms   best ${sorted[0].toFixed(1)} ms`);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
