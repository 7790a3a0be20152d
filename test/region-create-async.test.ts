/**
 * Creating a region in space a deleted region used writes zeros over it first (1–2 s per GiB).
 * createRegionAsync, and the server's CREATE, do that on the libuv pool: the event loop keeps
 * serving, the region appears in the table only when the zero-fill is done, nothing else can
 * take its extent or its name meanwhile, and close() waits for it. The crash case (the extent
 * stays free) is in crash-states.test.ts; the injected I/O errors in fault-inject.test.ts.
 */
import * as path from 'node:path';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';

afterAll(removeTempDirs);

const OLD_BYTES = 192 << 20;

/** A unit whose first OLD_BYTES of data were a region, written with a pattern, then deleted. */
async function unitWithFreedSpace(): Promise<{ unit: PersistentMemoryUnit; file: string }> {
  const file = path.join(tempDir('pmu-create-async-'), 'unit.pmu');
  const unit = PersistentMemoryUnit.open(file, { size: OLD_BYTES + (32 << 20), maxRegions: 16 });
  const old = unit.createRegion('old', OLD_BYTES);
  const chunk = Buffer.alloc(1 << 20, 0xab);
  for (let at = 0; at < OLD_BYTES; at += chunk.length) old.writeSync(at, chunk, { durability: 'mapped' });
  await old.flush();
  unit.deleteRegion('old');
  return { unit, file };
}

describe('createRegionAsync', () => {
  test('in reused space: the event loop keeps turning while the zeros go in, the region appears only when done, and reads as zeros', async () => {
    const { unit } = await unitWithFreedSpace();
    try {
      let turns = 0;
      let settled = false;
      const spin = () => {
        if (settled) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const pending = unit.createRegionAsync('fresh', OLD_BYTES, { owner: 'alice' });
      // Not in the table yet, for anybody.
      expect(unit.listRegions().map((r) => r.name)).toEqual([]);
      expect(() => unit.openRegion('fresh')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      const region = await pending.finally(() => (settled = true));
      // 192 MiB of zeros take far longer than a few turns of an idle loop.
      expect(turns).toBeGreaterThan(20);
      expect(region.size).toBe(OLD_BYTES);
      expect(unit.listRegions().map((r) => ({ name: r.name, owner: r.owner }))).toEqual([{ name: 'fresh', owner: 'alice' }]);
      for (const at of [0, OLD_BYTES / 2, OLD_BYTES - 4096]) expect(region.readSync(at, 4096).equals(Buffer.alloc(4096))).toBe(true);
    } finally {
      await unit.close();
    }
  });

  test('meanwhile its name is taken (EEXIST, saying it is being created) and its extent too: another create lands elsewhere or is ENOSPC', async () => {
    const { unit } = await unitWithFreedSpace();
    try {
      const pending = unit.createRegionAsync('fresh', OLD_BYTES);
      expect(() => unit.createRegion('fresh', 4096)).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringContaining('being created') }));
      await expect(unit.createRegionAsync('fresh', 4096)).rejects.toMatchObject({ code: 'EEXIST' });
      // The only free extent this large is the one being zeroed.
      expect(() => unit.createRegion('second', OLD_BYTES)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
      // A small one fits after it, and is written while the big one is still being zeroed.
      const small = unit.createRegion('small', 8192);
      small.writeSync(0, Buffer.from('mine'));
      const fresh = await pending;
      expect(fresh.readSync(0, 4096).equals(Buffer.alloc(4096))).toBe(true);
      expect(small.readSync(0, 4).toString()).toBe('mine');
      expect(unit.listRegions().map((r) => r.name).sort()).toEqual(['fresh', 'small']);
    } finally {
      await unit.close();
    }
  });

  test('bad arguments reject at once; closeSync during a create is EBUSY, close() waits for it; the region is there after reopening', async () => {
    const { unit, file } = await unitWithFreedSpace();
    await expect(unit.createRegionAsync('', 4096)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(unit.createRegionAsync('x', 0)).rejects.toMatchObject({ code: 'EINVAL' });
    const pending = unit.createRegionAsync('fresh', OLD_BYTES);
    expect(() => unit.closeSync()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await unit.close();
    await pending;
    const again = PersistentMemoryUnit.open(file);
    try {
      expect(again.listRegions().map((r) => r.name)).toEqual(['fresh']);
    } finally {
      await again.close();
    }
  });
});

describe("the server's CREATE", () => {
  test('another client keeps getting acks while a CREATE zeroes reused space, and the new region reads as zeros', async () => {
    const h = await startServer({ unitBytes: OLD_BYTES + (32 << 20) });
    try {
      const admin = await h.connect('admin');
      await admin.createRegion('busy', 1 << 16, { owner: 'primary' });
      const old = h.unit.createRegion('old', OLD_BYTES);
      const chunk = Buffer.alloc(1 << 20, 0xcd);
      for (let at = 0; at < OLD_BYTES; at += chunk.length) old.writeSync(at, chunk, { durability: 'mapped' });
      h.unit.deleteRegion('old');
      const busy = await (await h.connect('primary')).openRegion('busy');
      let acks = 0;
      let creating = true;
      const writer = (async () => {
        while (creating) {
          await busy.write(0, Buffer.alloc(4096, 1), { durability: 'mapped' });
          acks++;
        }
      })();
      const before = acks;
      const created = await admin.createRegion('fresh', OLD_BYTES);
      const during = acks - before;
      creating = false;
      await writer;
      expect(created.size).toBe(OLD_BYTES);
      expect(during).toBeGreaterThan(10);
      const fresh = await admin.openRegion('fresh');
      expect((await fresh.read(OLD_BYTES - 4096, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    } finally {
      await h.close();
    }
  });
});
