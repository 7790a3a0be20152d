/** Takeover and fencing over an embedded region: zombies get EFENCED, racing takeovers ETAKEN, leases expire. */
import { CheckpointReader, EPOCH_OFFSET, LogRecord, Region, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';
import { Embedded, openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

let env: Embedded;
afterEach(async () => {
  if (!env.unit.isClosed) await env.unit.close();
});

describe('takeover', () => {
  test('hands back every unread record and a writer positioned after them, at a new epoch', async () => {
    env = openEmbedded(64 * 1024);
    const primary = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    const backup = await CheckpointReader.open(env.region);
    for (let i = 0; i < 10; i++) await primary.append(payload(i));
    const seenBefore = (await backup.readBatch({ maxRecords: 4 })).records;
    expect(seenBefore.map((r) => r.sequence)).toEqual([1, 2, 3, 4]);
    const { writer, records, epoch, stop } = await openPrimary(backup, { heartbeatMs: 0 });
    expect(records.map((r) => r.sequence)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(stop?.reason).toBe('end');
    expect(epoch).toBe(primary.epoch + 1n);
    expect(writer.nextSequence).toBe(11);
    expect(await writer.append(payload(10))).toBe(11);
    const all = (await (await CheckpointReader.open(env.region)).readBatch()).records;
    expect(all.map((r) => r.sequence)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(all[10].epoch).toBe(Number(epoch));
  });

  test('a zombie primary is fenced by the PMU itself: EFENCED, and nothing it wrote after the takeover is read', async () => {
    env = openEmbedded(64 * 1024);
    const zombie = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    await zombie.append(payload(1));
    const { writer } = await openPrimary(await CheckpointReader.open(env.region), { heartbeatMs: 0 });
    await expect(zombie.append(payload(2))).rejects.toMatchObject({ code: 'EFENCED' });
    expect(zombie.fenced).toBe(true);
    // Once fenced, always fenced: later calls fail the same way without touching the region.
    await expect(zombie.snapshot(payload(3))).rejects.toMatchObject({ code: 'EFENCED' });
    expect(await writer.append(payload(4))).toBe(2);
    const records = (await (await CheckpointReader.open(env.region)).readBatch()).records;
    expect(records.map((r) => r.payload.toString('latin1'))).toEqual([payload(1), payload(4)].map((p) => p.toString('latin1')));
  });

  test('a zombie in overwrite mode is fenced too, and its heartbeat stops', async () => {
    env = openEmbedded(64 * 1024);
    const zombie = (await openPrimary(env.region, { mode: 'overwrite', heartbeatMs: 2 })).writer;
    await zombie.checkpoint(payload(1));
    const { writer, checkpoint } = await openPrimary(await CheckpointReader.open(env.region), { heartbeatMs: 0 });
    expect(checkpoint?.state.equals(payload(1))).toBe(true);
    await waitFor('the zombie to learn it was fenced from its heartbeat', () => zombie.fenced);
    await expect(zombie.checkpoint(payload(2))).rejects.toMatchObject({ code: 'EFENCED' });
    await writer.checkpoint(payload(3));
    expect((await (await CheckpointReader.open(env.region)).latest())?.state.equals(payload(3))).toBe(true);
    await zombie.close();
  });

  test('two racing takeovers: exactly one wins, the other gets ETAKEN', async () => {
    env = openEmbedded(64 * 1024);
    const primary = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    await primary.append(payload(1));
    const first = await CheckpointReader.open(env.region);
    const second = await CheckpointReader.open(env.region);
    const outcomes = await Promise.allSettled([openPrimary(first, { heartbeatMs: 0 }), openPrimary(second, { heartbeatMs: 0 })]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'ETAKEN' });
    // A takeover based on an epoch that has moved on fails the same way, even when it comes late.
    await expect(openPrimary(second, { heartbeatMs: 0 })).rejects.toMatchObject({ code: 'ETAKEN' });
  });

  test('reopening the writer (a restarted primary) fences the previous one and continues the sequence', async () => {
    env = openEmbedded(64 * 1024);
    const before = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    await before.append(payload(1));
    await before.append(payload(2));
    const after = (await openPrimary(env.region, { heartbeatMs: 0 })).writer;
    expect(after.nextSequence).toBe(3);
    await expect(before.append(payload(3))).rejects.toMatchObject({ code: 'EFENCED' });
  });

  test('the lease expires when the heartbeat stops, and is held while it beats', async () => {
    env = openEmbedded(64 * 1024);
    const primary = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 5 })).writer;
    const backup = await CheckpointReader.open(env.region);
    const controller = new AbortController();
    let failed = false;
    const watching = backup.watchPrimary({ leaseMs: 400, pollMs: 5, signal: controller.signal }).then(
      (failure) => ((failed = true), failure),
      (error) => error,
    );
    // Longer than a lease (200 beats of 5 ms), the heartbeat keeps the primary alive. The lease is
    // generous because this process also runs the primary: an event-loop stall delays both.
    const beatsAt = (await env.region.read(24, 8)).readBigUInt64LE();
    await waitFor('200 heartbeats', async () => (await env.region.read(24, 8)).readBigUInt64LE() > beatsAt + 200n, 10_000);
    expect(failed).toBe(false);
    await primary.close(); // a hung primary: no more beats
    const failure = await watching;
    expect(failure).toMatchObject({ reason: 'lease' });
    controller.abort();
  });

  test('watchWriters, when the region offers it, reports a dropped writer at once; a dropped connection that made no fenced write is not one', async () => {
    env = openEmbedded(64 * 1024);
    (await openPrimary(env.region, { mode: 'append', heartbeatMs: 1 })).writer;
    let drop: ((event: unknown) => void) | undefined;
    let unsubscribed = false;
    // A region that, like a RemoteRegion, tells subscribers when a writer's connection drops.
    const watched = Object.assign(Object.create(env.region) as Region, {
      watchWriters: async (listener: (event: unknown) => void) => {
        drop = listener;
        return async () => {
          unsubscribed = true;
        };
      },
    });
    const backup = await CheckpointReader.open(watched);
    const watching = backup.watchPrimary({ leaseMs: 60_000 });
    await waitFor('the subscription', () => drop !== undefined);
    // A connection that never made a fenced write (a resync agent, a tool) is not the primary leaving.
    drop!({ reason: 'disconnected', user: 'resync', fencedWriter: false });
    drop!({ reason: 'disconnected', user: 'primary', fencedWriter: true });
    await expect(watching).resolves.toMatchObject({ reason: 'disconnected', event: { user: 'primary', fencedWriter: true } });
    await waitFor('unsubscribe', () => unsubscribed);
  });

  test('takeover recovers a log that ends in a torn record, and the new writer overwrites it', async () => {
    env = openEmbedded(64 * 1024);
    const primary = (await openPrimary(env.region, { mode: 'append', heartbeatMs: 0 })).writer;
    for (let i = 0; i < 3; i++) await primary.append(payload(i, 64));
    const last = await primary.append(payload(3, 64));
    // Tear the last record as a crash mid-write would.
    const records = (await (await CheckpointReader.open(env.region)).readBatch()).records;
    const torn = records.find((r) => r.sequence === last) as LogRecord;
    await env.region.write(4096 + torn.position + 40, Buffer.alloc(16, 0xaa));
    const { writer, records: recovered, stop } = await openPrimary(await CheckpointReader.open(env.region), { heartbeatMs: 0 });
    expect(recovered.map((r) => r.sequence)).toEqual([1, 2, 3]);
    expect(stop?.reason).toBe('torn');
    expect(await writer.append(payload(9, 64))).toBe(4);
    const after = (await (await CheckpointReader.open(env.region)).readBatch()).records;
    expect(after.map((r) => r.sequence)).toEqual([1, 2, 3, 4]);
    expect(after[3].payload.equals(payload(9, 64))).toBe(true);
    // The epoch word holds the epoch in its low 56 bits and a check of it in its top byte.
    expect((await env.region.read(EPOCH_OFFSET, 8)).readBigUInt64LE() & ((1n << 56n) - 1n)).toBe(writer.epoch);
  });
});
