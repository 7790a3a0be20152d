/**
 * After etcd lost the set's state, a PMU still holds a region: `pmu cluster create` refuses
 * (EEXIST) without ever advising to delete it, and offers `--adopt PMU`, which records the
 * region with that copy as the only in-sync replica; another replica then resyncs from it.
 * A size that differs is refused. Bound: ~10 s.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startReplicaAgent } from '../lib/mirror/agent';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { createMirroredRegion } from '../lib/mirror/resync';
import { SET_USER, startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const MiB = 1024 * 1024;
const run = etcdAvailable() ? describe : describe.skip;

run('adopting a region etcd forgot', () => {
  let set: TestSet;
  beforeAll(async () => {
    set = await startSet(3, { set: 'adopt' });
  }, 30_000);
  afterAll(async () => {
    await set?.close();
    removeTempDirs();
  });

  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, [PMU, 'cluster', ...args, '--etcd', set.etcd.url, '--set', 'adopt'], { env: { ...process.env, PMU_USER: SET_USER.user, PMU_SECRET: SET_USER.secret, PMU_URL: '' }, timeout: 20_000 }).then(
      (done) => ({ code: 0, ...done }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );

  test('create refuses with --adopt as the way out; adopt records the copy as in sync and another replica resyncs from it', async () => {
    const pool = set.pool();
    const config = await createMirroredRegion(set.directory, pool, 'orders', MiB);
    const [holder] = config.replicas;
    await (await pool.openRegion(holder, 'orders')).write(100, Buffer.from('the only copy'), { durability: 'flushed' });
    // etcd loses the set's record of the region (a lost or old snapshot).
    await set.directory.forgetRegion('orders');

    const refused = await cli(['create', 'orders', '--size', '1MiB']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/EEXIST: PMU '\w+' already holds a region 'orders' \(1048576 bytes\) that the set does not record: it may be the only copy/);
    expect(refused.stderr).toMatch(/pmu cluster create orders --adopt \w+/);
    expect(refused.stderr).not.toMatch(/delete/);

    const wrongSize = await cli(['create', 'orders', '--adopt', holder, '--size', '2MiB']);
    expect(wrongSize.code).toBe(1);
    expect(wrongSize.stderr).toMatch(/EINVAL: PMU '\w+' holds region 'orders' of 1048576 bytes, not the 2097152 asked for: nothing was changed/);
    await expect(set.directory.config('orders')).rejects.toMatchObject({ code: 'ENOENT' });

    const adopted = await cli(['create', 'orders', '--adopt', holder]);
    expect(adopted.stdout).toMatch(new RegExp(`adopted region 'orders' \\(1 MiB\\) on ${holder} as its in-sync copy; \\w+ resync from it`));
    const recorded = await set.directory.config('orders');
    // Above the epoch the replicas remember (1, stamped at creation): no reader takes it for a rollback.
    expect(recorded).toMatchObject({ size: MiB, inSync: [holder], syncing: [], epoch: 2 });
    expect(recorded.replicas).toHaveLength(2);
    expect(recorded.replicas[0]).toBe(holder);
    const other = recorded.replicas[1];

    const agent = startReplicaAgent(set.directory, pool, other, { intervalMs: 20 });
    try {
      await waitFor(`${other} in sync`, async () => (await set.directory.config('orders')).inSync.includes(other), 15_000, 20);
    } finally {
      await agent.stop();
    }
    expect((await (await pool.openRegion(other, 'orders')).read(100, 13)).toString()).toBe('the only copy');
    // Adopting what the set already records is refused.
    expect((await cli(['create', 'orders', '--adopt', holder])).stderr).toMatch(/EEXIST: mirrored region 'orders' already exists/);
  }, 30_000);

  test('adopting a copy that the newest remembered configuration left out is refused: it would resync stale data over newer', async () => {
    const pool = set.pool();
    const config = await createMirroredRegion(set.directory, pool, 'ledger', MiB, 2);
    const writer = await MirroredRegion.open(set.directory, set.pool(500), 'ledger');
    const [good, stale] = config.inSync;
    await set.stopPmu(stale);
    await writer.write(0, Buffer.from('newer'), { durability: 'flushed' }); // stale leaves; good remembers it
    const left = writer.configuration.epoch;
    await writer.close();
    await set.startPmu(stale);
    await set.directory.forgetRegion('ledger');
    const refused = await cli(['create', 'ledger', '--adopt', stale]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`PMU '${stale}' was not in sync in the newest configuration of 'ledger' that a replica remembers (epoch ${left}`);
    expect(refused.stderr).toContain(`--adopt ${good}`);
    await expect(set.directory.config('ledger')).rejects.toMatchObject({ code: 'ENOENT' });
    const adopted = await cli(['create', 'ledger', '--adopt', good]);
    expect(adopted.code).toBe(0);
    expect((await set.directory.config('ledger')).epoch).toBe(left + 1);
    const reader = await MirroredRegion.open(set.directory, set.pool(500), 'ledger');
    expect((await reader.read(0, 5)).toString()).toBe('newer');
    await reader.close();
  }, 30_000);
});
