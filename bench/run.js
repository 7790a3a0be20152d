#!/usr/bin/env node
'use strict';
// The benchmark: floors, pmu (embedded, remote, checkpoint) and peers, side by side in one run.
//   node bench/run.js [--quick] [--only suite,suite] [--case TEXT,...] [--docs] [--out DIR]   (also: pmu bench)
// --case keeps only the cases whose label contains one of the texts: e.g. the remote headline
// rows alone, `--only remote --case interleaved`, a one-minute run to compare changes with.
// --quick is the CI smoke run (seconds, no assertions); --docs rewrites docs/BENCHMARKS.md.
// Results go to --out, default ./pmu-bench-results under the working directory: never into the
// package itself, which may be a read-only node_modules/pmu.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Progress } = require('./lib/progress');
const { markdown, sizeName } = require('./lib/report');
const { charts } = require('./lib/plots');
const { canPin, SERVER_CPU } = require('./lib/child');

const { SUITES } = require('./lib/suite-names');
const USAGE = 'usage: pmu bench [--quick] [--only SUITE,...] [--case TEXT,...] [--docs] [--out DIR]; suites: ' + SUITES.join(', ');
/** How the user started this run, for the report and messages: `pmu bench` sets it. */
const COMMAND = process.env.PMU_BENCH_COMMAND || 'npm run bench --';
const IN_CLONE = fs.existsSync(path.join(__dirname, '..', 'lib', 'index.ts'));

/** A mistake on the command line: one line and exit status 2, no stack trace. */
class UsageError extends Error {}

function parseCommandLine(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        case: { type: 'string' },
        docs: { type: 'boolean', default: false },
        out: { type: 'string', default: 'pmu-bench-results' },
      },
    }));
  } catch (error) {
    throw new UsageError(error.message);
  }
  const only = values.only !== undefined ? values.only.split(',').map((s) => s.trim()) : SUITES;
  const unknown = only.filter((name) => !SUITES.includes(name));
  if (unknown.length > 0 || only.length === 0) throw new UsageError(`unknown suite ${JSON.stringify(unknown[0] ?? values.only)}`);
  const caseFilter = values.case !== undefined ? values.case.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : undefined;
  if (caseFilter !== undefined && caseFilter.length === 0) throw new UsageError('--case needs at least one text to look for in case labels');
  // A partial run must not overwrite the documented one.
  if (values.docs && caseFilter) throw new UsageError('--docs writes a full run; drop --case');
  if (values.docs && !IN_CLONE) throw new UsageError('--docs rewrites docs/BENCHMARKS.md of a clone of the repository; this is an installed package');
  return { ...values, only, caseFilter, out: path.resolve(values.out) };
}

function machine() {
  let tmpFs = 'unknown';
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '));
    const tmp = fs.realpathSync(os.tmpdir());
    const best = mounts.filter((m) => tmp === m[1] || tmp.startsWith(m[1].endsWith('/') ? m[1] : m[1] + '/')).sort((a, b) => b[1].length - a[1].length)[0];
    if (best) tmpFs = best[2];
  } catch {}
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.versions.node,
    tmpdir: os.tmpdir(),
    tmpFs,
    pinning: process.env.PMU_BENCH_PINNED ? `bench on CPU 0, every server it measures (pmu, echo, Redis) on CPU ${SERVER_CPU}, unless a row says otherwise` : 'not pinned (taskset unavailable)',
  };
}

/**
 * Runs the bench pinned to CPU 0 (its servers go to CPU 1, see lib/child.js): on a small VM,
 * where the scheduler puts two processes decides a round trip more than the code does.
 */
function pinSelf(argv) {
  if (process.env.PMU_BENCH_PINNED || !canPin()) return false;
  const { spawnSync } = require('node:child_process');
  const result = spawnSync('taskset', ['-c', '0', process.execPath, __filename, ...argv], { stdio: 'inherit', env: { ...process.env, PMU_BENCH_PINNED: '1' } });
  process.exitCode = result.status ?? 1;
  return true;
}

async function main(argv) {
  const values = parseCommandLine(argv);
  if (pinSelf(argv)) return;
  const only = values.only;
  const quick = values.quick;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-'));
  const notes = [];
  const ctx = {
    quick,
    dir,
    sizes: quick ? [64, 4096, 1 << 20] : [64, 4096, 65536, 1 << 20, 16 << 20],
    networkSizes: quick ? [4096] : [64, 4096, 65536, 1 << 20, 16 << 20],
    iterations(size) {
      const full = size <= 4096 ? 2000 : size <= 65536 ? 1000 : size <= 1 << 20 ? 100 : 15;
      return quick ? Math.max(5, Math.floor(full / 10)) : full;
    },
    sizeName,
    note: (line) => notes.push(line),
  };

  // The machine is shared: the load beside the figures says how far to trust them.
  const loadAtStart = os.loadavg();
  const loaded = [];
  for (const name of only) {
    const file = path.join(__dirname, 'suites', `${name}.js`);
    if (!fs.existsSync(file)) {
      notes.push(`${name}: suite not available in this build: skipped`);
      continue;
    }
    loaded.push(require(file));
  }
  const wanted = (c) => values.caseFilter === undefined || values.caseFilter.some((text) => c.label.includes(text));
  const plan = loaded.map((suite) => ({ suite, cases: suite.cases(ctx).filter(wanted) })).filter((p) => p.cases.length > 0);
  const progress = new Progress(plan.reduce((n, p) => n + p.cases.length, 0));
  const rows = [];
  try {
    for (const { suite, cases } of plan) {
      let state;
      try {
        state = await suite.setup(ctx);
      } catch (error) {
        notes.push(`${suite.name}: could not start (${error.message}): skipped`);
        for (let i = 0; i < cases.length; i++) progress.tick();
        continue;
      }
      try {
        for (const c of cases) {
          progress.step(`${suite.name}: ${c.label}`);
          // One case that fails is a line in the report, not the end of a ten-minute run.
          try {
            const result = await c.run(state);
            for (const row of [].concat(result || [])) rows.push({ suite: suite.name, ...row });
          } catch (error) {
            notes.push(`${suite.name}: ${c.label}: failed (${error.message}): no rows`);
          }
          progress.tick();
        }
      } finally {
        await suite.teardown?.(state);
      }
    }
  } finally {
    progress.finish();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const run = {
    command: [COMMAND, ...argv].join(' '),
    date: new Date().toISOString(),
    quick,
    machine: { ...machine(), loadAverage: { start: loadAtStart, end: os.loadavg() } },
    notes,
    rows,
  };
  const drawn = charts(rows);
  const md = markdown(run, drawn);
  fs.mkdirSync(values.out, { recursive: true });
  for (const chart of drawn) fs.writeFileSync(path.join(values.out, chart.file), chart.svg);
  fs.writeFileSync(path.join(values.out, 'latest.json'), JSON.stringify(run, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out, 'latest.md'), md);
  if (values.docs) {
    const header = '# Benchmarks\n\nThe latest full run of `npm run bench`, written by `node bench/run.js --docs`. Every figure and chart below comes from that one run: the floors, pmu and the peers were measured side by side on the same machine. Compare only figures from one run: the machine is shared and noisy (the load average during the run is in the machine line). The charts are SVG files in [docs/bench/](bench/), drawn by bench/lib/chart.js; `npm run bench` writes the same charts next to its tables in `pmu-bench-results/`. Where the remote time goes: `node bench/tools/profile-remote.js [tcp|unix] [--one-core] [--echo [--onread]] [--plain]` profiles both processes (`--cpu-prof`; `--echo` the ping-pong pair instead, `--onread` with both its ends on onread) and prints CPU per request on each side; `npm run bench -- --only remote --case interleaved,\'one core\'` measures only the remote headline rows (about a minute). The durable suite alternates pmu\'s durable remote acks (a 4 KiB `\'flushed\'` write and checkpoint append) with Redis\'s (`appendfsync always`: SET and XADD) and their floors (the Node ping-pong, memcpy + msync in C) in 24 short rounds, so the p99s face the same minutes of this machine; `npm run bench -- --only durable` runs just those rows (about 15 s), and `node bench/tools/ack-trace.js [--flush auto|pool]` shows where a durable ack\'s time goes inside the server (`perf trace`, as root). The remote floors are interleaved with pmu in the same run after 2,000 untimed round trips of each pair. pmu\'s client and server read with net\'s `onread` (one reused buffer, no readable stream; the server\'s accepted sockets are re-made with it, lib/wire/shared-read.ts), the floor\'s ends with `\'data\'` events, the way most Node code reads; the rows marked *onread at both ends* measure the same ping-pong with both ends reading as pmu\'s do, so pmu\'s margin over a pair that skips the same work is on the page too.\n\n';
    const docs = path.join(__dirname, '..', 'docs');
    fs.mkdirSync(path.join(docs, 'bench'), { recursive: true });
    for (const chart of drawn) fs.writeFileSync(path.join(docs, 'bench', chart.file), chart.svg);
    fs.writeFileSync(path.join(docs, 'BENCHMARKS.md'), header + markdown(run, drawn, 'bench/'));
  }
  process.stdout.write(md);
  process.stdout.write(`\n(written to ${path.relative(process.cwd(), values.out) || '.'}/latest.md and latest.json)\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`pmu bench: ${error.message} (${USAGE})\n`);
      process.exitCode = 2;
      return;
    }
    // A failure of the run itself: the message, and the stack only when asked for.
    process.stderr.write(`pmu bench: ${process.env.PMU_BENCH_DEBUG ? error.stack : error.message}\n`);
    process.exitCode = 1;
  });
}

module.exports = { main };
