/**
 * The append path a primary that is its own reader uses (the LangGraph saver): an end mark
 * after every record so a caught-up reader meets a clean end even after the ring has lapped,
 * records built in place (frames), and clearing up to its own snapshot without reading back.
 * Embedded, small: well under a second.
 */
import { CheckpointReader, frameBytes, PmuError, RECORD_HEADER_BYTES, recordBytes, Region, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

const RING = 256 * 1024;

/** `region`, counting the bytes read through it. */
function counted(region: Region): { view: Region; bytesRead(): number } {
  let bytes = 0;
  const view = new Proxy(region, {
    get(target, property) {
      if (property === 'read') {
        return async (offset: number, length: number) => {
          bytes += length;
          return target.read(offset, length);
        };
      }
      const value = (target as unknown as Record<string | symbol, unknown>)[property];
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { view, bytesRead: () => bytes };
}

test('after the ring has lapped, a caught-up reader meets a clean end and reads little', async () => {
  const env = openEmbedded(RING + 4096);
  try {
    const writer = (await openPrimary(env.region, { mode: 'append', durability: 'mapped', heartbeatMs: 0 })).writer;
    const { view, bytesRead } = counted(env.region);
    const reader = await CheckpointReader.open(view);
    // Odd sizes, so each lap's records start in the middle of the last lap's.
    let index = 0;
    for (let written = 0; written < 3 * RING; ) {
      const length = 100 + ((index * 7919) % 3000);
      await writer.append(payload(++index, length));
      written += length;
      if (index % 8 === 0) {
        for (let batch = await reader.readBatch(); batch.stop.reason === 'limit'; batch = await reader.readBatch());
        await reader.clear(reader.next.sequence - 1);
      }
    }
    for (let batch = await reader.readBatch(); batch.stop.reason === 'limit'; batch = await reader.readBatch());
    await reader.clear(reader.next.sequence - 1);
    expect(reader.next.position).toBeGreaterThan(2 * RING);
    // Caught up: a poll at the end finds a blank header, not stale bytes to search past.
    const before = bytesRead();
    const poll = await reader.readBatch();
    expect(poll.records).toHaveLength(0);
    expect(poll.stop.reason).toBe('end');
    expect(poll.stop.suspect).toBeFalsy();
    // One small window at the end, not a search of the ring.
    expect(bytesRead() - before).toBeLessThanOrEqual(16 * 1024);
    // And what follows is read as usual.
    await writer.append(payload(++index, 64));
    const next = await reader.readBatch();
    expect(next.records.map((record) => record.payload)).toEqual([payload(index, 64)]);
    await writer.close();
  } finally {
    await env.unit.close();
  }
});

test('a record frame is appended without a copy; a malformed one is EINVAL', async () => {
  const env = openEmbedded(64 * 1024);
  try {
    const writer = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    const content = payload(1, 333);
    const buffer = Buffer.alloc(frameBytes(content.length), 0xee);
    content.copy(buffer, RECORD_HEADER_BYTES);
    expect(await writer.append({ buffer, length: content.length })).toBe(1);
    await expect(writer.append({ buffer: Buffer.alloc(frameBytes(10) - 1), length: 10 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(writer.append({ buffer, length: -1 })).rejects.toBeInstanceOf(PmuError);
    await expect(writer.append('text' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'EINVAL' });
    const reader = await CheckpointReader.open(env.region);
    const batch = await reader.readBatch();
    // The 0xee filler around the payload never reaches the log: padding and CRC are the writer's.
    expect(batch.records.map((record) => record.payload)).toEqual([content]);
    await writer.close();
  } finally {
    await env.unit.close();
  }
});

test('clearBefore moves the cursor to a snapshot its own writer placed, without reading the log', async () => {
  const env = openEmbedded(64 * 1024);
  try {
    const took = await CheckpointReader.open(env.region).catch(() => undefined);
    expect(took).toBeUndefined(); // blank region: nothing to follow yet
    const writer = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    const { view, bytesRead } = counted(env.region);
    const reader = await CheckpointReader.open(view);
    for (let i = 1; i <= 20; i++) await writer.append(payload(i, 500));
    const point = await writer.placeSnapshot(payload(100, 200));
    expect(point.sequence).toBe(21);
    const after = writer.append(payload(22, 50));
    const before = bytesRead();
    await reader.clearBefore(point);
    await after;
    // Only the cursor words were touched: none of the 20 records was read back.
    expect(bytesRead() - before).toBeLessThan(64);
    expect(reader.next).toEqual(point);
    // Recovery (a fresh reader from the persisted cursor) starts at the snapshot.
    const fresh = await CheckpointReader.open(env.region);
    const batch = await fresh.readBatch();
    expect(batch.records.map((record) => [record.sequence, record.type])).toEqual([
      [21, 'snapshot'],
      [22, 'update'],
    ]);
    // Points it cannot vouch for are refused, and the cursor stays.
    await expect(reader.clearBefore({ position: point.position - 8, sequence: 20 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(reader.clearBefore({ position: point.position + 10 * 64 * 1024, sequence: 99 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(reader.clearBefore({ position: Number.NaN, sequence: 21 })).rejects.toMatchObject({ code: 'EINVAL' });
    // Another reader moving the cursor first makes this one's clear EBUSY.
    await fresh.clear(21);
    await expect(reader.clearBefore({ position: point.position + recordBytes(200), sequence: 22 })).rejects.toMatchObject({ code: 'EBUSY' });
    await writer.close();
  } finally {
    await env.unit.close();
  }
});

test('a region write that throws at once fails the append and stops the writer; no sequence is skipped', async () => {
  const env = openEmbedded(64 * 1024);
  try {
    let throwNext = false;
    const view = new Proxy(env.region, {
      get(target, property) {
        if (property === 'write') {
          return (offset: number, data: Uint8Array, options?: object) => {
            if (throwNext) throw new PmuError('EIO', 'injected: the write threw before returning a promise');
            return target.write(offset, data, options);
          };
        }
        const value = (target as unknown as Record<string | symbol, unknown>)[property];
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const writer = (await openPrimary(view, { mode: 'append', heartbeatMs: 0 })).writer;
    expect(await writer.append(payload(1, 100))).toBe(1);
    throwNext = true;
    await expect(writer.append(payload(2, 100))).rejects.toMatchObject({ code: 'EIO' });
    throwNext = false;
    // The writer is done: a hole may not be written past.
    await expect(writer.append(payload(3, 100))).rejects.toMatchObject({ code: 'EIO' });
    const reader = await CheckpointReader.open(env.region);
    const batch = await reader.readBatch();
    expect(batch.records.map((record) => record.sequence)).toEqual([1]);
    await writer.close();
  } finally {
    await env.unit.close();
  }
});
