/**
 * pmu bench: runs the benchmark in bench/ (floors, pmu embedded and remote, the checkpoint
 * protocol, and peers such as Redis and lmdb-js, side by side in one run) as its own process,
 * so that its pinning and child servers are its own business. The options are checked here
 * (one table, as for every command) and handed over as given.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuError } from '../../unit/errors';
import { Command } from '../command';

const BENCH = path.join(__dirname, '..', '..', '..', 'bench');
const RUNNER = path.join(BENCH, 'run.js');

/** The suites bench/run.js knows (bench/lib/suite-names.js), or undefined where bench/ is not installed. */
function suites(): string[] | undefined {
  try {
    return (require(path.join(BENCH, 'lib', 'suite-names.js')) as { SUITES: string[] }).SUITES;
  } catch {
    return undefined;
  }
}

export const bench: Command = {
  summary: 'measure pmu against the floors (msync, a Node ping-pong) and peers (Redis, lmdb-js)',
  get description() {
    const names = suites();
    return `Runs every suite in one run and prints a markdown table with p50/p99, throughput and the
ratios to the floors and the peers, plus the machine it ran on; writes latest.md and
latest.json to --out (default ./pmu-bench-results).
Suites: ${names ? names.join(', ') : '(the benchmark is not part of this install)'}.
pmu's own suites need nothing more than pmu. The peers suite measures Redis and lmdb-js when
their clients are installed (npm install ioredis lmdb, and apt-get install redis-server) and
says what it skipped otherwise.`;
  },
  options: {
    quick: { type: 'boolean', help: 'a smoke run of a few seconds: rough figures' },
    only: { type: 'string', value: 'SUITE,...', help: 'run only these suites (listed above)' },
    case: { type: 'string', value: 'TEXT,...', help: 'keep only the cases whose label contains one of the texts' },
    docs: { type: 'boolean', help: 'rewrite docs/BENCHMARKS.md with this run (in a clone of the repository)' },
    out: { type: 'string', value: 'DIR', help: 'where to write latest.md and latest.json (default ./pmu-bench-results)' },
  },
  run(_parsed, argv) {
    if (!fs.existsSync(RUNNER)) throw new PmuError('ENOENT', `the benchmark is not part of this install (${RUNNER} is missing); run it from a clone of the repository`);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [RUNNER, ...argv], { stdio: 'inherit', env: { ...process.env, PMU_BENCH_COMMAND: 'pmu bench' } });
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
  },
};
