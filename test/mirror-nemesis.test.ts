/**
 * The short nemesis run (scripts/nemesis/run.js; the long one is npm run nemesis -- --minutes N):
 * etcd, three PMU processes with their replica agents, a primary and a backup process, 30 s
 * of randomised faults, and the history checker. Bound: ~50 s.
 */
import { etcdAvailable } from './helpers/etcd';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runNemesis, report } = require('../scripts/nemesis/run.js');

const run = etcdAvailable() ? describe : describe.skip;

run('nemesis (short run)', () => {
  test('30 s of PMU and primary faults: no acknowledged write lost, nothing invented, no zombie write read, reads only from in-sync replicas', async () => {
    const lines: string[] = [];
    const result = await runNemesis({ durationMs: 30_000, log: (line: string) => lines.push(line) });
    report(result, (line: string) => lines.push(line));
    process.stdout.write(lines.join('\n') + '\n');
    expect(result.violations).toEqual([]);
    expect(result.operations.acked).toBeGreaterThan(50);
    expect(result.operations.reads).toBeGreaterThan(50);
    expect(result.finalConfig.inSync).toHaveLength(3);
    const kinds = Object.keys(result.faults);
    expect(kinds.length).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
