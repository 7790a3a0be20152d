/**
 * Damage is not a torn tail: one damaged byte in an acknowledged record, or in a header word
 * recovery trusts, makes every way in (openPrimary, takeover, a reader) refuse with ECORRUPT,
 * and the acknowledged records after it are still there afterwards. A torn last record still
 * recovers.
 */
import { CheckpointReader, CheckpointWriter, crc32c, CURSOR_POSITION_OFFSET, CURSOR_SEQUENCE_OFFSET, EPOCH_OFFSET, HEADER_BYTES, HEARTBEAT_OFFSET, LocalRegion, openPrimary, RECORD_HEADER_BYTES, recordBytes } from '../lib';
import { encodeWord, tryDecodeWord, WordName } from '../lib/checkpoint/format/checked-word';
import { verifyRegion } from '../lib/checkpoint/verify';
import { removeTempDirs } from './helpers/temp';
import { Embedded, openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

let env: Embedded;
afterEach(async () => {
  if (!env.unit.isClosed) await env.unit.close();
});

const PAYLOAD = 100;
const RECORD = recordBytes(PAYLOAD);
/** Region offset of record `sequence` when records 1.. were appended from position 0 without wrapping. */
const at = (sequence: number) => HEADER_BYTES + (sequence - 1) * RECORD;

async function twentyAcked(options: { durability?: 'flushed' | 'mapped' } = {}): Promise<LocalRegion> {
  env = openEmbedded(64 * 1024);
  const writer = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0, ...options })).writer;
  for (let i = 1; i <= 20; i++) expect(await writer.append(payload(i, PAYLOAD))).toBe(i);
  await writer.close();
  return env.region;
}

async function flipByte(region: LocalRegion, offset: number, mask = 0xff): Promise<void> {
  const byte = (await region.read(offset, 1))[0];
  await region.write(offset, Buffer.from([byte ^ mask]));
}

const ways: Array<[string, (region: LocalRegion) => Promise<unknown>]> = [
  ['openPrimary', (region) => openPrimary(region, { heartbeatMs: 0 })],
  ['CheckpointWriter.open', (region) => openPrimary(region, { heartbeatMs: 0 }).then((t) => t.writer)],
  ['takeover', async (region) => openPrimary(await CheckpointReader.open(region), { heartbeatMs: 0 })],
  ['a reader', async (region) => (await CheckpointReader.open(region)).readBatch()],
];

// Record header: 0 sequence, 8 position, 16 durable, 24 epoch, 28 length, 32 type, 36 crc, 40 payload.
const damages: Array<[string, number]> = [
  ['a payload byte', RECORD_HEADER_BYTES + 17],
  ['a sequence byte', 0],
  ['a high sequence byte', 5],
  ['a length byte', 28],
  ['a position byte', 8],
  ['the CRC', 37],
];

describe('one damaged byte in acknowledged record 5 of 20', () => {
  for (const [damage, field] of damages) {
    for (const [way, attempt] of ways) {
      test(`${damage}: ${way} refuses with ECORRUPT and records 6-20 are intact afterwards`, async () => {
        const region = await twentyAcked();
        await flipByte(region, at(5) + field);
        const after = await region.read(at(6), 15 * RECORD);
        await expect(attempt(region)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/record 5 .*damaged.*pmu inspect --verify.*mirror or a backup/) });
        expect((await region.read(at(6), 15 * RECORD)).equals(after)).toBe(true);
        // And it stays refused: the attempt wrote nothing that hides the damage.
        await expect(openPrimary(region, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ECORRUPT' });
      });
    }
  }

  test('a reader following the log stops with ECORRUPT at the damage, after handing out records 1-4', async () => {
    const region = await twentyAcked();
    await flipByte(region, at(5) + RECORD_HEADER_BYTES);
    const reader = await CheckpointReader.open(region);
    const seen: number[] = [];
    const controller = new AbortController();
    const following = (async () => {
      for await (const batch of reader.follow({ intervalMs: 1, signal: controller.signal, maxRecords: 2 })) seen.push(...batch.map((r) => r.sequence));
    })();
    await expect(following).rejects.toMatchObject({ code: 'ECORRUPT' });
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});

describe('a torn tail still recovers', () => {
  test('the last record torn: openPrimary recovers 1-19 and the new writer continues at 20', async () => {
    const region = await twentyAcked();
    await flipByte(region, at(20) + RECORD_HEADER_BYTES + 3);
    const { writer, records, stop } = await openPrimary(region, { heartbeatMs: 0 });
    expect(records.map((r) => r.sequence)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(stop).toMatchObject({ reason: 'torn', sequence: 20 });
    expect(await writer.append(payload(99, PAYLOAD))).toBe(20);
    await writer.close();
  });

  test("records never flushed ('mapped', then a power loss) are a torn tail, not damage: nothing after the hole vouches for it", async () => {
    const region = await twentyAcked({ durability: 'mapped' });
    // A power loss kept the pages of records 6-20 but not the one of record 5.
    await flipByte(region, at(5) + RECORD_HEADER_BYTES + 3);
    const { writer, records, stop } = await openPrimary(region, { heartbeatMs: 0 });
    expect(records.map((r) => r.sequence)).toEqual([1, 2, 3, 4]);
    expect(stop).toMatchObject({ reason: 'torn', sequence: 5 });
    expect(await writer.append(payload(5, PAYLOAD))).toBe(5);
    await writer.close();
  });

  test('after a takeover of a mapped log, everything recovered is flushed: damage to it is then caught', async () => {
    const region = await twentyAcked({ durability: 'mapped' });
    const { writer } = await openPrimary(region, { heartbeatMs: 0 });
    expect(await writer.append(payload(21, PAYLOAD))).toBe(21);
    await writer.close();
    await flipByte(region, at(5) + RECORD_HEADER_BYTES + 3);
    await expect(openPrimary(region, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ECORRUPT' });
  });

  test('across ring laps: stale records of earlier laps are not later records; a torn tail recovers, damage is refused', async () => {
    env = openEmbedded(HEADER_BYTES + 4096);
    const region = env.region;
    const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
    const reader = await CheckpointReader.open(region);
    // 50 records of 200 bytes through a 4 KiB ring: several laps, pads at the ring end.
    let last = 0;
    for (let i = 1; i <= 50; i++) {
      last = await writer.append(payload(i, 200 - RECORD_HEADER_BYTES));
      if (i % 5 === 0) {
        await reader.readBatch();
        await reader.clear(i - 3);
      }
    }
    expect(last).toBe(50);
    await writer.close();
    const live = (await (await CheckpointReader.open(region)).readBatch()).records;
    expect(live.map((r) => r.sequence)).toEqual([48, 49, 50]);
    const tornTail = live[2];
    const beforeTear = await region.read(HEADER_BYTES, 4096);
    await flipByte(region, HEADER_BYTES + (tornTail.position % 4096) + RECORD_HEADER_BYTES);
    const recovered = await openPrimary(region, { heartbeatMs: 0 });
    expect(recovered.records.map((r) => r.sequence)).toEqual([48, 49]);
    await recovered.writer.close();
    // Damage in the middle of the live part, after wrapping: refused.
    await region.write(HEADER_BYTES, beforeTear);
    await flipByte(region, HEADER_BYTES + (live[1].position % 4096) + RECORD_HEADER_BYTES);
    await expect(openPrimary(region, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/record 49 /) });
  });
});

describe('damaged header words', () => {
  const words: Array<[string, number]> = [
    ['cursor position', CURSOR_POSITION_OFFSET],
    ['cursor sequence', CURSOR_SEQUENCE_OFFSET],
  ];
  for (const [name, offset] of words) {
    for (const bit of [0, 3, 13, 31, 40, 55, 60]) {
      test(`a flipped bit ${bit} of the ${name} word: readers and takeovers refuse (ECORRUPT), never an empty log`, async () => {
        const region = await twentyAcked();
        const reader = await CheckpointReader.open(region);
        await reader.readBatch({ maxRecords: 7 });
        await reader.clear(7);
        await flipByte(region, offset + (bit >> 3), 1 << (bit & 7));
        const ring = await region.read(HEADER_BYTES, 20 * RECORD);
        for (const [, attempt] of ways) await expect(attempt(region)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringContaining(name) });
        expect((await region.read(HEADER_BYTES, 20 * RECORD)).equals(ring)).toBe(true);
      });
    }
  }

  test('a cursor sequence word that is a valid word but behind the record at the cursor is refused', async () => {
    const region = await twentyAcked();
    const reader = await CheckpointReader.open(region);
    await reader.readBatch({ maxRecords: 7 });
    await reader.clear(7);
    // Valid encoding of 3, written the way clear() writes it: the record at the cursor carries 8.
    const forged = Buffer.alloc(8);
    forged.writeBigUInt64LE(encodeWord('cursor sequence', 3));
    await region.write(CURSOR_SEQUENCE_OFFSET, forged);
    await expect(openPrimary(region, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/carries sequence 8, past the cursor sequence 3/) });
  });

  test('a cursor position word that is valid but points past the log (garbage that passed its check): verify finds records behind it', async () => {
    const region = await twentyAcked();
    const reader = await CheckpointReader.open(region);
    await reader.readBatch({ maxRecords: 7 });
    await reader.clear(7);
    // Records 8-20 unread; the forged cursor claims everything up to after record 20 was consumed.
    const forged = Buffer.alloc(8);
    forged.writeBigUInt64LE(encodeWord('cursor position', 20 * RECORD));
    await region.write(CURSOR_POSITION_OFFSET, forged);
    expect((await (await CheckpointReader.open(region)).readBatch()).records).toHaveLength(0); // what the forged cursor hides
    // Recovery relies on the word's check for this (1 in 256 random words pass it); the offline
    // verification reads the whole ring and finds acknowledged records behind the cursor.
    const verdict = await verifyRegion(region);
    expect(verdict.ok).toBe(false);
    expect(verdict.problems.join('\n')).toMatch(/the cursor is damaged: record \d+ at position \d+ behind it/);
  });

  test('a flipped heartbeat bit is not trusted by recovery: nothing is lost, nothing refused', async () => {
    const region = await twentyAcked();
    await flipByte(region, HEARTBEAT_OFFSET + 6, 0x10);
    const { records, writer } = await openPrimary(region, { heartbeatMs: 0 });
    expect(records).toHaveLength(20);
    expect(await writer.append(payload(21, PAYLOAD))).toBe(21);
    await writer.close();
  });

  test('the checked words detect every flipped bit and every damaged byte (exhaustive over one word of each kind)', () => {
    const names: WordName[] = ['epoch', 'cursor position', 'cursor sequence'];
    for (const name of names) {
      const word = encodeWord(name, 0x0012_3456_789a_bcden);
      expect(tryDecodeWord(name, word)).toBe(0x0012_3456_789a_bcden);
      for (let bit = 0n; bit < 64n; bit++) expect(tryDecodeWord(name, word ^ (1n << bit))).toBeUndefined();
      for (let byte = 0n; byte < 8n; byte++) {
        for (let mask = 1n; mask < 256n; mask++) expect(tryDecodeWord(name, word ^ (mask << (8n * byte)))).toBeUndefined();
      }
      // A word of one kind is not a valid word of another (a value copied to the wrong place).
      for (const other of names) if (other !== name) expect(tryDecodeWord(other, word)).toBeUndefined();
    }
  });

  for (const bit of [0, 1, 20, 55, 58]) {
    test(`a flipped bit ${bit} of the epoch word: the live writer is fenced, takeover refuses (ECORRUPT), no record is lost`, async () => {
      env = openEmbedded(64 * 1024);
      const region = env.region;
      const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
      for (let i = 1; i <= 5; i++) await writer.append(payload(i, PAYLOAD));
      await flipByte(region, EPOCH_OFFSET + (bit >> 3), 1 << (bit & 7));
      // No writer's fence matches a damaged word: the writer (a zombie, to the PMU) cannot write.
      await expect(writer.append(payload(6, PAYLOAD))).rejects.toMatchObject({ code: 'EFENCED' });
      const ring = await region.read(HEADER_BYTES, 5 * RECORD);
      for (const [, attempt] of ways.slice(0, 3)) await expect(attempt(region)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringContaining('epoch') });
      await expect((await CheckpointReader.open(region).catch((e) => e)) as unknown).toMatchObject({ code: 'ECORRUPT' });
      expect((await region.read(HEADER_BYTES, 5 * RECORD)).equals(ring)).toBe(true);
    });
  }
});

describe('overwrite mode', () => {
  async function threeCheckpoints(durability: 'flushed' | 'mapped'): Promise<LocalRegion> {
    env = openEmbedded(64 * 1024);
    const writer = (await openPrimary(env.region, { mode: 'overwrite', heartbeatMs: 0, durability })).writer;
    for (let i = 1; i <= 3; i++) expect(await writer.checkpoint(payload(i, PAYLOAD))).toBe(i);
    await writer.close();
    return env.region;
  }
  const slotOf = (region: LocalRegion, sequence: number) => HEADER_BYTES + (sequence % 2) * Math.floor((region.size - HEADER_BYTES) / 2 / 8) * 8;

  for (const [way, attempt] of [
    ...ways.slice(0, 3),
    ['a reader', async (region: LocalRegion) => (await CheckpointReader.open(region)).latest()] as const,
  ]) {
    test(`a damaged byte in the newest acknowledged checkpoint: ${way} refuses (ECORRUPT) instead of rolling back to the older slot`, async () => {
      const region = await threeCheckpoints('flushed');
      await flipByte(region, slotOf(region, 3) + RECORD_HEADER_BYTES + 9);
      const slots = await region.read(HEADER_BYTES, region.size - HEADER_BYTES);
      await expect(attempt(region)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/checkpoint 3 was acknowledged .*damaged.*pmu inspect --verify/) });
      // The damaged slot was not written over: it is still there for inspection or repair.
      expect((await region.read(HEADER_BYTES, region.size - HEADER_BYTES)).equals(slots)).toBe(true);
    });
  }

  test("a torn newest checkpoint that was never flushed ('mapped') still falls back to the older slot", async () => {
    const region = await threeCheckpoints('mapped');
    await flipByte(region, slotOf(region, 3) + RECORD_HEADER_BYTES + 9);
    const { checkpoint, writer } = await openPrimary(region, { heartbeatMs: 0 });
    expect(checkpoint?.sequence).toBe(2);
    expect(await writer.checkpoint(payload(9, PAYLOAD))).toBe(3);
    await writer.close();
  });

  test('a flipped bit in the checkpoint mark word is refused', async () => {
    const region = await threeCheckpoints('flushed');
    await flipByte(region, 72, 0x02);
    await expect(openPrimary(region, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringContaining('checkpoint mark') });
  });
});

test('a log of format version 1 (no users, no migration) is refused with a message that says so', async () => {
  const region = await twentyAcked();
  const fields = await region.read(0, 72);
  fields.writeUInt32LE(1, 8);
  // Re-seal the header CRC (over bytes 0..16 and 48..68, seeded with the log id) so only the version differs.
  const logId = fields.readUInt32LE(64);
  fields.writeUInt32LE(crc32c(fields.subarray(48, 68), crc32c(fields.subarray(0, 16), logId)), 68);
  await region.write(0, fields.subarray(0, 16));
  await region.write(48, fields.subarray(48, 72));
  for (const [, attempt] of ways) {
    await expect(attempt(region)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/format version 1; this pmu reads only version 2 .*no users: there is no migration; delete and recreate the region/) });
  }
});

test('a clean end (blank, or a whole record of an earlier lap) is not searched past: a takeover reads the live records only', async () => {
  env = openEmbedded(HEADER_BYTES + 256 * 1024);
  const region = env.region;
  const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
  for (let i = 1; i <= 20; i++) await writer.append(payload(i, PAYLOAD));
  await writer.close();
  let bytesRead = 0;
  const counting = new Proxy(region, {
    get(target, property) {
      if (property === 'read') return (offset: number, length: number) => ((bytesRead += length), target.read(offset, length));
      const value = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const { records, writer: next } = await openPrimary(counting, { heartbeatMs: 0 });
  expect(records).toHaveLength(20);
  await next.close();
  // The scan reads in chunks of up to 256 KiB from the cursor; a search past the end would read the rest of the ring again.
  expect(bytesRead).toBeLessThan(256 * 1024 + 4096);
  // A torn stop is searched past (one more read of up to a ring).
  await flipByte(region, at(20) + RECORD_HEADER_BYTES);
  bytesRead = 0;
  await (await openPrimary(counting, { heartbeatMs: 0 })).writer.close();
  expect(bytesRead).toBeGreaterThan(256 * 1024);
});
