/**
 * Fast failover on a mirrored region: a backup learns of a SIGKILLed primary from the replicas'
 * connection-drop notices (MirroredRegion.watchWriters), as on one PMU, not from the writer
 * lease. The lease here is 20 s, so only the notice can end the watch within the bound.
 * Bound: ~10 s.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CheckpointReader, openPrimary } from '../lib/checkpoint';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { createMirroredRegion } from '../lib/mirror/resync';
import { SET_USER, startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor, waitForLine } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const PRIMARY = path.join(__dirname, '..', 'bench', 'peers', 'mirror-primary.js');

run('mirrored region failover', () => {
  let set: TestSet;
  beforeAll(async () => {
    set = await startSet(2, { set: 'failover' });
  }, 30_000);
  afterAll(async () => {
    await set?.close();
    removeTempDirs();
  });

  test('a SIGKILLed primary is noticed from the replicas within far less than the lease, and the backup takes over with every record', async () => {
    await createMirroredRegion(set.directory, set.pool(1000), 'fast', 256 * 1024, 2);
    const child = spawn(process.execPath, [PRIMARY], {
      env: { ...process.env, ETCD_URL: set.etcd.url, SET: 'failover', REGION: 'fast', PMU_USER: SET_USER.user, PMU_SECRET: SET_USER.secret },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await waitForLine(child, /ready/);
    const backup = await MirroredRegion.open(set.directory, set.pool(1000), 'fast');
    const reader = await CheckpointReader.open(backup);
    const watching = reader.watchPrimary({ leaseMs: 20_000 });
    // watchPrimary subscribes asynchronously; a second subscription sent after it on the same
    // connections is answered after it, so once this one resolves both are in place.
    let notices = 0;
    const unwatch = await backup.watchWriters(() => notices++);
    const killedAt = performance.now();
    child.kill('SIGKILL');
    const failure = await watching;
    const noticedMs = performance.now() - killedAt;
    expect(failure.reason).toBe('disconnected');
    expect(noticedMs).toBeLessThan(5000);
    await waitFor('the second subscription hears the same notice', () => notices > 0, 5000);
    await unwatch();
    const taken = await openPrimary(reader, { heartbeatMs: 0 });
    expect(taken.records[0].payload.toString()).toBe('first');
    taken.records.slice(1).forEach((record, i) => expect(record.payload.toString()).toBe(`record ${i}`));
    await taken.writer.close();
    await backup.close();
  }, 20_000);
});
