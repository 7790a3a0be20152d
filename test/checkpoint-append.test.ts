/** Append mode over an embedded region: round trips, torn records, a full ring, wrap and reuse, snapshots. */
import { CheckpointReader, HEADER_BYTES, LogRecord, PmuError, RECORD_HEADER_BYTES, recordBytes, replayFrom, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { SPLIT_PAYLOAD_BYTES } from '../lib/checkpoint/format/record';
import { capabilitiesOf } from '../lib/unit/durability';
import { LocalRegion } from '../lib/unit/local-region';
import type { Region, WriteOptions } from '../lib/unit/region';
import { Embedded, openEmbedded, payload, text } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

let env: Embedded;
afterEach(async () => {
  if (!env.unit.isClosed) await env.unit.close();
});

/** Payload bytes of a 512-byte record: eight fill a 4 KiB ring. */
const FILL = 512 - RECORD_HEADER_BYTES;

/** A ring of exactly `ringBytes` bytes. */
function withRing(ringBytes: number): Embedded {
  env = openEmbedded(HEADER_BYTES + ringBytes);
  return env;
}

async function readAll(reader: CheckpointReader): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  for (;;) {
    const batch = await reader.readBatch();
    records.push(...batch.records);
    if (batch.stop.reason !== 'limit') return records;
  }
}

describe('append mode', () => {
  test('round trip: sequences from 1, payloads intact, one batch reads many', async () => {
    const { region } = withRing(64 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const sequences: number[] = [];
    for (let i = 0; i < 50; i++) sequences.push(await writer.append(payload(i, i % 40)));
    expect(sequences).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const reader = await CheckpointReader.open(region);
    const batch = await reader.readBatch();
    expect(batch.records.map((r) => r.sequence)).toEqual(sequences);
    batch.records.forEach((record, i) => expect(record.payload.equals(payload(i, i % 40))).toBe(true));
    expect(batch.stop.reason).toBe('end');
    expect((await reader.readBatch()).records).toHaveLength(0);
    await writer.close();
  });

  test('concurrent appends keep their order and share flushes', async () => {
    const { region, unit } = withRing(256 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const flushesBefore = unit.groupFlushes;
    const order: number[] = [];
    const acks = Array.from({ length: 200 }, (_, i) => writer.append(payload(i)).then((sequence) => (order.push(sequence), sequence)));
    expect(await Promise.all(acks)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // Acks fire in sequence order, and 200 appends did not cost 200 msyncs.
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(unit.groupFlushes - flushesBefore).toBeLessThan(100);
    const records = await readAll(await CheckpointReader.open(region));
    expect(records.map((r) => r.payload.toString('latin1'))).toEqual(Array.from({ length: 200 }, (_, i) => payload(i).toString('latin1')));
  });

  test('a torn last record (bad CRC) stops the reader there and says so', async () => {
    const { region } = withRing(16 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < 3; i++) await writer.append(payload(i, 100));
    // Flip one payload byte of record 3, the last: its CRC no longer validates and nothing after it vouches for it.
    const third = HEADER_BYTES + 2 * recordBytes(100);
    const byte = await region.read(third + RECORD_HEADER_BYTES + 10, 1);
    await region.write(third + RECORD_HEADER_BYTES + 10, Buffer.from([byte[0] ^ 0xff]));
    const reader = await CheckpointReader.open(region);
    const batch = await reader.readBatch();
    expect(batch.records.map((r) => r.sequence)).toEqual([1, 2]);
    expect(batch.stop).toMatchObject({ reason: 'torn', sequence: 3 });
    expect(batch.stop.detail).toMatch(/CRC32C/);
  });

  test('half a record (header written, payload not) is torn; the reader never passes it', async () => {
    const { region } = withRing(16 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    await writer.append(payload(1, 200));
    await writer.close();
    // Forge record 2 as a crashed writer would leave it: its header landed, its payload did not.
    const otherWriter = (await openPrimary(region, { heartbeatMs: 0 })).writer;
    await otherWriter.append(payload(2, 200));
    const second = HEADER_BYTES + recordBytes(200);
    await region.write(second + RECORD_HEADER_BYTES, Buffer.alloc(200));
    const batch = await (await CheckpointReader.open(region)).readBatch();
    expect(batch.records.map((r) => r.sequence)).toEqual([1]);
    expect(batch.stop.reason).toBe('torn');
  });

  test('a record that is larger than the ring fails with ETOOBIG', async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    await expect(writer.append(Buffer.alloc(4096))).rejects.toMatchObject({ code: 'ETOOBIG' });
    expect(await writer.append(Buffer.alloc(4096 - RECORD_HEADER_BYTES))).toBe(1);
  });

  test("a full ring fails with EFULL in 'error' mode; clearing makes room", async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const size = recordBytes(FILL); // 512: eight fill the ring
    for (let i = 0; i < 4096 / size; i++) await writer.append(payload(i, FILL));
    const full = writer.append(payload(99, FILL));
    await expect(full).rejects.toBeInstanceOf(PmuError);
    await expect(full).rejects.toMatchObject({ code: 'EFULL' });
    const reader = await CheckpointReader.open(region);
    const batch = await reader.readBatch();
    expect(batch.records).toHaveLength(8);
    await reader.clear(2);
    // The failed append consumed no sequence: the next one is 9.
    expect(await writer.append(payload(9, FILL))).toBe(9);
    expect(await writer.append(payload(10, FILL))).toBe(10);
    await expect(writer.append(payload(11, FILL))).rejects.toMatchObject({ code: 'EFULL' });
  });

  test("a clear whose swap landed but whose answer was ECONFIG (a mirrored set's configuration changed under it) reads the word: its own new position is success; another's is EBUSY", async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < 4; i++) await writer.append(payload(i, FILL));
    // Like a MirroredRegion whose set changed during the swap: the swap is done, the answer is unknown.
    let unknown = 1;
    const uncertain = Object.assign(Object.create(region) as Region, {
      compareAndSwap: async (offset: number, expected: bigint, value: bigint, options?: WriteOptions) => {
        const previous = await region.compareAndSwap(offset, expected, value, options);
        if (unknown-- > 0) throw new PmuError('ECONFIG', "region 'x': the set's configuration changed during compare-and-swap; its outcome is unknown: read the word and retry");
        return previous;
      },
    });
    const reader = await CheckpointReader.open(uncertain);
    expect((await reader.readBatch()).records).toHaveLength(4);
    await reader.clear(2);
    // The cursor moved past record 2, once: a fresh reader starts at 3.
    const fresh = await CheckpointReader.open(region);
    expect((await fresh.readBatch()).records.map((r) => r.sequence)).toEqual([3, 4]);
    // Someone else moves the cursor elsewhere while our swap's answer is lost: EBUSY, as without ECONFIG.
    await fresh.clear(4);
    unknown = 1;
    await expect(reader.clear(3)).rejects.toMatchObject({ code: 'EBUSY' });
  });

  test("'wait' mode waits for the reader to clear, and gives up at its deadline", async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0, whenFull: 'wait', fullWaitMs: 2000 })).writer;
    for (let i = 0; i < 8; i++) await writer.append(payload(i, FILL));
    const reader = await CheckpointReader.open(region);
    let acked = false;
    const waiting = writer.append(payload(8, FILL)).then((sequence) => ((acked = true), sequence));
    const batch = await reader.readBatch();
    expect(acked).toBe(false);
    await reader.clear(batch.records[0].sequence);
    expect(await waiting).toBe(9);

    const impatient = (await openPrimary(region, { heartbeatMs: 0, whenFull: 'wait', fullWaitMs: 50 })).writer;
    const started = Date.now();
    await expect(impatient.append(payload(10, FILL))).rejects.toMatchObject({ code: 'EFULL', message: expect.stringMatching(/after waiting 50 ms/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  test('clear and reuse across many wraps of the ring, with pads at the ring end', async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0, whenFull: 'wait', fullWaitMs: 5000 })).writer;
    const reader = await CheckpointReader.open(region);
    const lengths = [0, 1, 7, 8, 100, 333, 700, 1000, 2000];
    const total = 400;
    const seen: LogRecord[] = [];
    const consume = (async () => {
      while (seen.length < total) {
        const { records } = await reader.readBatch({ maxRecords: 5 });
        seen.push(...records);
        if (records.length > 0) await reader.clear(records[records.length - 1].sequence);
        else await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const acks = Array.from({ length: total }, (_, i) => writer.append(payload(i, lengths[i % lengths.length])));
    await Promise.all([...acks, consume]);
    expect(seen.map((r) => r.sequence)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    seen.forEach((record, i) => expect(record.payload.equals(payload(i, lengths[i % lengths.length]))).toBe(true));
    // Well past one lap: the space was reused.
    expect(seen[seen.length - 1].end).toBeGreaterThan(20 * 4096);
  });

  test('a reader that falls behind loses nothing: the writer stops at EFULL, the reader catches up in batches', async () => {
    const { region } = withRing(8192);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const reader = await CheckpointReader.open(region);
    let written = 0;
    const consumed: number[] = [];
    for (let round = 0; round < 5; round++) {
      // The writer runs ahead until the ring is full...
      for (;;) {
        try {
          await writer.append(payload(written, 50));
          written++;
        } catch (error) {
          expect(error).toMatchObject({ code: 'EFULL' });
          break;
        }
      }
      // ...then the slow reader catches up in small batches.
      for (;;) {
        const { records, stop } = await reader.readBatch({ maxRecords: 7 });
        consumed.push(...records.map((r) => r.sequence));
        if (records.length > 0) await reader.clear(records[records.length - 1].sequence);
        if (stop.reason === 'end') break;
      }
    }
    expect(written).toBeGreaterThan(400);
    expect(consumed).toEqual(Array.from({ length: written }, (_, i) => i + 1));
  });

  test('a new reader resumes from the persisted cursor', async () => {
    const { region } = withRing(16 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < 10; i++) await writer.append(payload(i));
    const first = await CheckpointReader.open(region);
    await first.readBatch();
    await first.clear(6);
    const second = await CheckpointReader.open(region);
    expect((await second.readBatch()).records.map((r) => r.sequence)).toEqual([7, 8, 9, 10]);
  });

  test('snapshot plus log: recovery is the latest snapshot and the updates after it; history before it can be cleared', async () => {
    const { region } = withRing(16 * 1024);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    await writer.append(text('+1'));
    await writer.append(text('+2'));
    const snap = await writer.snapshot(text('=3'));
    await writer.append(text('+4'));
    await writer.append(text('+5'));
    const reader = await CheckpointReader.open(region);
    const { records } = await reader.readBatch();
    const replay = replayFrom(records);
    expect(replay.snapshot?.sequence).toBe(snap);
    expect(replay.snapshot?.payload.toString()).toBe('=3');
    expect(replay.updates.map((r) => r.payload.toString())).toEqual(['+4', '+5']);
    await reader.clear(snap - 1);
    const later = await CheckpointReader.open(region);
    const rest = (await later.readBatch()).records;
    expect(rest.map((r) => r.type)).toEqual(['snapshot', 'update', 'update']);
  });

  test('follow() yields batches as they arrive and auto-clears what was consumed', async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0, whenFull: 'wait' })).writer;
    const reader = await CheckpointReader.open(region);
    const controller = new AbortController();
    const got: number[] = [];
    const following = (async () => {
      for await (const batch of reader.follow({ intervalMs: 1, signal: controller.signal, autoClear: true })) {
        got.push(...batch.map((r) => r.sequence));
        if (got.length >= 100) controller.abort();
      }
    })();
    // 100 x 512 bytes through a 4 KiB ring only works if follow() clears behind itself.
    for (let i = 0; i < 100; i++) await writer.append(payload(i, FILL));
    await following;
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  test('a stale record from an earlier lap is not taken for the next one', async () => {
    const { region } = withRing(4096);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const reader = await CheckpointReader.open(region);
    for (let i = 0; i < 8; i++) await writer.append(payload(i, FILL));
    await reader.readBatch();
    await reader.clear(8);
    // The ring now holds records 1..8 of lap 0 everywhere; nothing of lap 1 exists yet.
    const batch = await reader.readBatch();
    expect(batch.records).toHaveLength(0);
    expect(batch.stop.reason).toBe('end');
    expect(batch.stop.detail).toMatch(/claiming position 0/);
    expect(await writer.append(payload(8, 10))).toBe(9);
    expect((await reader.readBatch()).records.map((r) => r.sequence)).toEqual([9]);
  });
});

describe('large records from the caller’s buffer (SPLIT_PAYLOAD_BYTES and up, on a Region that copies on write)', () => {
  const BIG = SPLIT_PAYLOAD_BYTES + 12_345;

  /** A LocalRegion whose writes are recorded (offset, length, the buffer handed in) and may be refused. */
  function recorded(inner: LocalRegion, refuse?: (offset: number, length: number) => boolean): { region: Region; writes: Array<{ offset: number; length: number; data: Uint8Array }> } {
    const writes: Array<{ offset: number; length: number; data: Uint8Array }> = [];
    const region: Region = Object.create(inner, {
      write: {
        value: (offset: number, data: Uint8Array, options?: WriteOptions) => {
          writes.push({ offset, length: data.length, data });
          if (refuse?.(offset, data.length)) return Promise.reject(new PmuError('EIO', 'refused by the test'));
          return inner.write(offset, data, options);
        },
      },
    });
    return { region, writes };
  }

  test('the payload goes from the caller’s buffer (no record copy), its padding next, the header last; it reads back; the caller may reuse its buffer once append returns', async () => {
    const env2 = withRing(4 << 20);
    const { region, writes } = recorded(env2.region);
    expect(region.capabilities.copiesOnWrite).toBe(true);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    writes.length = 0;
    const big = payload(1, BIG);
    const original = Buffer.from(big);
    const acked = writer.append(big);
    big.fill(0xee); // allowed: the region copied it before write() returned
    expect(await acked).toBe(1);
    // payload, tail (padding + end mark), header: the payload is the caller's own buffer.
    expect(writes.map((w) => w.length)).toEqual([BIG, recordBytes(BIG) - RECORD_HEADER_BYTES - BIG + RECORD_HEADER_BYTES, RECORD_HEADER_BYTES]);
    expect(writes[0].data).toBe(big);
    expect(writes[2].offset).toBe(writes[0].offset - RECORD_HEADER_BYTES);
    const records = await readAll(await CheckpointReader.open(env2.region));
    expect(records).toHaveLength(1);
    expect(records[0].payload.equals(original)).toBe(true);
    // A small record after it is one write, as before, and follows it.
    writes.length = 0;
    expect(await writer.append(payload(2))).toBe(2);
    expect(writes).toHaveLength(1);
    expect((await readAll(await CheckpointReader.open(env2.region))).map((r) => r.sequence)).toEqual([1, 2]);
    await writer.close();
  });

  test('a large append that waits for room is copied first: the caller changing its buffer meanwhile changes nothing', async () => {
    const ring = 2 * recordBytes(BIG) + 4096;
    const env2 = withRing(ring);
    const writer = (await openPrimary(env2.region, { mode: 'append', heartbeatMs: 0, whenFull: 'wait', fullWaitMs: 10_000 })).writer;
    await writer.append(payload(1, BIG));
    await writer.append(payload(2, BIG));
    const big = payload(3, BIG);
    const original = Buffer.from(big);
    const waiting = writer.append(big);
    big.fill(0x11);
    const reader = await CheckpointReader.open(env2.region);
    const batch = await reader.readBatch();
    expect(batch.records.map((r) => r.sequence)).toEqual([1, 2]); // the third is still waiting
    await reader.clear(batch.records[0].sequence);
    expect(await waiting).toBe(3);
    const later = await readAll(reader);
    expect(later.map((r) => r.sequence)).toEqual([3]);
    expect(later[0].payload.equals(original)).toBe(true);
    await writer.close();
  });

  test('a split record whose header never landed is not there: the reader stops at the record before it, with no damage reported', async () => {
    const env2 = withRing(4 << 20);
    let refuseHeaders = false;
    const { region } = recorded(env2.region, (_offset, length) => refuseHeaders && length === RECORD_HEADER_BYTES);
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    expect(await writer.append(payload(1))).toBe(1);
    refuseHeaders = true;
    await expect(writer.append(payload(2, BIG))).rejects.toMatchObject({ code: 'EIO' });
    const reader = await CheckpointReader.open(env2.region);
    const batch = await reader.readBatch();
    expect(batch.records.map((r) => r.sequence)).toEqual([1]);
    expect(batch.stop.reason).toBe('end');
  });

  test('regions that send the caller’s buffer (RemoteRegion, MirroredRegion) do not copy on write: their large records are one write from a record buffer', () => {
    expect(capabilitiesOf('LocalRegion').copiesOnWrite).toBe(true);
    for (const type of ['RemoteRegion', 'MirroredRegion', 'FileRegion'] as const) expect(capabilitiesOf(type).copiesOnWrite).toBe(false);
  });
});
