/**
 * The PMU set's directory against a real etcd (started here from Debian's etcd-server):
 * configuration transitions, placement, removal rules, leases, and etcd out of reach.
 * Bound: ~5 s.
 */
import { place, RegionConfig, withInSync, withoutReplica, withSyncing } from '../lib/mirror/config';
import { MirrorDirectory } from '../lib/mirror/directory';
import { waitForWriters } from '../lib/mirror/resync';
import { isPmuError } from '../lib/unit/errors';
import { etcdAvailable, EtcdHandle, startEtcd } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const MiB = 1024 * 1024;

run('mirror directory in etcd', () => {
  let etcd: EtcdHandle;
  let directory: MirrorDirectory;
  let setCount = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    removeTempDirs();
  });
  beforeEach(async () => {
    directory = MirrorDirectory.connect(etcd.url, { set: `set${++setCount}`, timeoutMs: 1000 });
    await directory.init(2);
  });
  afterEach(() => directory.close());

  async function withPmus(capacities: number[]): Promise<void> {
    for (const [i, capacity] of capacities.entries()) await directory.addPmu({ id: `p${i + 1}`, url: `tcp://127.0.0.1:${7500 + i}`, capacity });
  }

  test('init refuses an existing set; a missing set is ENOENT', async () => {
    await expect(directory.init(2)).rejects.toMatchObject({ code: 'EEXIST' });
    const other = MirrorDirectory.connect(etcd.url, { set: 'never-made' });
    await expect(other.setInfo()).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(other.addPmu({ id: 'x', url: 'tcp://127.0.0.1:1', capacity: 1 })).rejects.toMatchObject({ code: 'ENOENT' });
    other.close();
    await expect(directory.init(4)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('placement takes the PMUs with most room left, so a set holds more than one host can', async () => {
    await withPmus([100 * MiB, 100 * MiB, 100 * MiB]);
    const placed: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const config = await directory.planRegion(`r${i}`, 40 * MiB);
      expect(config).toMatchObject({ inSync: config.replicas, syncing: [], epoch: 1 });
      await directory.recordRegion(config);
      placed.push(config.replicas);
    }
    expect(placed).toEqual([['p1', 'p2'], ['p3', 'p1'], ['p2', 'p3']]);
    // 240 MiB of copies on three 100 MiB PMUs; a fourth region has room on none of them.
    await expect(directory.planRegion('r3', 40 * MiB)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect((await directory.regions()).map((config) => config.name)).toEqual(['r0', 'r1', 'r2']);
  });

  test('place() refuses with ENOSPC when too few PMUs have room, and picks by free space', () => {
    const pmus = [
      { id: 'a', url: '', capacity: 100 },
      { id: 'b', url: '', capacity: 300 },
      { id: 'c', url: '', capacity: 200 },
    ];
    expect(place(pmus, [], 50, 2)).toEqual(['b', 'c']);
    const taken: RegionConfig[] = [{ name: 'x', size: 250, replicas: ['b'], inSync: ['b'], syncing: [], epoch: 1 }];
    expect(place(pmus, taken, 50, 2)).toEqual(['c', 'a']);
    expect(() => place(pmus, taken, 150, 2)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });

  test('a configuration moves only by a transaction from the value it compares: of two racers, one wins', async () => {
    await withPmus([64 * MiB, 64 * MiB, 64 * MiB]);
    const config = await directory.planRegion('race', MiB, 3);
    await directory.recordRegion(config);
    await expect(directory.recordRegion(config)).rejects.toMatchObject({ code: 'EEXIST' });
    const [a, b] = await Promise.all([directory.transition(config, withoutReplica(config, 'p1')), directory.transition(config, withoutReplica(config, 'p2'))]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    const stored = await directory.config('race');
    expect(stored.epoch).toBe(2);
    expect(stored.inSync).toHaveLength(2);
    // The loser's view is stale: its next transition fails too, until it re-reads.
    await expect(directory.transition(config, withoutReplica(config, 'p3'))).resolves.toBeUndefined();
    await expect(directory.transition(stored, { ...stored, epoch: 7 })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('syncing -> in sync only from syncing; the last in-sync replica cannot leave', async () => {
    const config: RegionConfig = { name: 'r', size: 8, replicas: ['p1', 'p2'], inSync: ['p1'], syncing: [], epoch: 5 };
    expect(() => withoutReplica(config, 'p1')).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(() => withInSync(config, 'p2')).toThrow(expect.objectContaining({ code: 'ECONFIG' }));
    expect(() => withSyncing(config, 'p1')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => withSyncing(config, 'p9')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const syncing = withSyncing(config, 'p2');
    expect(syncing).toMatchObject({ inSync: ['p1'], syncing: ['p2'], epoch: 6 });
    const joined = withInSync(syncing, 'p2');
    expect(joined).toMatchObject({ inSync: ['p1', 'p2'], syncing: [], epoch: 7 });
    // A failed syncing replica leaves the syncing set, and so cannot join.
    expect(withoutReplica(syncing, 'p2')).toMatchObject({ inSync: ['p1'], syncing: [], epoch: 7 });
  });

  test('removing a PMU takes it out of every region, its copies get a new home, but never the only in-sync copy', async () => {
    await withPmus([64 * MiB, 64 * MiB, 64 * MiB]);
    await directory.recordRegion({ name: 'two', size: MiB, replicas: ['p1', 'p2'], inSync: ['p1', 'p2'], syncing: [], epoch: 1 });
    await directory.recordRegion({ name: 'solo', size: MiB, replicas: ['p3', 'p1'], inSync: ['p3'], syncing: ['p1'], epoch: 4 });
    const replacements = await directory.removePmu('p1');
    // Each region gets the one PMU that does not hold it yet, out of sync until its agent resyncs it.
    expect(new Map(replacements)).toEqual(new Map([['two', 'p3'], ['solo', 'p2']]));
    expect(await directory.config('two')).toMatchObject({ replicas: ['p2', 'p3'], inSync: ['p2'], epoch: 2 });
    expect(await directory.config('solo')).toMatchObject({ replicas: ['p3', 'p2'], inSync: ['p3'], syncing: [], epoch: 5 });
    expect((await directory.pmus()).map((pmu) => pmu.id)).toEqual(['p2', 'p3']);
    await expect(directory.removePmu('p3')).rejects.toMatchObject({ code: 'EBUSY' });
    expect((await directory.pmus()).map((pmu) => pmu.id)).toEqual(['p2', 'p3']);
  });

  test('writer registrations publish epochs and vanish when their lease is revoked', async () => {
    const registration = await directory.registerClient('r', 2);
    expect(registration.validUntil()).toBeGreaterThan(Date.now());
    expect((await directory.clientEpochs('r')).get(registration.id)).toBe(0);
    await registration.publish(9);
    expect((await directory.clientEpochs('r')).get(registration.id)).toBe(9);
    await registration.close();
    expect(registration.validUntil()).toBe(0);
    expect((await directory.clientEpochs('r')).has(registration.id)).toBe(false);
  });

  test('a change that adds a replica waits for every registered writer: until it publishes the epoch, or its lease ends', async () => {
    const slow = await directory.registerClient('r', 2);
    const gone = await directory.registerClient('r', 2);
    await expect(waitForWriters(directory, 'r', 3, 100)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    let done = false;
    const waiting = waitForWriters(directory, 'r', 3, 10_000).then(() => (done = true));
    await slow.publish(3);
    expect(done).toBe(false);
    await gone.close();
    await waiting;
    expect(done).toBe(true);
    await slow.close();
  });

  test('a watch delivers every configuration change', async () => {
    await directory.recordRegion({ name: 'w', size: 8, replicas: ['p1', 'p2'], inSync: ['p1', 'p2'], syncing: [], epoch: 1 });
    const seen: number[] = [];
    const stop = await directory.watch('w', (config) => seen.push(config.epoch));
    let config = await directory.config('w');
    config = (await directory.transition(config, withoutReplica(config, 'p2')))!;
    config = (await directory.transition(config, withSyncing(config, 'p2')))!;
    await waitFor('two watch events', () => seen.length >= 2);
    expect(seen).toEqual([2, 3]);
    await stop();
  });

  test('etcd out of reach: every call fails within its deadline with EETCD (watch creation and lease grant too), and works again at once after', async () => {
    await withPmus([MiB]);
    const [config] = [{ name: 'w', size: MiB, replicas: ['p1'], inSync: ['p1'], syncing: [], epoch: 1 }];
    await directory.recordRegion(config);
    await etcd.pause();
    try {
      // Each call alone: the deadline is directory.timeoutMs (1000 ms), not etcd3's 3 tries of it.
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['pmus', () => directory.pmus()],
        ['config', () => directory.config('w')],
        ['watch', () => directory.watch('w', () => undefined)],
        ['registerClient', () => directory.registerClient('w')],
      ];
      for (const [what, call] of calls) {
        const started = Date.now();
        const error = await call().then(() => undefined, (e: { code?: string; message: string }) => e);
        const elapsed = Date.now() - started;
        expect({ what, code: error?.code }).toEqual({ what, code: 'EETCD' });
        expect(error?.message).toMatch(/nothing was acknowledged/);
        expect({ what, elapsed: elapsed < directory.timeoutMs + 1500 }).toEqual({ what, elapsed: true });
      }
    } finally {
      etcd.resume();
    }
    // No circuit breaker left open: the first calls after etcd returns succeed.
    await waitFor('etcd back', () => directory.pmus().then((pmus) => pmus.length === 1, () => false), 3000, 50);
    const stop = await directory.watch('w', () => undefined);
    await stop();
  }, 30_000);
});
