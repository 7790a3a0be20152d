/**
 * Before a new writer acknowledges anything, everything it recovered and builds on is flushed.
 * A recording Region (a test double over a LocalRegion) tracks which bytes were written
 * 'mapped' and not flushed since; at each acknowledged write the test asserts that no byte of
 * an earlier record (nor the header) is still unflushed, i.e. that a power loss right after
 * the ack could not leave a gap before an acknowledged record.
 */
import { CheckpointReader, CheckpointWriter, Durability, HEADER_BYTES, LocalRegion, openPrimary, recordBytes, Region, RegionContext, WriteOptions } from '../lib';
import { encodeWord } from '../lib/checkpoint/format/checked-word';
import { CURSOR_POSITION_OFFSET, CURSOR_SEQUENCE_OFFSET } from '../lib/checkpoint/format/layout';
import { removeTempDirs } from './helpers/temp';
import { Embedded, openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

let env: Embedded;
afterEach(async () => {
  if (!env.unit.isClosed) await env.unit.close();
});

/** A Region that remembers, byte by byte, what was written 'mapped' and not flushed since. */
class RecordingRegion implements Region {
  readonly name: string;
  readonly size: number;
  readonly context: RegionContext;
  readonly capabilities: LocalRegion['capabilities'];
  private readonly unflushed: Uint8Array;

  constructor(private readonly inner: LocalRegion) {
    this.capabilities = inner.capabilities;
    this.name = inner.name;
    this.size = inner.size;
    this.context = inner.context;
    this.unflushed = new Uint8Array(inner.size);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.inner.write(offset, data, options);
    this.mark(offset, data.length, options?.durability ?? 'flushed');
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }

  async flush(offset = 0, length = this.size - offset): Promise<void> {
    await this.inner.flush(offset, length);
    this.mark(offset, length, 'flushed');
  }

  async compareAndSwap(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): Promise<bigint> {
    const previous = await this.inner.compareAndSwap(offset, expected, value, options);
    if (previous === expected) this.mark(offset, 8, options?.durability ?? 'flushed');
    return previous;
  }

  /** Offsets in [offset, offset + length) still unflushed. */
  unflushedIn(offset: number, length: number): number[] {
    const found: number[] = [];
    for (let i = offset; i < offset + length; i++) if (this.unflushed[i]) found.push(i);
    return found;
  }

  private mark(offset: number, length: number, durability: Durability): void {
    this.unflushed.fill(durability === 'mapped' ? 1 : 0, offset, offset + length);
  }
}

const PAYLOAD = 100;
const RECORD = recordBytes(PAYLOAD);
/** The header words recovery trusts: epoch 16-24, cursor 32-48, and the static fields 48-72 (the heartbeat, 24-32, is not trusted). */
const TRUSTED_HEADER: Array<[number, number]> = [
  [0, 24],
  [32, 40],
];

function expectFlushedBefore(region: RecordingRegion, records: number): void {
  for (const [offset, length] of TRUSTED_HEADER) expect(region.unflushedIn(offset, length)).toEqual([]);
  // Records 1..records, appended from position 0 without wrapping.
  expect(region.unflushedIn(HEADER_BYTES, records * RECORD)).toEqual([]);
}

async function mappedLog(count: number): Promise<RecordingRegion> {
  env = openEmbedded(64 * 1024);
  const region = new RecordingRegion(env.region);
  const zombie = (await openPrimary(region, { mode: 'append', durability: 'mapped', heartbeatMs: 0 })).writer;
  for (let i = 1; i <= count; i++) await zombie.append(payload(i, PAYLOAD));
  await zombie.close();
  // The double works: the mapped writer left its records unflushed.
  expect(region.unflushedIn(HEADER_BYTES, count * RECORD).length).toBe(count * RECORD);
  return region;
}

const starts: Array<[string, (region: Region) => Promise<CheckpointWriter>]> = [
  ['a backup taking over', async (region) => (await openPrimary(await CheckpointReader.open(region), { heartbeatMs: 0 })).writer],
  ['openPrimary over the existing log', async (region) => (await openPrimary(region, { heartbeatMs: 0 })).writer],
  ['CheckpointWriter.open over the existing log', (region) => openPrimary(region, { heartbeatMs: 0 }).then((t) => t.writer)],
];

describe("after a writer with 'mapped' durability", () => {
  for (const [how, start] of starts) {
    test(`${how}: no acknowledged append follows an unflushed record or header word`, async () => {
      const region = await mappedLog(10);
      const writer = await start(region);
      for (let sequence = 11; sequence <= 15; sequence++) {
        expect(await writer.append(payload(sequence, PAYLOAD))).toBe(sequence);
        expectFlushedBefore(region, sequence);
      }
      await writer.close();
    });
  }

  test("a new 'mapped' writer after a takeover still builds only on flushed records: the recovered part is flushed before its first ack", async () => {
    const region = await mappedLog(10);
    const { writer } = await openPrimary(await CheckpointReader.open(region), { heartbeatMs: 0, durability: 'mapped' });
    await writer.append(payload(11, PAYLOAD));
    expect(region.unflushedIn(HEADER_BYTES, 10 * RECORD)).toEqual([]);
    await writer.close();
  });

  test('overwrite mode: the recovered checkpoint and the header are flushed before the first new checkpoint is acknowledged', async () => {
    env = openEmbedded(64 * 1024);
    const region = new RecordingRegion(env.region);
    const zombie = (await openPrimary(region, { mode: 'overwrite', durability: 'mapped', heartbeatMs: 0 })).writer;
    await zombie.checkpoint(payload(1, PAYLOAD));
    await zombie.checkpoint(payload(2, PAYLOAD));
    await zombie.close();
    const { writer, checkpoint } = await openPrimary(region, { heartbeatMs: 0 });
    expect(checkpoint?.sequence).toBe(2);
    expect(await writer.checkpoint(payload(3, PAYLOAD))).toBe(3);
    for (const [offset, length] of TRUSTED_HEADER) expect(region.unflushedIn(offset, length)).toEqual([]);
    // Checkpoint 2 (slot 0) is what the state builds on; checkpoint 3 went to slot 1.
    expect(region.unflushedIn(HEADER_BYTES, recordBytes(PAYLOAD))).toEqual([]);
    await writer.close();
  });
});

test('a writer that reuses space a reader freed first makes the moved cursor durable (else an OS crash could leave the old cursor over a record of the next lap)', async () => {
  env = openEmbedded(HEADER_BYTES + 4096);
  const region = new RecordingRegion(env.region);
  const writer = (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer;
  const fill = 512 - (recordBytes(0));
  for (let i = 1; i <= 8; i++) await writer.append(payload(i, fill));
  const reader = await CheckpointReader.open(region);
  const { records } = await reader.readBatch();
  expect(records).toHaveLength(8);
  // A clear caught between its CAS and its flush: the cursor words are in the mapping only.
  const word = (name: 'cursor position' | 'cursor sequence', value: number) => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(encodeWord(name, value));
    return bytes;
  };
  await region.write(CURSOR_SEQUENCE_OFFSET, word('cursor sequence', 3), { durability: 'mapped' });
  await region.compareAndSwap(CURSOR_POSITION_OFFSET, encodeWord('cursor position', 0), encodeWord('cursor position', records[2].position), { durability: 'mapped' });
  expect(region.unflushedIn(CURSOR_POSITION_OFFSET, 16)).toHaveLength(16);
  // The next append needs the space of record 1: it may only be acknowledged once the cursor that freed it is durable.
  expect(await writer.append(payload(9, fill))).toBe(9);
  expect(region.unflushedIn(CURSOR_POSITION_OFFSET, 16)).toEqual([]);
  await writer.close();
});
