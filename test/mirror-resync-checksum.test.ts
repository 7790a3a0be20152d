/**
 * Resync compares CHECKSUMs first: a returning replica that missed a few writes gets only the
 * pieces that differ, and ends byte-equal, also with a writer going on during the copy.
 * Bound: ~10 s.
 */
import { randomBytes } from 'node:crypto';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { createMirroredRegion, resync, ResyncTally } from '../lib/mirror/resync';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

const run = etcdAvailable() ? describe : describe.skip;
const SIZE = 4 * 1024 * 1024;

run('checksum-skipping resync', () => {
  let set: TestSet;
  let count = 0;
  beforeEach(async () => {
    set = await startSet(2, { unitBytes: 32 * 1024 * 1024 });
  }, 30_000);
  afterEach(() => set.close(), 30_000);
  afterAll(() => removeTempDirs());

  /** A 2-copy region full of random bytes whose second replica then misses `changes` 4 KiB writes. */
  async function diverged(changes: number): Promise<{ region: MirroredRegion; second: string; expected: Buffer }> {
    const name = `r${++count}`;
    const pool = set.pool(2000);
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const region = await MirroredRegion.open(set.directory, pool, name);
    const expected = randomBytes(SIZE);
    for (let at = 0; at < SIZE; at += 1 << 20) await region.write(at, expected.subarray(at, at + (1 << 20)), { durability: 'mapped' });
    const [, second] = region.configuration.inSync;
    await set.stopPmu(second);
    for (let i = 0; i < changes; i++) {
      const at = 4096 * Math.floor(Math.random() * (SIZE / 4096));
      const data = randomBytes(4096);
      await region.write(at, data, { durability: 'mapped' });
      data.copy(expected, at);
    }
    expect((await set.directory.config(name)).inSync).toEqual([region.configuration.inSync[0]]);
    await set.startPmu(second);
    return { region, second, expected };
  }

  async function replicaBytes(pmu: string, name: string): Promise<Buffer> {
    return (await set.pool(2000).openRegion(pmu, name)).read(0, SIZE);
  }

  test('a mostly-equal replica gets far fewer bytes than the region, and ends byte-equal', async () => {
    const { region, second, expected } = await diverged(10);
    const tally: ResyncTally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
    const joined = await resync(set.directory, set.pool(2000), region.name, second, { tally });
    expect(joined.inSync).toContain(second);
    // At most 10 pieces of 64 KiB differ: 640 KiB written, twice that read, of a 4 MiB region.
    expect(tally.bytesWritten).toBeGreaterThan(0);
    expect(tally.bytesWritten).toBeLessThanOrEqual(10 * 65536);
    expect(tally.bytesRead).toBeLessThanOrEqual(2 * 10 * 65536);
    expect(tally.bytesSkipped).toBeGreaterThanOrEqual(SIZE - 10 * 65536);
    expect((await replicaBytes(second, region.name)).equals(expected)).toBe(true);
    await region.close();
  }, 30_000);

  test('without checksums the same resync moves the whole region three times (the old cost)', async () => {
    const { region, second, expected } = await diverged(10);
    const tally: ResyncTally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
    await resync(set.directory, set.pool(2000), region.name, second, { tally, checksums: false });
    expect(tally).toMatchObject({ bytesWritten: SIZE, bytesRead: 2 * SIZE, checksums: 0, bytesSkipped: 0 });
    expect((await replicaBytes(second, region.name)).equals(expected)).toBe(true);
    await region.close();
  }, 30_000);

  test('a writer going on during a checksum-skipping resync: every byte it wrote is on the new replica', async () => {
    const { region, second, expected } = await diverged(20);
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        const at = Math.floor(Math.random() * (SIZE - 4096));
        const data = randomBytes(1 + Math.floor(Math.random() * 4096));
        await region.write(at, data, { durability: 'mapped' });
        data.copy(expected, at);
        writes++;
      }
    })();
    const tally: ResyncTally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
    const joined = await resync(set.directory, set.pool(2000), region.name, second, { tally, chunkBytes: 256 * 1024, pieceBytes: 16 * 1024 });
    await waitFor('the writer to adopt the joined configuration', () => region.configuration.inSync.includes(second));
    writing = false;
    await writer;
    expect(writes).toBeGreaterThan(0);
    expect(joined.inSync).toContain(second);
    expect(tally.bytesSkipped).toBeGreaterThan(0);
    for (const pmu of region.configuration.inSync) expect((await replicaBytes(pmu, region.name)).equals(expected)).toBe(true);
    await region.close();
  }, 30_000);
  test('bytesPerSecond paces what a resync copies (what matches does not count), and a rate that is not positive is EINVAL', async () => {
    const { region, second, expected } = await diverged(10);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(resync(set.directory, set.pool(2000), region.name, second, { bytesPerSecond: bad })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/bytesPerSecond must be a positive number/) });
    }
    const tally: ResyncTally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
    const rate = 1 << 20;
    const started = Date.now();
    await resync(set.directory, set.pool(2000), region.name, second, { tally, bytesPerSecond: rate });
    const elapsed = Date.now() - started;
    // No writer: each differing piece is copied once, and the last one waits for its turn.
    expect(tally.bytesWritten).toBeGreaterThanOrEqual(65536);
    expect(elapsed).toBeGreaterThanOrEqual(Math.floor((tally.bytesWritten / rate) * 1000 * 0.95));
    for (const pmu of (await set.directory.config(region.name)).inSync) expect((await replicaBytes(pmu, region.name)).equals(expected)).toBe(true);
    await region.close();
  }, 30_000);
});
