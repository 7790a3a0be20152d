/**
 * pmu bench: runs the benchmark in bench/ (floors, pmu embedded and remote, the checkpoint
 * protocol, and peers such as Redis and lmdb-js, side by side in one run) as its own process,
 * so that its pinning and child servers are its own business.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuError } from '../../unit/errors';
import { Command } from '../command';

const RUNNER = path.join(__dirname, '..', '..', '..', 'bench', 'run.js');

export const bench: Command = {
  summary: 'measure pmu against the floors (msync, a Node ping-pong) and peers (Redis, lmdb-js)',
  usage: `Usage: pmu bench [--quick] [--only SUITE,...] [--docs] [--out DIR]

Runs every suite (floors, embedded, remote, checkpoint, peers) in one run and prints a markdown
table with p50/p99, throughput and the ratios to the floors and the peers, plus the machine it
ran on; writes latest.md and latest.json to --out (default ./pmu-bench-results).
  --quick       a smoke run of a few seconds: rough figures
  --only        run only these suites: floors, embedded, remote, checkpoint, peers
  --docs        rewrite docs/BENCHMARKS.md with this run (in a clone of the repository)
pmu's own suites need nothing more than pmu. The peers suite measures Redis and lmdb-js when
their clients are installed (npm install ioredis lmdb, and apt-get install redis-server) and
says what it skipped otherwise.`,
  run(argv) {
    if (!fs.existsSync(RUNNER)) throw new PmuError('ENOENT', `the benchmark is not part of this install (${RUNNER} is missing); run it from a clone of the repository`);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [RUNNER, ...argv], { stdio: 'inherit', env: { ...process.env, PMU_BENCH_COMMAND: 'pmu bench' } });
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
  },
};
