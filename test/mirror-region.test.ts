/**
 * MirroredRegion over three PMU servers and a real etcd: the write, read and failure rules,
 * compare-and-swap, the checkpoint protocol (takeover, fencing) running unchanged on it, and
 * resync while writes go on. Bound: ~20 s.
 */
import { randomBytes } from 'node:crypto';
import { CheckpointReader, EPOCH_OFFSET, openPrimary } from '../lib/checkpoint';
import { withoutReplica } from '../lib/mirror/config';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { PmuPool } from '../lib/mirror/pool';
import { createMirroredRegion, resync } from '../lib/mirror/resync';
import { isPmuError, PmuError } from '../lib/unit/errors';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable, EtcdHandle, startEtcd } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const SIZE = 256 * 1024;

run('MirroredRegion', () => {
  let set: TestSet;
  let pool: PmuPool;
  let count = 0;
  const opened: MirroredRegion[] = [];

  let etcd: EtcdHandle;

  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });
  beforeEach(async () => {
    set = await startSet(3, { etcd });
    pool = set.pool(500);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((region) => region.close().catch(() => undefined)));
    await set.close();
  }, 30_000);
  afterAll(() => removeTempDirs());

  async function mirrored(copies = 3, size = SIZE): Promise<MirroredRegion> {
    const name = `m${++count}`;
    await createMirroredRegion(set.directory, pool, name, size, copies);
    return open(name);
  }

  async function open(name: string, withPool = pool): Promise<MirroredRegion> {
    const region = await MirroredRegion.open(set.directory, withPool, name);
    opened.push(region);
    return region;
  }

  /** The bytes as one replica holds them, read straight from that PMU. */
  async function onReplica(pmu: string, name: string, offset: number, length: number): Promise<Buffer> {
    const direct = set.pool(2000);
    try {
      return await (await direct.openRegion(pmu, name)).read(offset, length);
    } finally {
      await direct.close();
    }
  }

  test('a write is on every in-sync replica when it is acknowledged; reads come from the read replica', async () => {
    const region = await mirrored(3);
    expect(region.configuration.inSync).toHaveLength(3);
    const data = randomBytes(4096);
    await region.write(8192, data, { durability: 'flushed' });
    for (const pmu of region.configuration.inSync) expect((await onReplica(pmu, region.name, 8192, 4096)).equals(data)).toBe(true);
    expect((await region.read(8192, 4096)).equals(data)).toBe(true);
    expect(region.stats.lastRead).toMatchObject({ pmu: region.configuration.inSync[0] });
    await region.flush();
    await expect(region.write(SIZE - 4, Buffer.alloc(8))).rejects.toMatchObject({ code: 'EBOUNDS' });
    // A caller's mistake removes nobody.
    expect(region.configuration.epoch).toBe(1);
  });

  test('a failed replica leaves the in-sync set in etcd before the write that skipped it is acknowledged', async () => {
    const region = await mirrored(3);
    const [, second] = region.configuration.inSync;
    await region.write(0, Buffer.from('before'));
    await set.stopPmu(second);
    const data = randomBytes(512);
    await region.write(100, data);
    // By the time the ack arrived, etcd already said so.
    const stored = await set.directory.config(region.name);
    expect(stored.inSync).not.toContain(second);
    expect(stored.inSync).toHaveLength(2);
    expect(stored.epoch).toBe(2);
    expect(region.stats.removals).toBe(1);
    for (const pmu of stored.inSync) expect((await onReplica(pmu, region.name, 100, 512)).equals(data)).toBe(true);
    // A second writer with the old view learns it from etcd and does not write to the removed one.
    const other = await open(region.name, set.pool(500));
    expect(other.configuration.inSync).toEqual(stored.inSync);
  });

  test('the read replica failing moves reads to the next in-sync replica, never to one out of sync', async () => {
    const region = await mirrored(3);
    const data = randomBytes(1000);
    await region.write(0, data);
    const [first, second, third] = region.configuration.inSync;
    // Take the third out of sync by the directory (as another writer would), then stop the first.
    const config = await set.directory.config(region.name);
    await set.directory.transition(config, withoutReplica(config, third));
    await set.stopPmu(first);
    expect((await region.read(0, 1000)).equals(data)).toBe(true);
    expect(region.stats.lastRead?.pmu).toBe(second);
    const stored = await set.directory.config(region.name);
    expect(stored.inSync).toEqual([second]);
  });

  test('a stale reader never takes an answer from a replica that left the set', async () => {
    const region = await mirrored(2);
    const [first, second] = region.configuration.inSync;
    await region.write(0, Buffer.from('v1'));
    // Another writer drops `first` and writes v2 only to `second`; our region may not have seen it yet.
    const writer = await open(region.name, set.pool(500));
    const config = await set.directory.config(region.name);
    await set.directory.transition(config, withoutReplica(config, first));
    await waitFor('writer to adopt', () => writer.configuration.epoch === 2);
    await writer.write(0, Buffer.from('v2'));
    expect((await region.read(0, 2)).toString()).toBe('v2');
    expect(region.stats.lastRead?.pmu).toBe(second);
  });

  test('etcd out of reach when a replica fails: nothing is acknowledged (EETCD); once etcd is back the removal completes', async () => {
    const region = await mirrored(2);
    const [, second] = region.configuration.inSync;
    await set.stopPmu(second);
    await set.etcd.pause();
    let error: unknown;
    try {
      error = await region.write(0, Buffer.from('x')).catch((e) => e);
    } finally {
      set.etcd.resume();
    }
    expect(isPmuError(error, 'EETCD')).toBe(true);
    expect((error as PmuError).message).toMatch(/nothing was acknowledged/);
    await waitFor('etcd back', () => set.directory.config(region.name).then((c) => c, () => false), 15_000, 50);
    // The transaction sent while etcd was stopped may have committed when it resumed (its outcome
    // was unknown, so the write was not acked); either way the next write completes the removal.
    await waitFor('a write to be acked again', () => region.write(0, Buffer.from('y')).then(() => true, () => false), 15_000, 50);
    expect((await set.directory.config(region.name)).inSync).not.toContain(second);
    expect((await region.read(0, 1)).toString()).toBe('y');
  }, 30_000);

  test("a writer whose lease in etcd may have lapsed acknowledges nothing (EETCD), then registers again by itself", async () => {
    await createMirroredRegion(set.directory, pool, 'leased', SIZE, 2);
    const region = await MirroredRegion.open(set.directory, pool, 'leased', { leaseSeconds: 1 });
    opened.push(region);
    await region.write(0, Buffer.from('a'));
    await set.etcd.pause();
    let refusal: unknown;
    try {
      // No replica fails: only the lease's deadline can stop this writer.
      refusal = await waitFor('a refused write', () => region.write(0, Buffer.from('b')).then(() => false, (error) => error), 10_000, 20);
    } finally {
      set.etcd.resume();
    }
    expect(isPmuError(refusal, 'EETCD')).toBe(true);
    expect((refusal as PmuError).message).toMatch(/lease .* nothing was acknowledged/);
    await waitFor('acks again after registering anew', () => region.write(0, Buffer.from('c')).then(() => true, () => false), 20_000, 50);
    expect((await region.read(0, 1)).toString()).toBe('c');
    expect([...(await set.directory.clientEpochs('leased')).values()]).toContain(region.configuration.epoch);
  }, 40_000);

  test('the last in-sync replica failing is an error, and it stays in the set', async () => {
    const region = await mirrored(1);
    const [only] = region.configuration.inSync;
    await set.stopPmu(only);
    const error = await region.write(0, Buffer.from('x')).catch((e) => e);
    expect(isPmuError(error)).toBe(true);
    expect(['ECONNECTION', 'ETIMEDOUT']).toContain((error as PmuError).code);
    expect((await set.directory.config(region.name)).inSync).toEqual([only]);
  });

  test('compare-and-swap: the read replica decides, the others follow; a diverged replica leaves the set', async () => {
    const region = await mirrored(3);
    expect(await region.compareAndSwap(64, 0n, 5n)).toBe(0n);
    for (const pmu of region.configuration.inSync) expect((await onReplica(pmu, region.name, 64, 8)).readBigUInt64LE(0)).toBe(5n);
    expect(await region.compareAndSwap(64, 4n, 9n)).toBe(5n);
    // Make the third replica disagree behind the set's back: the next swap removes it.
    const [, , third] = region.configuration.inSync;
    const direct = set.pool(2000);
    const word = Buffer.alloc(8);
    word.writeBigUInt64LE(77n);
    await (await direct.openRegion(third, region.name)).write(64, word);
    expect(await region.compareAndSwap(64, 5n, 6n)).toBe(5n);
    expect((await set.directory.config(region.name)).inSync).not.toContain(third);
  });

  test('a takeover fences the zombie on every replica, and the replicas are made equal first', async () => {
    const region = await mirrored(3);
    const primary = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 1; i <= 20; i++) await primary.append(Buffer.from(`record ${i}`));
    const [, second] = region.configuration.inSync;
    // What a primary killed mid-write leaves: a record on one replica only.
    const direct = set.pool(2000);
    const junk = randomBytes(200);
    await (await direct.openRegion(second, region.name)).write(4096 + 20 * 64, junk);

    const backupRegion = await open(region.name, set.pool(500));
    const reader = await CheckpointReader.open(backupRegion);
    const taken = await openPrimary(reader, { heartbeatMs: 0 });
    expect(taken.records.map((record) => record.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `record ${i + 1}`));
    expect(backupRegion.stats.reconciledBytes).toBeGreaterThan(0);
    // Every replica is byte-equal to the read replica, and every one holds the new epoch.
    const config = await set.directory.config(region.name);
    expect(config.inSync).toHaveLength(3);
    const images = await Promise.all(config.inSync.map((pmu) => onReplica(pmu, region.name, 0, SIZE)));
    for (const image of images) expect(image.equals(images[0])).toBe(true);
    // The epoch word holds the epoch in its low 56 bits and a check of it in its top byte (docs/CHECKPOINT.md).
    expect(images[0].readBigUInt64LE(EPOCH_OFFSET) & ((1n << 56n) - 1n)).toBe(taken.epoch);
    // The zombie is refused wherever its writes land, and removes nobody.
    await expect(primary.append(Buffer.from('zombie'))).rejects.toMatchObject({ code: 'EFENCED' });
    expect((await set.directory.config(region.name)).inSync).toHaveLength(3);
    await taken.writer.append(Buffer.from('new primary'));
    const follower = await CheckpointReader.open(await open(region.name, set.pool(500)));
    const { records } = await follower.readBatch();
    expect(records.map((record) => record.payload.toString())).toEqual([...Array.from({ length: 20 }, (_, i) => `record ${i + 1}`), 'new primary']);
    await primary.close();
    await taken.writer.close();
  });

  test('a returning PMU is resynced while a writer keeps writing, then joins with every byte', async () => {
    const region = await mirrored(2, 4 * 1024 * 1024);
    const [, second] = region.configuration.inSync;
    const expected = Buffer.alloc(region.size);
    const put = async (offset: number, data: Buffer) => {
      await region.write(offset, data, { durability: 'mapped' });
      data.copy(expected, offset);
    };
    for (let i = 0; i < 64; i++) await put(i * 65536, randomBytes(4096));
    await set.stopPmu(second);
    await put(10, randomBytes(100));
    expect((await set.directory.config(region.name)).inSync).not.toContain(second);
    await set.startPmu(second);
    // Writes go on during the copy.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        await put(Math.floor(Math.random() * (region.size - 4096)), randomBytes(1 + Math.floor(Math.random() * 4096)));
        writes++;
      }
    })();
    const progress: number[] = [];
    const resyncPool = set.pool(2000);
    const joined = await resync(set.directory, resyncPool, region.name, second, { chunkBytes: 256 * 1024, onProgress: (p) => progress.push(p.copied) });
    writing = false;
    await writer;
    expect(joined.inSync).toContain(second);
    expect(progress[progress.length - 1]).toBe(region.size);
    expect(writes).toBeGreaterThan(0);
    await waitFor('writer to adopt', () => region.configuration.inSync.includes(second));
    await put(20, randomBytes(300));
    for (const pmu of joined.inSync) expect((await onReplica(pmu, region.name, 0, region.size)).equals(expected)).toBe(true);
  }, 30_000);

  test('a PMU that missed a takeover (stale epoch word) is resynced while the new primary keeps appending with its fence', async () => {
    const region = await mirrored(2, 1024 * 1024);
    const [, second] = region.configuration.inSync;
    const first = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < 10; i++) await first.append(Buffer.from(`old ${i}`));
    await set.stopPmu(second);
    await first.append(Buffer.from('old 10'));
    // A takeover while `second` is down: its copy keeps the old epoch.
    const taken = await openPrimary(await CheckpointReader.open(await open(region.name, set.pool(500))), { heartbeatMs: 0 });
    await first.close();
    await set.startPmu(second);
    let appending = true;
    let appended = 0;
    const appender = (async () => {
      while (appending) {
        await taken.writer.append(Buffer.from(`new ${appended}`));
        appended++;
      }
    })();
    const joined = await resync(set.directory, set.pool(2000), region.name, second, { chunkBytes: 64 * 1024 });
    appending = false;
    await appender;
    await taken.writer.append(Buffer.from('after the join'));
    expect(joined.inSync).toContain(second);
    expect(appended).toBeGreaterThan(0);
    const images = await Promise.all(joined.inSync.map((pmu) => onReplica(pmu, region.name, 0, region.size)));
    expect(images[1].equals(images[0])).toBe(true);
    await taken.writer.close();
  }, 30_000);

  test('a PMU removed from the set: its copy moves to a new PMU, which is resynced and joins', async () => {
    const region = await mirrored(2);
    const [first, second] = region.configuration.inSync;
    const data = randomBytes(5000);
    await region.write(1000, data);
    const replacements = await set.directory.removePmu(second);
    const [[, newcomer]] = [...replacements];
    expect(newcomer).not.toBe(first);
    expect(newcomer).not.toBe(second);
    await waitFor('the writer to stop using the removed PMU', () => !region.configuration.inSync.includes(second));
    await region.write(0, Buffer.from('during'));
    const joined = await resync(set.directory, set.pool(2000), region.name, newcomer);
    expect(joined).toMatchObject({ replicas: [first, newcomer], inSync: [first, newcomer] });
    expect((await onReplica(newcomer, region.name, 1000, 5000)).equals(data)).toBe(true);
    expect((await onReplica(newcomer, region.name, 0, 6)).toString()).toBe('during');
  });

  test('a resync whose target fails again leaves it out of sync and loses nothing', async () => {
    const region = await mirrored(2, 1024 * 1024);
    const [, second] = region.configuration.inSync;
    await set.stopPmu(second);
    const data = randomBytes(1000);
    await region.write(0, data);
    await set.startPmu(second);
    const resyncPool = set.pool(300);
    const attempt = resync(set.directory, resyncPool, region.name, second, {
      chunkBytes: 64 * 1024,
      onProgress: (p) => {
        if (p.copied === 128 * 1024) void set.stopPmu(second);
      },
    });
    await expect(attempt).rejects.toBeInstanceOf(PmuError);
    const config = await set.directory.config(region.name);
    expect(config.inSync).not.toContain(second);
    await region.write(2000, data);
    expect((await region.read(0, 1000)).equals(data)).toBe(true);
    // The writer may have dropped it from the syncing set, or not written since: either way never in sync.
    expect((await set.directory.config(region.name)).inSync).toEqual(config.inSync.filter((pmu) => pmu !== second));
  });
});
