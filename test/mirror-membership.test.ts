/**
 * The directory cannot go backwards or be forged into a stale read: every replica remembers,
 * in its own unit, the configurations it was in sync under (lib/mirror/membership.ts), and a
 * MirroredRegion or a resync believes etcd only as far as those records agree. Each case makes
 * one replica stale (it is stopped while a write is acknowledged on the other), then rewrites
 * the region's key in a real etcd with a bare client, as a restore from an older copy or
 * anyone who can write etcd would. Before these records, every case read the stale value or
 * copied it over the good one. Bound: ~15 s.
 */
import { Etcd3 } from 'etcd3';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { decodeMembership, membershipRegionName, MEMBERSHIP_BYTES, stampInSync, vouch } from '../lib/mirror/membership';
import { PmuPool } from '../lib/mirror/pool';
import { createMirroredRegion, resync } from '../lib/mirror/resync';
import { RegionConfig } from '../lib/mirror/config';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const SIZE = 64 * 1024;

run('mirrored set: replicas remember the configurations they served under', () => {
  let set: TestSet;
  let pool: PmuPool;
  let count = 0;
  const opened: MirroredRegion[] = [];

  beforeEach(async () => {
    set = await startSet(2);
    pool = set.pool(500);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((region) => region.close().catch(() => undefined)));
    await set.close();
  }, 30_000);
  afterAll(removeTempDirs);

  async function open(name: string): Promise<MirroredRegion> {
    const region = await MirroredRegion.open(set.directory, set.pool(500), name);
    opened.push(region);
    return region;
  }

  /** Writes the region's key as a restore or a forger would: a bare etcd client, no PMU credential. */
  async function putConfig(config: RegionConfig): Promise<void> {
    const etcd = new Etcd3({ hosts: set.etcd.url });
    try {
      await etcd.put(set.directory.regionKey(config.name)).value(JSON.stringify(config));
    } finally {
      etcd.close();
    }
  }

  async function bytesOn(pmu: string, name: string, length = 2): Promise<string> {
    const direct = set.pool(2000);
    try {
      return (await (await direct.openRegion(pmu, name)).read(0, length)).toString();
    } finally {
      await direct.close();
    }
  }

  /**
   * 'v1' on both replicas, then the read replica is stopped and 'v2' is acknowledged on the
   * other alone; the stale one comes back. Returns the configuration before (both in sync,
   * the stale one first) and after (only the good one).
   */
  async function staleReplica(): Promise<{ name: string; stale: string; good: string; before: RegionConfig; after: RegionConfig }> {
    const name = `m${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const writer = await open(name);
    await writer.write(0, Buffer.from('v1'), { durability: 'flushed' });
    const before = await set.directory.config(name);
    const [stale, good] = before.inSync;
    await set.stopPmu(stale);
    await writer.write(0, Buffer.from('v2'), { durability: 'flushed' });
    const after = await set.directory.config(name);
    expect(after.inSync).toEqual([good]);
    await writer.close();
    await set.startPmu(stale);
    expect(await bytesOn(stale, name)).toBe('v1');
    return { name, stale, good, before, after };
  }

  /** 'v1' on both replicas, and a reader that has read it (both vouched for). */
  async function readerOfBoth(): Promise<{ name: string; stale: string; good: string; both: RegionConfig; reader: MirroredRegion }> {
    const name = `m${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const writer = await open(name);
    await writer.write(0, Buffer.from('v1'), { durability: 'flushed' });
    await writer.close();
    const both = await set.directory.config(name);
    const [stale, good] = both.inSync;
    const reader = await open(name);
    expect((await reader.read(0, 2)).toString()).toBe('v1');
    return { name, stale, good, both, reader };
  }

  test('etcd restored from an older copy, opened only afterwards: EROLLBACK naming the replica that remembers newer, nothing read from the stale copy', async () => {
    const { name, good, before, after } = await staleReplica();
    await putConfig(before); // the stale replica is the read replica again
    const refused = await open(name).catch((error) => error);
    expect(refused).toMatchObject({ code: 'EROLLBACK' });
    expect(refused.message).toContain(`replica '${good}' remembers configuration ${after.epoch}`);
    expect(refused.message).toMatch(/restored from an older copy/);
    // The good replica's record, read from its unit, is what decided.
    const direct = set.pool(2000);
    const record = decodeMembership(await (await direct.openRegion(good, membershipRegionName(name))).read(0, MEMBERSHIP_BYTES));
    await direct.close();
    expect(record.newest).toEqual({ epoch: after.epoch, inSync: [good] });
  });

  test('a forged entry with a higher epoch that marks the stale replica in sync and first: it is never read, it leaves the set, the read returns the acknowledged value', async () => {
    const { name, stale, good, after } = await staleReplica();
    await putConfig({ ...after, inSync: [stale, good], epoch: after.epoch + 1 });
    const reader = await open(name);
    expect((await reader.read(0, 2)).toString()).toBe('v2');
    expect(reader.stats.lastRead?.pmu).toBe(good);
    expect((await set.directory.config(name)).inSync).toEqual([good]);
    expect(await bytesOn(good, name)).toBe('v2');
  });

  test('a forged entry making the stale replica the only in-sync one: nothing is served (EROLLBACK), and a resync of the good replica will not copy from it', async () => {
    const { name, stale, good, after } = await staleReplica();
    await putConfig({ ...after, inSync: [stale], syncing: [], epoch: after.epoch + 1 });
    await expect(open(name)).rejects.toMatchObject({ code: 'EROLLBACK', message: expect.stringContaining(`'${stale}' has not been resynced since`) });
    await expect(resync(set.directory, pool, name, good)).rejects.toMatchObject({ code: 'EROLLBACK' });
    expect(await bytesOn(good, name)).toBe('v2');
  });

  test('a running writer that adopts a forged entry from its watch checks the newcomer before reading or acking on it', async () => {
    const { name, stale, good, after } = await staleReplica();
    const writer = await open(name);
    const forged = { ...after, inSync: [stale, good], epoch: after.epoch + 1 };
    await putConfig(forged);
    await waitFor('the writer adopts the forged epoch', () => writer.configuration.epoch >= forged.epoch);
    expect((await writer.read(0, 2)).toString()).toBe('v2');
    await writer.write(0, Buffer.from('v3'), { durability: 'flushed' });
    expect(writer.configuration.inSync).toEqual([good]);
    expect(await bytesOn(stale, name)).toBe('v1'); // never written as if in sync
    expect(writer.stats.repairs).toBe(1);
  });

  test('a forged entry in the window before a drop is stamped: a reader that saw the replica dropped does not trust it back, and reads the write acknowledged after the stamps', async () => {
    const { name, stale, good, both, reader } = await readerOfBoth();
    // A writer drops `stale` (its etcd transaction), and before its stamps land the key is forged back.
    const dropped = { ...both, inSync: [good], epoch: both.epoch + 1 };
    await putConfig(dropped);
    await waitFor('the reader sees the drop', () => reader.configuration.epoch >= dropped.epoch);
    const forged = { ...dropped, inSync: [stale, good], epoch: dropped.epoch + 1 };
    await putConfig(forged);
    await waitFor('the reader adopts the forged entry', () => reader.configuration.epoch >= forged.epoch);
    // Every record still lists both: only what the reader saw tells `stale` was out.
    expect((await reader.read(0, 2)).toString()).toBe('v1');
    expect(reader.stats.lastRead?.pmu).toBe(good);
    expect(reader.configuration.inSync).toEqual([good]);
    // The writer's stamps land and it acknowledges v2 on `good` alone: the reader reads it.
    await stampInSync(pool, good, dropped);
    const direct = set.pool(2000);
    await (await direct.openRegion(good, name)).write(0, Buffer.from('v2'), { durability: 'flushed' });
    await direct.close();
    expect((await reader.read(0, 2)).toString()).toBe('v2');
  });

  test('a reader that never saw the drop (its configuration jumped past it to a forged entry) checks the records again and does not read the dropped copy', async () => {
    const { name, stale, good, both, reader } = await readerOfBoth();
    // The drop is stamped on `good` and v2 acknowledged there alone; etcd is then forged past it.
    const dropped = { ...both, inSync: [good], epoch: both.epoch + 1 };
    await stampInSync(pool, good, dropped);
    const direct = set.pool(2000);
    await (await direct.openRegion(good, name)).write(0, Buffer.from('v2'), { durability: 'flushed' });
    await direct.close();
    const forged = { ...dropped, inSync: [stale, good], epoch: dropped.epoch + 1 };
    await putConfig(forged);
    await waitFor('the reader adopts the forged entry', () => reader.configuration.epoch >= forged.epoch);
    expect((await reader.read(0, 2)).toString()).toBe('v2');
    expect(reader.stats.lastRead?.pmu).toBe(good);
  });

  test('a real resync is vouched for (no replica dropped), and a rollback to before it is still caught', async () => {
    const { name, stale, good, after } = await staleReplica();
    const joined = await resync(set.directory, pool, name, stale);
    expect(joined.inSync).toEqual([good, stale]);
    const reader = await open(name);
    expect((await reader.read(0, 2)).toString()).toBe('v2');
    expect(reader.stats.repairs).toBe(0);
    expect((await set.directory.config(name)).inSync).toEqual([good, stale]);
    await reader.close();
    await putConfig(after); // back to before the resync: both replicas remember newer
    await expect(open(name)).rejects.toMatchObject({ code: 'EROLLBACK' });
  });

  test('a writer that joins a resync mid-way does not take the newcomer for a stale copy', async () => {
    const { name, stale, good } = await staleReplica();
    const writer = await open(name);
    await writer.write(2, Buffer.from('w'), { durability: 'flushed' });
    await resync(set.directory, pool, name, stale);
    await waitFor('the writer adopts the join', () => writer.configuration.inSync.length === 2);
    await writer.write(3, Buffer.from('x'), { durability: 'flushed' });
    expect(writer.configuration.inSync).toEqual([good, stale]);
    expect(await bytesOn(stale, name, 4)).toBe('v2wx');
  });

  test('a region made again under a name starts afresh: the old records do not make epoch 1 look old', async () => {
    const name = `m${++count}`;
    const first = await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const writer = await open(name);
    await set.stopPmu(first.inSync[1]);
    await writer.write(0, Buffer.from('a'), { durability: 'flushed' }); // epoch 2 stamped on the first
    await writer.close();
    await set.startPmu(first.inSync[1]);
    await set.directory.forgetRegion(name);
    for (const pmu of first.replicas) await (await pool.client(pmu)).deleteRegion(name);
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const again = await open(name);
    expect((await again.read(0, 1)).toString()).toBe('\0');
  });
});

describe('membership rules (vouch)', () => {
  const config = (inSync: string[], epoch: number): RegionConfig => ({ name: 'r', size: 4096, replicas: ['a', 'b', 'c'], inSync, syncing: [], epoch });
  const record = (epoch: number, inSync: string[], joining = 0) => ({ newest: { epoch, inSync }, joining, damagedSlots: 0 });

  test('no records (a set older than them): the directory is believed', () => {
    expect(vouch(config(['a', 'b'], 5), new Map())).toEqual({ untrusted: [] });
  });
  test('a record newer than the directory: rolled back', () => {
    expect(vouch(config(['a', 'b'], 5), new Map([['a', record(6, ['a'])]])).rolledBack).toEqual({ pmu: 'a', epoch: 6 });
  });
  test('listed in the newest record, or joining after it: trusted; dropped and never rejoined: not', () => {
    const memberships = new Map([
      ['a', record(7, ['a', 'b'])],
      ['b', record(7, ['a', 'b'])],
      ['c', { ...record(3, ['a', 'b', 'c']), joining: 8 }],
    ]);
    expect(vouch(config(['a', 'b', 'c'], 8), memberships).untrusted).toEqual([]);
    const stale = new Map([...memberships, ['c', record(3, ['a', 'b', 'c'], 3)]]);
    expect(vouch(config(['c', 'a'], 8), stale).untrusted.map((entry) => entry.pmu)).toEqual(['c']);
    // A joining epoch newer than the directory itself vouches for nothing.
    const ahead = new Map([...memberships, ['c', record(3, ['a', 'b', 'c'], 9)]]);
    expect(vouch(config(['a', 'c'], 8), ahead).untrusted.map((entry) => entry.pmu)).toEqual(['c']);
  });
  test('a replica this process saw out at epoch E is trusted back only if it joined after E, whatever the records list', () => {
    // The drop at 8 is not stamped yet: every record still lists a, b, c at 7.
    const unstamped = new Map([
      ['a', record(7, ['a', 'b', 'c'])],
      ['b', record(7, ['a', 'b', 'c'])],
      ['c', record(7, ['a', 'b', 'c'], 2)],
    ]);
    expect(vouch(config(['c', 'a', 'b'], 9), unstamped).untrusted).toEqual([]);
    const untrusted = vouch(config(['c', 'a', 'b'], 9), unstamped, new Map([['c', 8]])).untrusted;
    expect(untrusted.map((entry) => entry.pmu)).toEqual(['c']);
    expect(untrusted[0].why).toMatch(/'c' was out of the in-sync set at configuration 8 and has not been resynced since/);
    // A real resync joined it at 9: trusted.
    expect(vouch(config(['c', 'a', 'b'], 9), new Map([...unstamped, ['c', record(7, ['a', 'b', 'c'], 9)]]), new Map([['c', 8]])).untrusted).toEqual([]);
  });
  test('a damaged slot is ignored: the record loses a step, it never invents one', () => {
    const bytes = Buffer.alloc(MEMBERSHIP_BYTES);
    expect(decodeMembership(bytes)).toEqual({ joining: 0, damagedSlots: 0 });
    bytes.writeUInt32LE(10, 448); // slot 1: a length with no valid CRC
    expect(decodeMembership(bytes)).toEqual({ joining: 0, damagedSlots: 1 });
  });
});
