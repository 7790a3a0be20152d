/** Overwrite mode over an embedded region: newest valid slot wins, torn slots are ignored, coalescing. */
import { CheckpointReader, HEADER_BYTES, RECORD_HEADER_BYTES, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { Embedded, openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

let env: Embedded;
afterEach(async () => {
  if (!env.unit.isClosed) await env.unit.close();
});

const SLOT = 8192;
function withSlots(): Embedded {
  env = openEmbedded(HEADER_BYTES + 2 * SLOT);
  return env;
}

describe('overwrite mode', () => {
  test('round trip: latest() returns the newest checkpoint; none before the first', async () => {
    const { region } = withSlots();
    const writer = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    const reader = await CheckpointReader.open(region);
    expect(await reader.latest()).toBeUndefined();
    for (let i = 1; i <= 5; i++) {
      expect(await writer.checkpoint(payload(i, 100 * i))).toBe(i);
      const latest = await reader.latest();
      expect(latest?.sequence).toBe(i);
      expect(latest?.state.equals(payload(i, 100 * i))).toBe(true);
    }
  });

  test('a torn newest slot is ignored: the previous checkpoint is returned', async () => {
    const { region } = withSlots();
    // 'mapped': checkpoint 2 is never known flushed, so a crash may tear it (a flushed one torn is damage: checkpoint-damage.test.ts).
    const writer = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0, durability: 'mapped' })).writer;
    await writer.checkpoint(payload(1, 500)); // slot 1
    await writer.checkpoint(payload(2, 500)); // slot 0
    // Tear checkpoint 2: half its payload never arrived.
    await region.write(HEADER_BYTES + RECORD_HEADER_BYTES + 250, Buffer.alloc(250, 0xee));
    const latest = await (await CheckpointReader.open(region)).latest();
    expect(latest?.sequence).toBe(1);
    expect(latest?.state.equals(payload(1, 500))).toBe(true);
  });

  test('a writer that takes over after a torn slot overwrites the torn one, never the good one', async () => {
    const { region } = withSlots();
    const first = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0, durability: 'mapped' })).writer;
    await first.checkpoint(payload(1));
    await first.checkpoint(payload(2));
    await region.write(HEADER_BYTES + RECORD_HEADER_BYTES, Buffer.alloc(8, 0xee)); // tear 2 (slot 0), never flushed
    const { writer, checkpoint } = await openPrimary(await CheckpointReader.open(region), { heartbeatMs: 0 });
    expect(checkpoint?.sequence).toBe(1);
    expect(await writer.checkpoint(payload(3))).toBe(2);
    const latest = await (await CheckpointReader.open(region)).latest();
    expect(latest?.sequence).toBe(2);
    expect(latest?.state.equals(payload(3))).toBe(true);
  });

  test('concurrent checkpoints are coalesced: the newest state is written and acknowledges the callers it superseded', async () => {
    const { region } = withSlots();
    const writer = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.checkpoint(payload(i))));
    // The first is written alone; the 19 that arrived while it was in flight share one write.
    expect(acks[0]).toBe(1);
    expect(new Set(acks.slice(1))).toEqual(new Set([2]));
    const latest = await (await CheckpointReader.open(region)).latest();
    expect(latest?.state.equals(payload(19))).toBe(true);
  });

  test('a checkpoint larger than a slot fails with ETOOBIG', async () => {
    const { region } = withSlots();
    const writer = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    await expect(writer.checkpoint(Buffer.alloc(SLOT))).rejects.toMatchObject({ code: 'ETOOBIG' });
    expect(await writer.checkpoint(Buffer.alloc(SLOT - RECORD_HEADER_BYTES))).toBe(1);
  });

  test('mode mismatches are EINVAL with a message that names the mode', async () => {
    const { region } = withSlots();
    const writer = (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    await expect(writer.append(payload(1))).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/append-mode/) });
    await expect((await CheckpointReader.open(region)).readBatch()).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(openPrimary(region, { mode: 'append', heartbeatMs: 0 }).then((t) => t.writer)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('a blank region without a mode, or a damaged header, is refused', async () => {
    const { region } = withSlots();
    await expect(openPrimary(region).then((t) => t.writer)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(CheckpointReader.open(region)).rejects.toMatchObject({ code: 'ENOENT' });
    (await openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    await region.write(60, Buffer.from([1, 2, 3])); // inside the CRC-covered capacity field
    await expect(CheckpointReader.open(region)).rejects.toMatchObject({ code: 'ECORRUPT' });
  });
});
