/**
 * PmuSaver beyond the official suite (which runs under Vitest, test/langgraph/): recovery from
 * the log, compaction over many laps of the ring, what a step costs in the log, bad input that
 * must leave the log untouched, final failure once fenced, and the hot standby's takeover.
 */
import { emptyCheckpoint, uuid6 } from '@langchain/langgraph-checkpoint';
import type { Checkpoint, CheckpointMetadata, SerializerProtocol } from '@langchain/langgraph-checkpoint';
import { CheckpointReader, LocalRegion, PersistentMemoryUnit, openPrimary } from '../lib';
import { PmuSaver } from '../lib/langgraph';
import { removeTempDirs, tempFile } from './helpers/temp';

const meta = (step: number): CheckpointMetadata => ({ source: 'loop', step, parents: {} });
let unit: PersistentMemoryUnit | undefined;
let file: string;
let regionCount = 0;

beforeEach(() => {
  file = tempFile();
  unit = PersistentMemoryUnit.open(file, { size: 64 << 20 });
});

afterEach(async () => {
  await unit?.close();
  unit = undefined;
});

afterAll(() => removeTempDirs());

function region(size = 4 << 20): LocalRegion {
  return (unit as PersistentMemoryUnit).createRegion(`lg-${++regionCount}`, size);
}

/** A step like LangGraph's: a checkpoint whose channel `changed` got a new version, `big` carried over. */
function step(previous: Checkpoint | undefined, changed: Record<string, unknown>): { checkpoint: Checkpoint; newVersions: Record<string, number> } {
  const checkpoint: Checkpoint = previous ? { ...emptyCheckpoint(), id: uuid6(-1), channel_values: { ...previous.channel_values }, channel_versions: { ...previous.channel_versions } } : emptyCheckpoint();
  const newVersions: Record<string, number> = {};
  for (const [channel, value] of Object.entries(changed)) {
    checkpoint.channel_values[channel] = value;
    checkpoint.channel_versions[channel] = newVersions[channel] = ((checkpoint.channel_versions[channel] as number) ?? 0) + 1;
  }
  return { checkpoint, newVersions };
}

/** Runs `steps` steps of one thread; returns the last config and checkpoint. */
async function runThread(saver: PmuSaver, thread: string, steps: number, payload = 'x'.repeat(1024)) {
  let config = { configurable: { thread_id: thread, checkpoint_ns: '' } } as Record<string, any>;
  let previous: Checkpoint | undefined;
  for (let i = 0; i < steps; i++) {
    const { checkpoint, newVersions } = step(previous, { counter: i, [`scratch`]: `${payload}${i}` });
    config = await saver.put(config, checkpoint, meta(i), newVersions);
    await saver.putWrites(config, [['counter', i + 1]], `task-${i}`, `~__pregel_pull, step${i}`);
    previous = checkpoint;
  }
  return { config, previous: previous as Checkpoint };
}

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

test('reopening the region recovers every checkpoint, blob and pending write', async () => {
  const r = region();
  const saver = await PmuSaver.open(r);
  await runThread(saver, 'a', 5);
  await runThread(saver, 'b', 3);
  const before = await all(saver.list({ configurable: {} }));
  expect(before).toHaveLength(8);
  await saver.close();
  await (unit as PersistentMemoryUnit).close();

  unit = PersistentMemoryUnit.open(file);
  const reopened = await PmuSaver.open(unit.openRegion(r.name));
  const after = await all(reopened.list({ configurable: {} }));
  expect(after).toEqual(before);
  const latest = await reopened.getTuple({ configurable: { thread_id: 'a' } });
  expect(latest?.checkpoint.channel_values).toEqual({ counter: 4, scratch: `${'x'.repeat(1024)}4` });
  expect(latest?.pendingWrites).toEqual([['task-4', 'counter', 5]]);
  await reopened.close();
});

test('a step logs only the channels in newVersions, not the whole state', async () => {
  const r = region();
  const saver = await PmuSaver.open(r);
  const big = 'b'.repeat(16 << 10);
  let config = { configurable: { thread_id: 't' } } as Record<string, any>;
  const first = step(undefined, { big, counter: 0 });
  config = await saver.put(config, first.checkpoint, meta(0), first.newVersions);
  const second = step(first.checkpoint, { counter: 1 });
  config = await saver.put(config, second.checkpoint, meta(1), second.newVersions);
  const observer = await CheckpointReader.open(r);
  const { records } = await observer.readBatch();
  expect(records).toHaveLength(2);
  expect(records[0].payload.length).toBeGreaterThan(16 << 10);
  expect(records[1].payload.length).toBeLessThan(1024);
  // ...and the carried-over channel is still there when the step is read back.
  const tuple = await saver.getTuple(config);
  expect(tuple?.checkpoint.channel_values).toEqual({ big, counter: 1 });
  await saver.close();
});

test('compaction: many laps of a small ring, deleted threads stay deleted, reopen gives the same state', async () => {
  const r = region(512 << 10);
  const saver = await PmuSaver.open(r, { durability: 'mapped' });
  // ~45 KiB per thread, 40 threads: 1.8 MiB through a 508 KiB ring; every finished thread but the last two is deleted.
  for (let t = 0; t < 40; t++) {
    await runThread(saver, `thread-${t}`, 10, 'y'.repeat(4096));
    if (t >= 2) await saver.deleteThread(`thread-${t - 2}`);
  }
  const live = await all(saver.list({ configurable: {} }));
  expect(new Set(live.map((tuple) => tuple.config.configurable?.thread_id))).toEqual(new Set(['thread-38', 'thread-39']));
  await saver.close();

  const reopened = await PmuSaver.open(r);
  expect(await all(reopened.list({ configurable: {} }))).toEqual(live);
  expect(await reopened.getTuple({ configurable: { thread_id: 'thread-0' } })).toBeUndefined();
  // The log starts at a snapshot: the cursor was moved by compaction.
  const observer = await CheckpointReader.open(r);
  expect((await observer.readBatch({ maxRecords: 1 })).records[0].type).toBe('snapshot');
  await reopened.close();
});

test('a live state that outgrows the region: puts fail with EFULL, reads and deletes go on, every acknowledged put survives', async () => {
  const r = region(256 << 10);
  const saver = await PmuSaver.open(r, { durability: 'mapped', fullWaitMs: 200 });
  const acknowledged: string[] = [];
  let failure: any;
  let config = { configurable: { thread_id: 'grows' } } as Record<string, any>;
  let previous: Checkpoint | undefined;
  for (let i = 0; i < 200 && !failure; i++) {
    const { checkpoint, newVersions } = step(previous, { blob: `${i}`.padEnd(8192, 'z') });
    try {
      config = await saver.put(config, checkpoint, meta(i), newVersions);
      acknowledged.push(checkpoint.id);
      previous = checkpoint;
    } catch (error) {
      failure = error;
    }
  }
  expect(failure?.code).toBe('EFULL');
  expect(failure.message).toMatch(/deleteThread/);
  expect(acknowledged.length).toBeGreaterThan(5);
  // Reads go on; further writes that add state are refused.
  expect((await saver.getTuple(config))?.checkpoint.id).toBe(acknowledged[acknowledged.length - 1]);
  await expect(saver.putWrites(config, [['blob', 'more']], 'task')).rejects.toMatchObject({ code: 'EFULL' });
  await saver.close();

  // Everything acknowledged survives a reopen; deleting the thread makes room again.
  const reopened = await PmuSaver.open(r, { fullWaitMs: 200 });
  const ids = (await all(reopened.list({ configurable: { thread_id: 'grows' } }))).map((tuple) => tuple.checkpoint.id);
  expect(ids).toEqual([...acknowledged].reverse());
  await reopened.deleteThread('grows');
  await runThread(reopened, 'fresh', 5, 'f'.repeat(8192));
  expect(await all(reopened.list({ configurable: { thread_id: 'grows' } }))).toEqual([]);
  expect(await all(reopened.list({ configurable: { thread_id: 'fresh' } }))).toHaveLength(5);
  await reopened.close();
});

describe('bad input never reaches the log', () => {
  async function recordsIn(r: LocalRegion): Promise<number> {
    return (await (await CheckpointReader.open(r)).readBatch()).records.length;
  }

  test('missing thread_id, missing checkpoint_id, ids that cannot round-trip', async () => {
    const r = region();
    const saver = await PmuSaver.open(r);
    const checkpoint = emptyCheckpoint();
    await expect(saver.put({}, checkpoint, meta(0), {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(saver.put({ configurable: { checkpoint_ns: '' } }, checkpoint, meta(0), {})).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/thread_id/) });
    await expect(saver.put({ configurable: { thread_id: 'bad\ud800' } }, checkpoint, meta(0), {})).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/surrogate/) });
    await expect(saver.put({ configurable: { thread_id: { id: 1 } } }, checkpoint, meta(0), {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(saver.put({ configurable: { thread_id: 'x'.repeat(5000) } }, checkpoint, meta(0), {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(saver.putWrites({ configurable: { thread_id: 't' } }, [['c', 1]], 'task')).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/checkpoint_id/) });
    // Ids with separators other savers reserve are fine: everything is length-prefixed.
    const odd = 'a\u0000b:c/d\nthread';
    const config = await saver.put({ configurable: { thread_id: odd, checkpoint_ns: 'ns\u0000x' } }, checkpoint, meta(0), {});
    expect((await saver.getTuple(config))?.config.configurable).toEqual({ thread_id: odd, checkpoint_ns: 'ns\u0000x', checkpoint_id: checkpoint.id });
    expect(await recordsIn(r)).toBe(1);
    await saver.close();
  });

  test('a value the serializer refuses fails that call only', async () => {
    const r = region();
    const refusing: SerializerProtocol & { refuse: boolean } = {
      refuse: false,
      async dumpsTyped(data: unknown) {
        if (refusing.refuse) throw new TypeError('cannot serialize this value');
        return ['json', new TextEncoder().encode(JSON.stringify(data))];
      },
      async loadsTyped(_type: string, data: Uint8Array | string) {
        return JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
      },
    };
    const saver = await PmuSaver.open(r, { serde: refusing });
    const config = await saver.put({ configurable: { thread_id: 't' } }, emptyCheckpoint(), meta(0), {});
    refusing.refuse = true;
    await expect(saver.putWrites(config, [['c', 1]], 'task')).rejects.toThrow('cannot serialize');
    refusing.refuse = false;
    await saver.putWrites(config, [['c', 2]], 'task');
    expect((await saver.getTuple(config))?.pendingWrites).toEqual([['task', 'c', 2]]);
    expect(await recordsIn(r)).toBe(2);
    await saver.close();
  });

  test('a record that is not a saver record is refused with ECORRUPT on open', async () => {
    const r = region();
    const writer = (await openPrimary(r, { mode: 'append' })).writer;
    await writer.append(Buffer.from([9, 9, 9, 9]));
    await writer.close();
    await expect(PmuSaver.open(r)).rejects.toMatchObject({ code: 'ECORRUPT', message: expect.stringMatching(/pmu\/langgraph/) });
  });
});

test('once another saver takes the region over, the old one fails with EFENCED for good', async () => {
  const r = region();
  const old = await PmuSaver.open(r);
  const { config } = await runThread(old, 't', 2);
  const successor = await PmuSaver.open(r);
  const next = step(undefined, { counter: 9 });
  await expect(old.put(config, next.checkpoint, meta(9), next.newVersions)).rejects.toMatchObject({ code: 'EFENCED' });
  expect(old.fenced).toBe(true);
  await expect(old.getTuple(config)).rejects.toMatchObject({ code: 'EFENCED' });
  // The successor has everything acknowledged before, and nothing of the refused put.
  expect((await all(successor.list({ configurable: { thread_id: 't' } }))).map((tuple) => tuple.metadata?.step)).toEqual([1, 0]);
  await old.close();
  await successor.close();
});

test('hot standby: follows the log through compactions, takes over when the primary stops, and continues the thread', async () => {
  const r = region(512 << 10);
  const primary = await PmuSaver.open(r, { durability: 'mapped', heartbeatMs: 20 });
  const lost: string[] = [];
  const standing = PmuSaver.standby(r, { leaseMs: 300, intervalMs: 2, durability: 'mapped', onPrimaryLost: (failure) => lost.push(failure.reason) });
  // Enough to compact several times while the standby follows.
  for (let t = 0; t < 12; t++) {
    await runThread(primary, `thread-${t}`, 10, 'w'.repeat(4096));
    if (t >= 2) await primary.deleteThread(`thread-${t - 2}`);
  }
  const acknowledged = await all(primary.list({ configurable: {} }));
  await primary.close(); // the heartbeat stops: the lease runs out
  const successor = await standing;
  expect(lost).toEqual(['lease']);
  expect(await all(successor.list({ configurable: {} }))).toEqual(acknowledged);
  const latest = await successor.getTuple({ configurable: { thread_id: 'thread-11' } });
  const next = step(latest?.checkpoint, { counter: 10 });
  const config = await successor.put(latest!.config, next.checkpoint, meta(10), next.newVersions);
  expect((await successor.getTuple(config))?.parentConfig?.configurable?.checkpoint_id).toBe(latest?.checkpoint.id);
  await successor.close();
});

test('standby aborted by its signal rejects with ECLOSED', async () => {
  const r = region();
  const primary = await PmuSaver.open(r, { heartbeatMs: 20 });
  const stop = new AbortController();
  const standing = PmuSaver.standby(r, { leaseMs: 5000, signal: stop.signal });
  stop.abort();
  await expect(standing).rejects.toMatchObject({ code: 'ECLOSED' });
  await primary.close();
});
