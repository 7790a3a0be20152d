/**
 * Failover of the example service on an embedded unit: the primary opens the PMU file itself,
 * the backup waits for the file lock (it gets it only once the primary is dead), a SIGKILL at a
 * random moment, 30 times in a row; after each, every acknowledged write is present exactly
 * once and in order.
 */
import { ChildProcess } from 'node:child_process';
import { removeTempDirs, tempFile } from './helpers/temp';
import { waitForExit } from './helpers/wait';
import { closeAgent, failoverDrill, startService } from './fixtures/checkpoint-failover';

afterAll(() => {
  closeAgent();
  removeTempDirs();
});

describe('failover, embedded', () => {
  let last: ChildProcess | undefined;
  afterAll(async () => {
    if (last && last.exitCode === null && last.signalCode === null) {
      last.kill('SIGKILL');
      await waitForExit(last);
    }
  });

  test('SIGKILL of the primary at 30 random moments: every acknowledged write survives exactly once, in order', async () => {
    const file = tempFile('kv.pmu');
    const times: number[] = [];
    last = startService('primary', file);
    const result = await failoverDrill(last, {
      iterations: 30,
      startBackup: () => (last = startService('backup', file)),
      onFailover: (ms) => times.push(ms),
    });
    last = result.primary;
    const acked = result.lanes.reduce((sum, lane) => sum + lane.acked.length, 0);
    expect(times).toHaveLength(30);
    expect(acked).toBeGreaterThanOrEqual(30);
  }, 120_000);
});
