/**
 * The unit looks region names up in a table it keeps in step with its own changes (not by
 * listing the whole table each time). These tests prove the kept table never disagrees with
 * the file: after create, delete, re-create under the same name, a refused create, grants,
 * and a reopen from disk. Small units; well under a second.
 */
import { PersistentMemoryUnit, PmuError } from '../lib';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof PmuError ? error.code : 'not a PmuError';
  }
  return undefined;
}

describe('region lookup by name', () => {
  test('create, open, delete and re-create under the same name always find the current region', () => {
    const file = tempFile();
    const unit = PersistentMemoryUnit.open(file, { size: 8 << 20 });
    try {
      unit.createRegion('a', 4096);
      unit.createRegion('b', 8192);
      expect(unit.openRegion('a').size).toBe(4096); // first lookup reads the table
      unit.deleteRegion('a');
      expect(codeOf(() => unit.openRegion('a'))).toBe('ENOENT');
      expect(unit.hasRegion('a')).toBe(false);
      const again = unit.createRegion('a', 12288);
      expect(unit.openRegion('a').size).toBe(12288);
      expect(unit.openRegion('a').context.handle).toBe(again.context.handle);
      // A refused create (the name exists) leaves the lookup as it was.
      expect(codeOf(() => unit.createRegion('b', 4096))).toBe('EEXIST');
      expect(unit.openRegion('b').size).toBe(8192);
      // Every name the file lists is found, with the file's own handle and size.
      for (const info of unit.listRegions()) {
        const region = unit.openRegion(info.name);
        expect([region.context.handle, region.size]).toEqual([info.handle, info.size]);
      }
      expect(unit.listRegions().map((r) => r.name).sort()).toEqual(['a', 'b']);
    } finally {
      unit.closeSync();
    }
  });

  test('grants set after a lookup are what the next lookup returns', () => {
    const file = tempFile();
    const unit = PersistentMemoryUnit.open(file, { size: 8 << 20 });
    try {
      unit.createRegion('g', 4096, { owner: 'alice' });
      expect(unit.entry('g').grants).toEqual([]);
      unit.setGrants('g', [{ user: 'bob', rights: 'r' }]);
      expect(unit.entry('g').grants).toEqual([{ user: 'bob', rights: 1 }]);
      expect(codeOf(() => unit.setGrants('g', [{ user: 'bob', rights: 'x' as never }]))).toBe('EINVAL');
      expect(unit.entry('g').grants).toEqual([{ user: 'bob', rights: 1 }]);
    } finally {
      unit.closeSync();
    }
  });

  test('after a reopen the table comes from the file: deleted names stay gone', async () => {
    const file = tempFile();
    let unit = PersistentMemoryUnit.open(file, { size: 8 << 20 });
    for (let i = 0; i < 20; i++) unit.createRegion(`r${i}`, 4096);
    for (let i = 0; i < 20; i += 2) unit.deleteRegion(`r${i}`);
    await unit.close();
    unit = PersistentMemoryUnit.open(file);
    try {
      for (let i = 0; i < 20; i++) expect(unit.hasRegion(`r${i}`)).toBe(i % 2 === 1);
      expect(unit.listRegions()).toHaveLength(10);
    } finally {
      unit.closeSync();
    }
  });
});
