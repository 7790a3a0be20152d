/** Append mode over an embedded region: round trips, torn records, a full ring, wrap and reuse, snapshots. */
import { CheckpointReader, HEADER_BYTES, LogRecord, PmuError, RECORD_HEADER_BYTES, recordBytes, replayFrom, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
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
