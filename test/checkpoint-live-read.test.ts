/**
 * A backup reading the latest checkpoint while the primary keeps checkpointing: whichever of
 * the backup's reads a whole new checkpoint lands after, latest() returns a checkpoint at
 * least as new as the last one acknowledged before it was called, never a false ECORRUPT.
 * (The mark used to be read after the slots: a checkpoint completed in between looked like
 * a damaged slot.) Embedded, small: well under a second.
 */
import { CheckpointReader, HEADER_BYTES, Region, openPrimary } from '../lib';
import { removeTempDirs } from './helpers/temp';
import { openEmbedded, payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

const SLOT = 8192;

/** `region`, whose n-th read (counting from arm()) waits for `hook` before returning. */
function interposed(region: Region): { view: Region; arm(n: number, hook: () => Promise<unknown>): void } {
  let count = 0;
  let at = 0;
  let run: (() => Promise<unknown>) | undefined;
  const view = new Proxy(region, {
    get(target, property) {
      if (property === 'read') {
        return async (offset: number, length: number) => {
          const bytes = await target.read(offset, length);
          if (++count === at && run) await run();
          return bytes;
        };
      }
      const value = (target as unknown as Record<string | symbol, unknown>)[property];
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    view,
    arm(n, hook) {
      count = 0;
      at = n;
      run = hook;
    },
  };
}

test('a checkpoint completed between any two of the backup reads is never taken for damage', async () => {
  const env = openEmbedded(HEADER_BYTES + 2 * SLOT);
  try {
    const writer = (await openPrimary(env.region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    let acked = 0;
    for (let i = 0; i < 2; i++) acked = await writer.checkpoint(payload(acked + 1, 500));
    const { view, arm } = interposed(env.region);
    const reader = await CheckpointReader.open(view);
    // latest() makes a handful of reads (mark, two slot headers, a slot body): interpose at each.
    for (let n = 1; n <= 6; n++) {
      const before = acked;
      arm(n, async () => {
        acked = await writer.checkpoint(payload(acked + 1, 500));
      });
      const latest = await reader.latest();
      expect(latest).toBeDefined();
      expect(latest!.sequence).toBeGreaterThanOrEqual(before);
      expect(latest!.state.equals(payload(latest!.sequence, 500))).toBe(true);
    }
    expect(acked).toBeGreaterThan(4); // the hooks did run: checkpoints landed mid-read
  } finally {
    await env.unit.close();
  }
});

test('two checkpoints between a slot header read and its body read: the state returned is the sequence returned', async () => {
  // Two checkpoints bring the writer back to the slot whose header was read: the body then holds
  // a newer, whole checkpoint of the same length, valid by its own CRC. latest() used to return
  // the old header's sequence with the new state.
  const env = openEmbedded(HEADER_BYTES + 2 * SLOT);
  try {
    const writer = (await openPrimary(env.region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    let acked = 0;
    for (let i = 0; i < 2; i++) acked = await writer.checkpoint(payload(acked + 1, 500));
    const { view, arm } = interposed(env.region);
    const reader = await CheckpointReader.open(view);
    for (const landing of [2, 3]) {
      for (let n = 1; n <= 6; n++) {
        const before = acked;
        arm(n, async () => {
          for (let i = 0; i < landing; i++) acked = await writer.checkpoint(payload(acked + 1, 500));
        });
        const latest = await reader.latest();
        expect(latest).toBeDefined();
        expect(latest!.sequence).toBeGreaterThanOrEqual(before);
        expect({ n, landing, sequence: latest!.sequence, state: latest!.state.equals(payload(latest!.sequence, 500)) }).toEqual({ n, landing, sequence: latest!.sequence, state: true });
      }
    }
  } finally {
    await env.unit.close();
  }
});

test('a writer that overtakes every pass over the slots: EBUSY after a bounded number of passes, never a mislabelled state', async () => {
  const env = openEmbedded(HEADER_BYTES + 2 * SLOT);
  try {
    const writer = (await openPrimary(env.region, { mode: 'overwrite', heartbeatMs: 0 })).writer;
    let acked = 0;
    for (let i = 0; i < 2; i++) acked = await writer.checkpoint(payload(acked + 1, 500));
    let bodies = 0;
    // Every slot body read (the only reads longer than a header) lands after two checkpoints.
    const view = new Proxy(env.region, {
      get(target, property) {
        if (property === 'read') {
          return async (offset: number, length: number) => {
            if (length > 64) {
              bodies++;
              for (let i = 0; i < 2; i++) acked = await writer.checkpoint(payload(acked + 1, 500));
            }
            return target.read(offset, length);
          };
        }
        const value = (target as unknown as Record<string | symbol, unknown>)[property];
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const reader = await CheckpointReader.open(view as Region);
    bodies = 0; // open read the log header
    await expect(reader.latest()).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/overwrote a slot .* 16 times in a row; retry latest\(\)/) });
    expect(bodies).toBe(16);
  } finally {
    await env.unit.close();
  }
});
