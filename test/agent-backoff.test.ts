/**
 * The replica agent when a resync keeps failing: it backs off per region (fewer attempts than
 * its polling cadence would make, each delay longer than the last), says why each time, and
 * writes the failure to its agent record, which `pmu cluster status` shows. Bound: ~10 s.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AgentEvent, RESYNC_BACKOFF, startReplicaAgent } from '../lib/mirror/agent';
import { backoffDelay } from '../lib/mirror/backoff';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const MiB = 1024 * 1024;
const run = etcdAvailable() ? describe : describe.skip;

test('backoff doubles from the initial delay to the cap, jitter only shortens it', () => {
  const exact = (failures: number) => backoffDelay(RESYNC_BACKOFF, failures, () => 0);
  expect([1, 2, 3, 4, 7, 8, 100].map(exact)).toEqual([500, 1000, 2000, 4000, 30_000, 30_000, 30_000]);
  expect(backoffDelay(RESYNC_BACKOFF, 1, () => 1)).toBe(400);
  expect(backoffDelay({ initialMs: 100, maxMs: 10_000, jitter: 0 }, 5, () => 1)).toBe(1600);
});

run('replica agent backoff', () => {
  let set: TestSet;
  beforeAll(async () => {
    set = await startSet(2, { set: 'backoff' });
  }, 30_000);
  afterAll(async () => {
    await set?.close();
    removeTempDirs();
  });

  test('a resync that keeps failing is retried with growing delays, and its failure shows in pmu cluster status', async () => {
    const pool = set.pool();
    // pmu2 holds a region 'bad' of another size than the set records: every resync is refused.
    await (await pool.client('pmu1')).createRegion('bad', MiB);
    await (await pool.client('pmu2')).createRegion('bad', 64 * 1024);
    await set.directory.recordRegion({ name: 'bad', size: MiB, replicas: ['pmu1', 'pmu2'], inSync: ['pmu1'], syncing: [], epoch: 1 });

    const events: Array<AgentEvent & { t: number }> = [];
    const started = Date.now();
    // Polled every 20 ms: without backoff that is ~50 attempts a second.
    const agent = startReplicaAgent(set.directory, pool, 'pmu2', { intervalMs: 20, backoff: { initialMs: 200, maxMs: 30_000 }, onEvent: (event) => events.push({ ...event, t: Date.now() - started }) });
    try {
      const failures = () => events.filter((event) => event.kind === 'resync-failed');
      await waitFor('4 failed resyncs', () => failures().length >= 4, 10_000);
      const elapsed = Date.now() - started;
      const attempts = events.filter((event) => event.kind === 'resync-start').length;
      // 200 + 400 + 800 ms (less up to 20% jitter) between the four attempts.
      expect(elapsed).toBeGreaterThan(1100);
      expect(attempts).toBeLessThanOrEqual(5);
      expect(attempts).toBeLessThan(elapsed / 20 / 4);
      const [first, second, third] = failures();
      expect(first).toMatchObject({ region: 'bad', code: 'EINVAL', attempts: 1 });
      expect(first.detail).toMatch(/holds region 'bad' of 65536 bytes, the set says 1048576/);
      expect(second.retryInMs!).toBeGreaterThan(first.retryInMs!);
      expect(third.retryInMs!).toBeGreaterThan(second.retryInMs!);

      const state = await waitFor('the agent record', async () => (await set.directory.agentStates()).get('pmu2')?.regions.bad);
      expect(state).toMatchObject({ attempts: expect.any(Number), error: expect.stringMatching(/^EINVAL: /) });
      const status = await promisify(execFile)(process.execPath, [PMU, 'cluster', 'status', '--etcd', set.etcd.url, '--set', 'backoff'], { timeout: 20_000 });
      expect(status.stdout).toMatch(/pmu2\s+out of sync: resync failed \d+ time\(s\) \(EINVAL: PMU 'pmu2' holds region 'bad' of 65536 bytes.*\); next try at \d{4}-/);
    } finally {
      await agent.stop();
    }
  }, 30_000);
});
