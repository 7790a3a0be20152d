/**
 * A mirrored set never spreads damage: a replica is trusted only as far as its own checks.
 * Each case flips bytes in one replica's mapping (a direct, unfenced write to that PMU, what
 * a flipped bit in its page cache or file gives), on a 2-PMU set over a real etcd. Before
 * these rules a takeover copied the read replica over the intact one, a damaged epoch word
 * fenced a live primary, and a damaged cursor word stopped every reader. Bound: ~15 s.
 */
import { CheckpointReader, CURSOR_POSITION_OFFSET, EPOCH_OFFSET, HEADER_BYTES, LogRecord, openPrimary, RECORD_HEADER_BYTES, verifyRegion } from '../lib/checkpoint';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { PmuPool } from '../lib/mirror/pool';
import { createMirroredRegion, resync } from '../lib/mirror/resync';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable, EtcdHandle, startEtcd } from './helpers/etcd';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';
import { Etcd3 } from 'etcd3';
import { PmuError } from '../lib/unit/errors';
import { CHECKPOINT_MARK_OFFSET } from '../lib/checkpoint/format/layout';

const run = etcdAvailable() ? describe : describe.skip;
const SIZE = 256 * 1024;
const payloads = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `record ${from + i}`);

run('mirrored set: damage on one replica', () => {
  let etcd: EtcdHandle;
  let set: TestSet;
  let pool: PmuPool;
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
    set = await startSet(2, { etcd });
    pool = set.pool(500);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((region) => region.close().catch(() => undefined)));
    await set.close();
  }, 30_000);

  async function open(name: string): Promise<MirroredRegion> {
    const region = await MirroredRegion.open(set.directory, set.pool(500), name);
    opened.push(region);
    return region;
  }

  /** A 2-copy region whose primary appended records 1..20 'flushed'; returns the records' places. */
  async function logOf20(): Promise<{ name: string; primary: MirroredRegion; records: LogRecord[]; close: () => Promise<void> }> {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const primary = await open(name);
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    for (const text of payloads(1, 20)) await writer.append(Buffer.from(text));
    const { records } = await (await CheckpointReader.open(primary)).readBatch();
    expect(records).toHaveLength(20);
    return { name, primary, records, close: () => writer.close() };
  }

  /** Flips every bit of one byte at `offset` on `pmu` only. */
  async function flip(pmu: string, name: string, offset: number): Promise<void> {
    const direct = set.pool(2000);
    try {
      const region = await direct.openRegion(pmu, name);
      const byte = await region.read(offset, 1);
      await region.write(offset, Buffer.from([byte[0] ^ 0xff]));
    } finally {
      await direct.close();
    }
  }

  async function image(pmu: string, name: string): Promise<Buffer> {
    const direct = set.pool(2000);
    try {
      return await (await direct.openRegion(pmu, name)).read(0, SIZE);
    } finally {
      await direct.close();
    }
  }

  const payloadOffset = (record: LogRecord) => HEADER_BYTES + record.position + RECORD_HEADER_BYTES + 2;

  test('damage in the last record of the read replica: the takeover keeps the intact copy, record 20 survives, and the damaged replica is resynced from it', async () => {
    const { name, records, close } = await logOf20();
    await close();
    const [reader, other] = (await set.directory.config(name)).inSync;
    await flip(reader, name, payloadOffset(records[19]));

    const backup = await open(name);
    const taken = await openPrimary(backup, { heartbeatMs: 0 });
    expect(taken.records.map((record) => record.payload.toString())).toEqual(payloads(1, 20));
    // The damaged copy left the set, the intact one reads; nothing took sequence 20 again.
    const config = await set.directory.config(name);
    expect(config.inSync).toEqual([other]);
    expect(backup.stats.lastDecision?.copies.find((copy) => copy.name === reader)?.role).toBe('damaged');
    expect(await taken.writer.append(Buffer.from('record 21'))).toBe(21);
    // Its resync copies from the copy that passes, and both end equal and valid.
    await resync(set.directory, pool, name, reader);
    expect((await image(reader, name)).equals(await image(other, name))).toBe(true);
    const follower = await CheckpointReader.open(await open(name));
    expect((await follower.readBatch()).records.map((record) => record.payload.toString())).toEqual(payloads(1, 21));
    await taken.writer.close();
  });

  test('damage in record 10 of the read replica: the takeover reads all 20 from the intact copy and leaves it intact', async () => {
    const { name, records, close } = await logOf20();
    await close();
    const [reader, other] = (await set.directory.config(name)).inSync;
    const intact = await image(other, name);
    await flip(reader, name, payloadOffset(records[9]));

    const taken = await openPrimary(await open(name), { heartbeatMs: 0 });
    expect(taken.records.map((record) => record.payload.toString())).toEqual(payloads(1, 20));
    // The intact copy was not overwritten with the damage: records 1..20 are byte-equal to before.
    const after = await image(other, name);
    expect(after.subarray(HEADER_BYTES, HEADER_BYTES + records[19].end).equals(intact.subarray(HEADER_BYTES, HEADER_BYTES + records[19].end))).toBe(true);
    await taken.writer.close();
  });

  test('a reader that meets damage on the read replica is served from the other copy: the application never sees ECORRUPT', async () => {
    const { name, records, close, primary } = await logOf20();
    const [reader, other] = (await set.directory.config(name)).inSync;
    await flip(reader, name, payloadOffset(records[4]));
    const follower = await CheckpointReader.open(await open(name));
    const { records: read } = await follower.readBatch();
    expect(read.map((record) => record.payload.toString())).toEqual(payloads(1, 20));
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    expect(primary.stats.writes).toBeGreaterThan(0);
    await close();
  });

  test('a damaged epoch word on the read replica does not fence the live primary: that replica leaves the set', async () => {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const region = await open(name);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    await writer.append(Buffer.from('before'));
    const [reader, other] = region.configuration.inSync;
    await flip(reader, name, EPOCH_OFFSET + 3);
    expect(await writer.append(Buffer.from('after'))).toBe(2);
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    const follower = await CheckpointReader.open(await open(name));
    expect((await follower.readBatch()).records.map((record) => record.payload.toString())).toEqual(['before', 'after']);
    await writer.close();
  });

  test('a damaged cursor word on the read replica: readers open and takeovers succeed from the other copy', async () => {
    const { name, close } = await logOf20();
    await close();
    const [reader, other] = (await set.directory.config(name)).inSync;
    await flip(reader, name, CURSOR_POSITION_OFFSET + 1);
    const follower = await CheckpointReader.open(await open(name));
    expect((await follower.readBatch()).records).toHaveLength(20);
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    const taken = await openPrimary(await open(name), { heartbeatMs: 0 });
    expect(taken.records).toHaveLength(20);
    await taken.writer.close();
  });

  test('a damaged epoch word on the read replica under a watching backup: the watch reads the other copy, and still sees the primary go', async () => {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const primary = await open(name);
    // No heartbeat: the writer's next fenced write would meet the damaged epoch word first.
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    await writer.append(Buffer.from('before'));
    const [reader, other] = primary.configuration.inSync;
    const backup = await CheckpointReader.open(await open(name));
    let settled: string | undefined;
    const watching = backup.watchPrimary({ leaseMs: 60_000, pollMs: 5 });
    watching.then((failure) => (settled = `resolved ${failure.reason}: ${failure.detail}`), (error: PmuError) => (settled = `rejected ${error.code}: ${error.message}`));
    await flip(reader, name, EPOCH_OFFSET + 3);
    // The watch's next poll meets the damage, and the damaged copy leaves the set.
    await waitFor('the damaged replica to leave the set', async () => (await set.directory.config(name)).inSync.join() === other);
    expect(settled).toBeUndefined();
    await writer.close();
    await primary.close();
    // The primary's connections drop: the watch hears it from the intact copy.
    expect(await watching).toMatchObject({ reason: 'disconnected', event: { fencedWriter: true } });
  });

  test('a damaged cursor word on the read replica: the reader clears and the writer finds room from the other copy, no EBUSY or ECORRUPT', async () => {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const primary = await open(name);
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    const record = Buffer.alloc(8192, 0x33);
    let appended = 0;
    for (;;) {
      const outcome = await writer.append(record).then(() => 'ok', (error: PmuError) => error.code);
      if (outcome !== 'ok') {
        expect(outcome).toBe('EFULL');
        break;
      }
      appended++;
    }
    const follower = await CheckpointReader.open(await open(name));
    const [reader, other] = (await set.directory.config(name)).inSync;
    const { records } = await follower.readBatch();
    expect(records).toHaveLength(appended);
    // The reader's clear swaps the cursor word on the read replica first: damaged there, it
    // used to read as another reader's move (EBUSY).
    await flip(reader, name, CURSOR_POSITION_OFFSET + 1);
    await follower.clear(records[Math.floor(records.length / 2)].sequence);
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    // The writer lacks room and reads the cursor again: from the intact copy.
    expect(await writer.append(record)).toBe(appended + 1);
    await follower.clear(appended + 1);
    await writer.close();
  });

  test('a damaged cursor word on the read replica while the ring is full: the writer that reads it for room gets it from the other copy', async () => {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const primary = await open(name);
    const writer = (await openPrimary(primary, { mode: 'append', heartbeatMs: 0 })).writer;
    const record = Buffer.alloc(8192, 0x44);
    let appended = 0;
    while ((await writer.append(record).then(() => 'ok', (error: PmuError) => error.code)) === 'ok') appended++;
    const follower = await CheckpointReader.open(await open(name));
    const { records } = await follower.readBatch();
    await follower.clear(records[records.length - 1].sequence);
    const [reader, other] = (await set.directory.config(name)).inSync;
    await flip(reader, name, CURSOR_POSITION_OFFSET + 1);
    // Room by the cursor, which only the damaged copy's word could hide: it used to be ECORRUPT.
    expect(await writer.append(record)).toBe(appended + 1);
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    await writer.close();
  });

  /** A 2-copy overwrite log whose primary wrote checkpoints 1..3 'flushed'. */
  async function overwriteOf3(): Promise<string> {
    const name = `d${++count}`;
    await createMirroredRegion(set.directory, pool, name, SIZE, 2);
    const writer = (await openPrimary(await open(name), { mode: 'overwrite', heartbeatMs: 0 })).writer;
    for (let i = 1; i <= 3; i++) expect(await writer.checkpoint(Buffer.from(`state ${i}`))).toBe(i);
    await writer.close();
    return name;
  }
  // The slot checkpoint n lives in (slots.ts: n % 2, each half of the space past the header).
  const slotOf = (sequence: number) => HEADER_BYTES + (sequence % 2) * Math.floor((SIZE - HEADER_BYTES) / 2 / 8) * 8;

  for (const [what, offset] of [
    ['the newest checkpoint slot', () => slotOf(3) + RECORD_HEADER_BYTES + 2],
    ['the checkpoint mark word', () => CHECKPOINT_MARK_OFFSET + 1],
  ] as const) {
    test(`overwrite log, damage in ${what} of the read replica: readers and the takeover get checkpoint 3 from the other copy, which is untouched`, async () => {
      const name = await overwriteOf3();
      const [reader, other] = (await set.directory.config(name)).inSync;
      const intact = await image(other, name);
      await flip(reader, name, offset());
      const latest = await (await CheckpointReader.open(await open(name))).latest();
      expect({ sequence: latest?.sequence, state: latest?.state.toString() }).toEqual({ sequence: 3, state: 'state 3' });
      expect((await set.directory.config(name)).inSync).toEqual([other]);
      expect((await image(other, name)).equals(intact)).toBe(true);
      const taken = await openPrimary(await open(name), { heartbeatMs: 0 });
      expect(taken.checkpoint?.state.toString()).toBe('state 3');
      // Not rolled back to slot 2: the next checkpoint is 4.
      expect(await taken.writer.checkpoint(Buffer.from('state 4'))).toBe(4);
      await taken.writer.close();
    });
  }

  test('damage on the replica that is not read, then the read replica dies: the returning intact PMU is never overwritten by the damaged copy', async () => {
    const { name, records, close, primary } = await logOf20();
    const [reader, other] = (await set.directory.config(name)).inSync;
    await flip(other, name, payloadOffset(records[9]));
    const intactBefore = await image(reader, name);
    await set.stopPmu(reader);
    // The next write drops the dead read replica: the damaged copy is now the only one in sync.
    await primary.write(HEADER_BYTES - 8, Buffer.alloc(8), { durability: 'flushed' });
    expect((await set.directory.config(name)).inSync).toEqual([other]);
    await close().catch(() => undefined);
    await set.startPmu(reader);
    await expect(resync(set.directory, pool, name, reader)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringContaining(`'${other}'`) });
    // The returning PMU still holds its intact records: nothing copied the damage over them.
    const after = await image(reader, name);
    const end = HEADER_BYTES + records[19].end;
    expect(after.subarray(HEADER_BYTES, end).equals(intactBefore.subarray(HEADER_BYTES, end))).toBe(true);
  });

  test('damage on every copy: ECORRUPT names each replica and what is wrong there, and nothing is written', async () => {
    const { name, records, close } = await logOf20();
    await close();
    const [first, second] = (await set.directory.config(name)).inSync;
    await flip(first, name, payloadOffset(records[4]));
    await flip(second, name, payloadOffset(records[9]));
    const before = [await image(first, name), await image(second, name)];
    const error = await openPrimary(await open(name), { heartbeatMs: 0 }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: 'ECORRUPT' });
    expect(String((error as Error).message)).toContain(`'${first}'`);
    expect(String((error as Error).message)).toContain(`'${second}'`);
    expect((await image(first, name)).equals(before[0])).toBe(true);
    expect((await image(second, name)).equals(before[1])).toBe(true);
    expect((await set.directory.config(name)).inSync).toHaveLength(2);
    const direct = set.pool(2000);
    expect((await verifyRegion(await direct.openRegion(first, name))).ok).toBe(false);
    await direct.close();
  });
});

run('mirrored set: the directory goes backwards', () => {
  let set: TestSet;
  beforeAll(async () => {
    set = await startSet(2, { set: 'rollback' });
  }, 30_000);
  afterAll(async () => {
    await set?.close();
  });

  test('etcd restored from an older copy: the writer that saw a newer configuration stops acknowledging (EROLLBACK) and says what to do', async () => {
    const pool = set.pool(500);
    await createMirroredRegion(set.directory, pool, 'r', SIZE, 2);
    const region = await MirroredRegion.open(set.directory, pool, 'r');
    await region.write(0, Buffer.from('acked'), { durability: 'flushed' });
    const old = await set.directory.config('r');
    // A change the writer sees (etcd moves on to epoch + 1)...
    const next = await set.directory.transition(old, { ...old, epoch: old.epoch + 1 });
    await waitFor('the writer adopts the new epoch', () => region.configuration.epoch === next!.epoch);
    // ...then etcd is restored from the copy taken before it.
    const etcd = new Etcd3({ hosts: set.etcd.url });
    await etcd.put(set.directory.regionKey('r')).value(JSON.stringify(old));
    etcd.close();
    const refused = await waitFor('a write is refused', async () => {
      try {
        await region.write(0, Buffer.from('later'), { durability: 'flushed' });
        return false;
      } catch (error) {
        return error as PmuError;
      }
    });
    expect(refused).toMatchObject({ code: 'EROLLBACK' });
    expect(refused.message).toMatch(/restored from an older copy/);
    // Fail-stop: every later operation is refused too, reads included.
    await expect(region.read(0, 5)).rejects.toMatchObject({ code: 'EROLLBACK' });
    await expect(region.write(0, Buffer.from('again'))).rejects.toMatchObject({ code: 'EROLLBACK' });
    await region.close();
  });
});
