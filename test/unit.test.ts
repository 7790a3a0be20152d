/** The embedded unit and LocalRegion: round trips, bounds, persistence, durability words, CAS, fences. */
import * as fs from 'node:fs';
import { LocalRegion, PersistentMemoryUnit, PmuError, PmuServer, UserDirectory } from '../lib';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(PmuError);
  expect((thrown as PmuError).code).toBe(code);
}

async function expectRejectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ name: 'PmuError', code });
}

function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('PersistentMemoryUnit', () => {
  let file: string;
  let unit: PersistentMemoryUnit;
  let region: LocalRegion;
  const SIZE = 3 * 4096 + 100; // not page-aligned on purpose

  beforeEach(() => {
    file = tempFile();
    unit = PersistentMemoryUnit.open(file, { size: 1 << 20, maxRegions: 16 });
    region = unit.createRegion('orders', SIZE);
  });
  afterEach(async () => {
    if (!unit.isClosed) await unit.close();
  });

  test('creates a preallocated file of the requested size', () => {
    expect(fs.statSync(file).size).toBe(1 << 20);
    const info = unit.info();
    expect(info.size).toBe(1 << 20);
    expect(info.regionCount).toBe(1);
    expect(info.uuid).toMatch(/^[0-9a-f]{32}$/);
    expect(info.recoveryNote).toBe('');
  });

  test('opening a missing file without size is ENOENT', () => {
    expectCode(() => PersistentMemoryUnit.open(file + '.missing'), 'ENOENT');
  });

  test.each([
    ['0 B', 0, 0],
    ['1 B', 0, 1],
    ['1 B at the last byte', SIZE - 1, 1],
    ['page-crossing', 4090, 12],
    ['two page boundaries', 4000, 4200],
    ['whole region', 0, SIZE],
  ])('round trip %s (async, flushed)', async (_name, offset, length) => {
    const data = pattern(length, offset);
    await region.write(offset, data);
    expect((await region.read(offset, length)).equals(data)).toBe(true);
  });

  test.each(['flushed', 'mapped'] as const)('writeSync/readSync round trip with durability %s', (durability) => {
    const data = pattern(4096, 7);
    region.writeSync(100, data, { durability });
    expect(region.readSync(100, 4096).equals(data)).toBe(true);
    const into = Buffer.alloc(10);
    region.readIntoSync(100, into);
    expect(into.equals(data.subarray(0, 10))).toBe(true);
  });

  test('accepts any Uint8Array, not only Buffer', async () => {
    await region.write(0, new Uint8Array([1, 2, 3]));
    expect([...(await region.read(0, 3))]).toEqual([1, 2, 3]);
  });

  test('every bounds edge is refused with EBOUNDS, never clamped', async () => {
    const before = region.readSync(0, SIZE);
    expectCode(() => region.writeSync(SIZE, Buffer.alloc(1)), 'EBOUNDS');
    expectCode(() => region.writeSync(SIZE - 1, Buffer.alloc(2)), 'EBOUNDS');
    expectCode(() => region.writeSync(0, Buffer.alloc(SIZE + 1)), 'EBOUNDS');
    expectCode(() => region.readSync(SIZE, 1), 'EBOUNDS');
    expectCode(() => region.readSync(0, SIZE + 1), 'EBOUNDS');
    expectCode(() => region.readSync(Number.MAX_SAFE_INTEGER, 1), 'EBOUNDS');
    expectCode(() => region.flushSync(SIZE, 1), 'EBOUNDS');
    await expectRejectCode(region.write(SIZE - 1, Buffer.alloc(2)), 'EBOUNDS');
    await expectRejectCode(region.flush(1, SIZE), 'EBOUNDS');
    // zero-length access at the very end is inside
    region.writeSync(SIZE, Buffer.alloc(0));
    expect(region.readSync(SIZE, 0).length).toBe(0);
    // nothing was written by the refused calls
    expect(region.readSync(0, SIZE).equals(before)).toBe(true);
  });

  test.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['beyond 2^53', 2 ** 53],
    ['a string', '0'],
    ['a bigint', 1n],
  ])('a %s offset is EINVAL', (_name, offset) => {
    expectCode(() => region.writeSync(offset as number, Buffer.alloc(1)), 'EINVAL');
    expectCode(() => region.readSync(offset as number, 1), 'EINVAL');
  });

  test('bad data, length and durability are EINVAL with a message naming the argument', () => {
    expectCode(() => region.writeSync(0, 'text' as unknown as Buffer), 'EINVAL');
    expectCode(() => region.readSync(0, -1), 'EINVAL');
    expect(() => region.writeSync(0, Buffer.alloc(1), { durability: 'sync' as never })).toThrow(/durability must be one of 'mapped', 'flushed', got "sync"/);
  });

  test('data persists across close and reopen', async () => {
    const data = pattern(SIZE, 3);
    await region.write(0, data);
    await unit.close();
    expectCode(() => region.readSync(0, 1), 'ECLOSED');
    unit = PersistentMemoryUnit.open(file);
    const again = unit.openRegion('orders');
    expect(again.size).toBe(SIZE);
    expect(again.context.base).toBe(region.context.base);
    expect(again.readSync(0, SIZE).equals(data)).toBe(true);
  });

  test('mapped writes are visible to a second region object at once', () => {
    const other = unit.openRegion('orders');
    region.writeSync(10, Buffer.from('abc'), { durability: 'mapped' });
    expect(other.readSync(10, 3).toString()).toBe('abc');
  });

  test('concurrent flushed writes share group flushes', async () => {
    const before = unit.groupFlushes;
    await Promise.all(Array.from({ length: 32 }, (_, i) => region.write(i * 64, pattern(64, i))));
    const used = unit.groupFlushes - before;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThan(32);
    for (let i = 0; i < 32; i++) expect(region.readSync(i * 64, 64).equals(pattern(64, i))).toBe(true);
  });

  test("a lone flushed write is flushed on this thread by default ('inline'), on the libuv pool with 'pool'; both persist", async () => {
    expect(unit.loneFlush).toBe('inline');
    // Inline: the msync ran before this turn of the event loop ended, so the ack beats a setImmediate.
    const order: string[] = [];
    const immediate = new Promise<void>((resolve) => setImmediate(() => resolve(void order.push('immediate'))));
    await region.write(0, pattern(64, 1)).then(() => order.push('ack'));
    await immediate;
    expect(order).toEqual(['ack', 'immediate']);
    unit.loneFlush = 'pool';
    try {
      const flushes = unit.groupFlushes;
      await region.write(64, pattern(64, 2));
      expect(unit.groupFlushes).toBe(flushes + 1);
    } finally {
      unit.loneFlush = 'inline';
    }
    expect(() => (unit.loneFlush = 'sometimes' as never)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expectCode(() => PersistentMemoryUnit.open(file, { loneFlush: 'never' as never }), 'EINVAL');
    await unit.close();
    unit = PersistentMemoryUnit.open(file, { loneFlush: 'pool' });
    expect(unit.loneFlush).toBe('pool');
    region = unit.openRegion('orders');
    expect(region.readSync(0, 64).equals(pattern(64, 1))).toBe(true);
    expect(region.readSync(64, 64).equals(pattern(64, 2))).toBe(true);
    // A unit in 'auto' that no server tells about its clients flushes on the pool.
    unit.loneFlush = 'auto';
    const inline = unit.stats().inlineFlushes;
    await region.write(128, pattern(64, 3));
    expect(unit.stats().inlineFlushes).toBe(inline);
    // A server flushes inline only while one connection alone is talking (test/server-lone-flush.test.ts).
    unit.loneFlush = 'inline';
    new PmuServer({ unit, users: new UserDirectory({ admin: { secret: 'unit-test-secret-0123456789abcdef', admin: true } }), tcp: false, closeUnit: false });
    expect(unit.loneFlush).toBe('auto');
  });

  test('close waits for flushes in flight', async () => {
    const writes = Array.from({ length: 8 }, (_, i) => region.write(i * 100, pattern(100, i)));
    await unit.close();
    await Promise.all(writes);
    unit = PersistentMemoryUnit.open(file);
    const again = unit.openRegion('orders');
    for (let i = 0; i < 8; i++) expect(again.readSync(i * 100, 100).equals(pattern(100, i))).toBe(true);
  });

  test('closeSync refuses with EBUSY while a flush is in flight, then succeeds', async () => {
    const write = region.write(0, pattern(64));
    expectCode(() => unit.closeSync(), 'EBUSY');
    await write;
    unit.closeSync();
    expect(unit.isClosed).toBe(true);
  });

  test('operations after close fail with ECLOSED', async () => {
    await unit.close();
    expectCode(() => unit.createRegion('x', 1), 'ECLOSED');
    expectCode(() => unit.listRegions(), 'ECLOSED');
    await expectRejectCode(region.write(0, Buffer.alloc(1)), 'ECLOSED');
  });

  describe('compareAndSwap', () => {
    test('swaps when the word matches and returns the previous value', async () => {
      expect(await region.compareAndSwap(8, 0n, 5n)).toBe(0n);
      expect(region.readSync(8, 8).readBigUInt64LE(0)).toBe(5n);
      expect(await region.compareAndSwap(8, 0n, 9n)).toBe(5n); // mismatch: not swapped
      expect(region.readSync(8, 8).readBigUInt64LE(0)).toBe(5n);
      expect(region.compareAndSwapSync(8, 5n, 0xffff_ffff_ffff_ffffn, { durability: 'mapped' })).toBe(5n);
      expect(region.readSync(8, 8).readBigUInt64LE(0)).toBe(0xffff_ffff_ffff_ffffn);
    });

    test('misaligned is EALIGN, outside is EBOUNDS, bad values EINVAL', async () => {
      await expectRejectCode(region.compareAndSwap(4, 0n, 1n), 'EALIGN');
      await expectRejectCode(region.compareAndSwap(SIZE - 4, 0n, 1n), 'EBOUNDS');
      await expectRejectCode(region.compareAndSwap(0, -1n, 1n), 'EINVAL');
      await expectRejectCode(region.compareAndSwap(0, 0n, 2n ** 64n), 'EINVAL');
      await expectRejectCode(region.compareAndSwap(0, 0 as unknown as bigint, 1n), 'EINVAL');
    });
  });

  describe('fenced writes', () => {
    test('land while the fence word holds the epoch, EFENCED once it moved', async () => {
      await region.compareAndSwap(0, 0n, 3n);
      await region.write(64, Buffer.from('primary'), { fence: { offset: 0, epoch: 3n } });
      expect(region.readSync(64, 7).toString()).toBe('primary');
      await region.compareAndSwap(0, 3n, 4n); // a takeover bumps the epoch
      await expectRejectCode(region.write(64, Buffer.from('zombie!'), { fence: { offset: 0, epoch: 3n } }), 'EFENCED');
      expectCode(() => region.writeSync(64, Buffer.from('zombie!'), { fence: { offset: 0, epoch: 3n }, durability: 'mapped' }), 'EFENCED');
      expect(region.readSync(64, 7).toString()).toBe('primary');
    });

    test('a fence outside the region is EBOUNDS, misaligned EALIGN', () => {
      expectCode(() => region.writeSync(0, Buffer.alloc(1), { fence: { offset: SIZE, epoch: 0n } }), 'EBOUNDS');
      expectCode(() => region.writeSync(0, Buffer.alloc(1), { fence: { offset: 3, epoch: 0n } }), 'EALIGN');
    });
  });

  describe('regions (the ATT)', () => {
    test('list, open, grants and owner persist', async () => {
      unit.createRegion('book', 100, { owner: 'primary' });
      unit.setGrants('book', [{ user: 'backup', rights: 'r' }, { user: 'auditor', rights: 'rw' }]);
      await unit.close();
      unit = PersistentMemoryUnit.open(file);
      const book = unit.listRegions().find((r) => r.name === 'book');
      expect(book).toMatchObject({ size: 100, owner: 'primary', grants: [{ user: 'backup', rights: 'r' }, { user: 'auditor', rights: 'rw' }] });
      const names = unit.listRegions().map((r) => r.name).sort();
      expect(names).toEqual(['book', 'orders']);
    });

    test('regions get distinct handles and non-overlapping virtual ranges', () => {
      const a = unit.createRegion('a', 5000);
      const b = unit.createRegion('b', 1);
      const ranges = [region, a, b].map((r) => [r.context.base, r.context.base + r.size]);
      expect(new Set([region, a, b].map((r) => r.context.handle)).size).toBe(3);
      for (let i = 0; i < ranges.length; i++)
        for (let j = i + 1; j < ranges.length; j++) expect(ranges[i][1] <= ranges[j][0] || ranges[j][1] <= ranges[i][0]).toBe(true);
    });

    test('a name with a lone surrogate is EINVAL and creates nothing (it has no UTF-8 form)', () => {
      expectCode(() => unit.createRegion('bad\ud800', 10), 'EINVAL');
      expectCode(() => unit.ensureRegion('\udc00', 10), 'EINVAL');
      expect(unit.listRegions().map((r) => r.name)).toEqual(['orders']);
    });

    test('duplicate name is EEXIST; bad names and sizes are EINVAL; unknown is ENOENT', () => {
      expectCode(() => unit.createRegion('orders', 10), 'EEXIST');
      expectCode(() => unit.createRegion('', 10), 'EINVAL');
      expectCode(() => unit.createRegion('x'.repeat(64), 10), 'EINVAL');
      expectCode(() => unit.createRegion('nul\0name', 10), 'EINVAL');
      expectCode(() => unit.createRegion('zero', 0), 'EINVAL');
      expectCode(() => unit.openRegion('missing'), 'ENOENT');
      expectCode(() => unit.deleteRegion('missing'), 'ENOENT');
      expectCode(() => unit.setGrants('orders', [{ user: 'u', rights: 'w' as never }]), 'EINVAL');
      expectCode(() => unit.setGrants('orders', Array.from({ length: 9 }, (_, i) => ({ user: `u${i}`, rights: 'r' as const }))), 'ETOOMANY');
    });

    test('a full file is ENOSPC naming the largest free extent; delete frees the space for reuse, zeroed', () => {
      const free = unit.info().largestFreeExtent;
      let thrown: PmuError | undefined;
      try {
        unit.createRegion('huge', free + 1);
      } catch (error) {
        thrown = error as PmuError;
      }
      expect(thrown?.code).toBe('ENOSPC');
      expect(thrown?.message).toContain(`largest free extent is ${free} bytes`);

      const filler = unit.createRegion('filler', free);
      filler.writeSync(0, Buffer.alloc(4096, 0xab));
      expectCode(() => unit.createRegion('one-more', 1), 'ENOSPC');
      unit.deleteRegion('filler');
      expectCode(() => filler.readSync(0, 1), 'ENOENT'); // the old handle is dead, not reused
      const reused = unit.createRegion('reused', 4096);
      expect(reused.readSync(0, 4096).equals(Buffer.alloc(4096))).toBe(true); // no stale bytes
    });

    test('the table is bounded by maxRegions: ETOOMANY', () => {
      for (let i = 1; i < 16; i++) unit.createRegion(`r${i}`, 1);
      expectCode(() => unit.createRegion('r16', 1), 'ETOOMANY');
    });

    test('ensureRegion opens an existing region or creates a missing one', () => {
      expect(unit.ensureRegion('orders', 1).size).toBe(SIZE);
      expect(unit.ensureRegion('fresh', 123).size).toBe(123);
      expect(unit.hasRegion('fresh')).toBe(true);
    });
  });

  test('a second open of the same file is ELOCKED until the first closes', async () => {
    expectCode(() => PersistentMemoryUnit.open(file), 'ELOCKED');
    await unit.close();
    unit = PersistentMemoryUnit.open(file);
    expect(unit.listRegions()).toHaveLength(1);
  });
});
