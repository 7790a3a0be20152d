/**
 * Scrub over a real etcd and 2-3 PMU servers: equal replicas pass; a byte changed behind the
 * set's back on one replica is found by checksum, repaired from the majority with 3 replicas,
 * only reported with 2; in a checkpoint log, validation decides instead of votes (with 2
 * replicas too, a damaged last record being damage and not a torn tail); the validate hook can veto; a writer going on is no mismatch; the
 * rate limit holds; the background scrubber runs passes until stopped. Bound: ~15 s.
 */
import { randomBytes } from 'node:crypto';
import { CheckpointReader, HEADER_BYTES, openPrimary, RECORD_HEADER_BYTES } from '../lib/checkpoint';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { createMirroredRegion } from '../lib/mirror/resync';
import { newScrubCounters, replicaChecksums, scrubRegion, startScrubber, ScrubReport } from '../lib/mirror/scrub';
import { crc32c } from '../lib/unit/native';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable, EtcdHandle, startEtcd } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const SIZE = 4 * 1024 * 1024;

run('scrub', () => {
  let etcd: EtcdHandle;
  let set: TestSet;
  let count = 0;
  const opened: MirroredRegion[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    removeTempDirs();
  });
  beforeEach(async () => {
    set = await startSet(3, { etcd, unitBytes: 32 * 1024 * 1024 });
  }, 30_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((region) => region.close().catch(() => undefined)));
    await set.close();
  }, 30_000);

  async function mirrored(copies: number): Promise<{ region: MirroredRegion; data: Buffer }> {
    const name = `s${++count}`;
    const pool = set.pool(2000);
    await createMirroredRegion(set.directory, pool, name, SIZE, copies);
    const region = await MirroredRegion.open(set.directory, pool, name);
    opened.push(region);
    const data = randomBytes(SIZE);
    for (let at = 0; at < SIZE; at += 1 << 20) await region.write(at, data.subarray(at, at + (1 << 20)), { durability: 'mapped' });
    return { region, data };
  }

  /** Changes bytes on one replica only, behind the set's back (a bad disk, a bug). */
  async function damage(pmu: string, name: string, offset: number, bytes: Buffer): Promise<void> {
    await (await set.pool(2000).openRegion(pmu, name)).write(offset, bytes, { durability: 'mapped' });
  }

  async function replicaBytes(pmu: string, name: string): Promise<Buffer> {
    return (await set.pool(2000).openRegion(pmu, name)).read(0, SIZE);
  }

  test('equal replicas: no mismatch, every byte compared, counted; replicaChecksums gives each replica its crc32c', async () => {
    const { region, data } = await mirrored(3);
    const counters = newScrubCounters();
    const report = await scrubRegion(set.directory, set.pool(), region.name, { counters });
    expect(report).toMatchObject({ region: region.name, bytesScrubbed: SIZE, mismatches: [], repaired: [], errors: {} });
    expect(counters).toEqual({ bytesScrubbed: SIZE, mismatches: 0, repairs: 0 });
    const sums = await replicaChecksums(set.pool(), await set.directory.config(region.name), 4096, 65536);
    expect([...sums.values()]).toEqual([0, 1, 2].map(() => crc32c(data.subarray(4096, 4096 + 65536))));
  }, 30_000);

  test('3 replicas, one damaged: the mismatch names the range and the majority; the minority is resynced from it and ends byte-equal', async () => {
    const { region, data } = await mirrored(3);
    const config = await set.directory.config(region.name);
    const victim = config.inSync[1];
    await damage(victim, region.name, 3 * 1024 * 1024 + 5, Buffer.from('rot'));
    const counters = newScrubCounters();
    const report = await scrubRegion(set.directory, set.pool(), region.name, { counters });
    expect(report.mismatches).toHaveLength(1);
    expect(report.mismatches[0]).toMatchObject({ offset: 3 * 1024 * 1024, length: 1 << 20, majority: config.inSync.filter((pmu) => pmu !== victim) });
    expect(report.repaired).toEqual([victim]);
    expect(report.repairBytes).toBeGreaterThan(0);
    expect(report.repairBytes).toBeLessThanOrEqual(64 * 1024);
    expect(counters).toMatchObject({ mismatches: 1, repairs: 1 });
    expect((await set.directory.config(region.name)).inSync.sort()).toEqual([...config.inSync].sort());
    expect((await replicaBytes(victim, region.name)).equals(data)).toBe(true);
    expect((await scrubRegion(set.directory, set.pool(), region.name)).mismatches).toEqual([]);
  }, 30_000);

  test('2 replicas that differ: reported, never guessed: both stay in sync and keep their bytes', async () => {
    const { region } = await mirrored(2);
    const config = await set.directory.config(region.name);
    await damage(config.inSync[1], region.name, 100, Buffer.from('x'));
    const before = await replicaBytes(config.inSync[1], region.name);
    const report = await scrubRegion(set.directory, set.pool(), region.name);
    expect(report.mismatches).toEqual([{ offset: 0, length: 1 << 20, checksums: expect.any(Object), majority: undefined }]);
    expect(report.repaired).toEqual([]);
    expect(report.note).toMatch(/no majority/);
    expect(await set.directory.config(region.name)).toEqual(config);
    expect((await replicaBytes(config.inSync[1], region.name)).equals(before)).toBe(true);
  }, 30_000);

  test('2 replicas holding a checkpoint log, the last record damaged on the read replica: validation decides, the damaged copy leaves and is resynced byte-equal from the other, which is untouched', async () => {
    const name = `s${++count}`;
    const size = 256 * 1024;
    await createMirroredRegion(set.directory, set.pool(2000), name, size, 2);
    const primary = await MirroredRegion.open(set.directory, set.pool(2000), name);
    opened.push(primary);
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 1; i <= 20; i++) await writer.append(Buffer.from(`record ${i}`));
    const { records } = await (await CheckpointReader.open(primary)).readBatch();
    const config = await set.directory.config(name);
    const [victim, good] = config.inSync;
    // One payload byte of record 20 on the read replica: alone, that copy reads as a torn tail.
    const at = HEADER_BYTES + records[19].position + RECORD_HEADER_BYTES + 2;
    const direct = await set.pool(2000).openRegion(victim, name);
    const byte = await direct.read(at, 1);
    await direct.write(at, Buffer.from([byte[0] ^ 0xff]), { durability: 'mapped' });
    const goodBefore = (await set.pool(2000).openRegion(good, name)).read(0, size);
    const counters = newScrubCounters();
    const report = await scrubRegion(set.directory, set.pool(), name, { counters });
    expect(report.mismatches).toEqual([{ offset: 0, length: size, checksums: expect.any(Object), majority: undefined }]);
    expect(report.validation).toMatch(new RegExp(`replica '${victim}' is damaged: record 20 is invalid here .* damage on this copy, not a torn tail; '${good}' passes its checks`));
    expect(report.repaired).toEqual([victim]);
    expect(report.repairBytes).toBeGreaterThan(0);
    expect(report.repairBytes).toBeLessThanOrEqual(64 * 1024);
    expect(counters).toMatchObject({ mismatches: 1, repairs: 1 });
    // Back in sync (at the end: the good copy is the read replica now), byte-equal, the good copy untouched.
    const after = await set.directory.config(name);
    expect(after.inSync).toEqual([good, victim]);
    expect(after.epoch).toBeGreaterThan(config.epoch);
    const goodAfter = await (await set.pool(2000).openRegion(good, name)).read(0, size);
    expect(goodAfter.equals(await goodBefore)).toBe(true);
    expect((await (await set.pool(2000).openRegion(victim, name)).read(0, size)).equals(goodAfter)).toBe(true);
    expect((await scrubRegion(set.directory, set.pool(), name)).mismatches).toEqual([]);
    // The writer goes on over the repaired set, and a reader sees all 21 records.
    expect(await writer.append(Buffer.from('record 21'))).toBe(21);
    const reader = await CheckpointReader.open(primary);
    expect((await reader.readBatch()).records.map((record) => record.payload.toString())).toEqual(Array.from({ length: 21 }, (_, i) => `record ${i + 1}`));
    await writer.close();
  }, 30_000);

  test('2 replicas holding a checkpoint log that differ only where its checks do not look (the stale ring): reported, nothing repaired', async () => {
    const name = `s${++count}`;
    const size = 256 * 1024;
    await createMirroredRegion(set.directory, set.pool(2000), name, size, 2);
    const primary = await MirroredRegion.open(set.directory, set.pool(2000), name);
    opened.push(primary);
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    await writer.append(Buffer.from('record 1'));
    const config = await set.directory.config(name);
    await damage(config.inSync[1], name, size - 10, Buffer.from('x'));
    const report = await scrubRegion(set.directory, set.pool(), name);
    expect(report.mismatches).toHaveLength(1);
    expect(report.repaired).toEqual([]);
    expect(report.note).toMatch(/no majority/);
    expect(await set.directory.config(name)).toEqual(config);
    await writer.close();
  }, 30_000);

  test('the validate hook sees the mismatches first and can veto the repair', async () => {
    const { region } = await mirrored(3);
    const config = await set.directory.config(region.name);
    await damage(config.inSync[2], region.name, SIZE - 1, Buffer.from('z'));
    const validate = jest.fn(async () => ({ repair: false, detail: 'the log says otherwise' }));
    const report = await scrubRegion(set.directory, set.pool(), region.name, { validate });
    expect(validate).toHaveBeenCalledWith(expect.objectContaining({ name: region.name, epoch: config.epoch }), [expect.objectContaining({ offset: 3 * 1024 * 1024 })]);
    expect(report.repaired).toEqual([]);
    expect(report.note).toMatch(/the log says otherwise/);
    expect(await set.directory.config(region.name)).toEqual(config);
  }, 30_000);

  test('a writer going on during the scrub is not a mismatch and nothing leaves the set', async () => {
    const { region } = await mirrored(3);
    const config = await set.directory.config(region.name);
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        await region.write(Math.floor(Math.random() * (SIZE - 4096)), randomBytes(4096), { durability: 'mapped' });
        writes++;
      }
    })();
    const report = await scrubRegion(set.directory, set.pool(), region.name, { chunkBytes: 256 * 1024 });
    writing = false;
    await writer;
    expect(writes).toBeGreaterThan(0);
    expect(report.mismatches).toEqual([]);
    expect(await set.directory.config(region.name)).toEqual(config);
  }, 30_000);

  test('bytesPerSecond paces the pass', async () => {
    const { region } = await mirrored(2);
    const started = Date.now();
    const report = await scrubRegion(set.directory, set.pool(), region.name, { bytesPerSecond: 8 * 1024 * 1024, chunkBytes: 512 * 1024 });
    expect(report.bytesScrubbed).toBe(SIZE);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // 4 MiB at 8 MiB/s: 0.5 s less one chunk
  }, 30_000);

  test('the background scrubber passes over every region again and again until stopped', async () => {
    const { region } = await mirrored(2);
    const reports: ScrubReport[] = [];
    const scrubber = startScrubber(set.directory, set.pool(), { intervalMs: 10, bytesPerSecond: 1 << 30, onReport: (r) => reports.push(r) });
    await waitFor('two passes', () => reports.filter((r) => r.region === region.name).length >= 2);
    await scrubber.stop();
    expect(scrubber.counters.bytesScrubbed).toBeGreaterThanOrEqual(2 * SIZE);
    const seen = reports.length;
    expect(reports.every((r) => r.mismatches.length === 0)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports.length).toBe(seen);
  }, 30_000);

  test('the background scrubber scrubs without an onReport too (the counters show it)', async () => {
    await mirrored(2);
    const scrubber = startScrubber(set.directory, set.pool(), { intervalMs: 10, bytesPerSecond: 1 << 30 });
    try {
      await waitFor('a pass', () => scrubber.counters.bytesScrubbed >= SIZE);
    } finally {
      await scrubber.stop();
    }
    expect(scrubber.counters.mismatches).toBe(0);
  }, 30_000);
});
