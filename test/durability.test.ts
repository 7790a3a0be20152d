/**
 * Durability as one table (lib/unit/durability.ts): each Region type's levels, the refusals,
 * the wire codes, and the docs' sentences all come from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilitiesOf, checkDurability, DURABILITY_LEVELS, durabilityOfWireCode, wireCodeOf } from '../lib/unit/durability';
import { DURABILITY_CODE_MASK, FLAG_FENCE } from '../lib/wire/protocol';

const REPO = path.join(__dirname, '..');

test('every Region type gives exactly the levels whose rows name it', () => {
  for (const type of ['LocalRegion', 'RemoteRegion', 'MirroredRegion', 'FileRegion'] as const) {
    const { durabilities } = capabilitiesOf(type);
    const expected = DURABILITY_LEVELS.filter((level) => (level.regionTypes as readonly string[]).includes(type)).map((level) => level.name);
    expect(Object.keys(durabilities).sort()).toEqual([...expected].sort());
  }
  expect(Object.keys(capabilitiesOf('FileRegion').durabilities)).toEqual([]);
});

test("a level the Region type cannot give is EINVAL naming the level and the type; an unknown one lists the levels; the default is 'flushed'", () => {
  const local = capabilitiesOf('LocalRegion');
  expect(checkDurability(undefined, local)).toBe('flushed');
  expect(checkDurability('mapped', local)).toBe('mapped');
  expect(() => checkDurability('flushed', capabilitiesOf('FileRegion'))).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/durability 'flushed' is not something a FileRegion can give/) }));
  for (const bad of ['durable', 'toString', '__proto__', 1, null, {}]) {
    expect(() => checkDurability(bad, local)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/durability must be one of 'mapped', 'flushed'/) }));
  }
});

test('wire codes are unique, fit the flags bits below the fence bit, and round-trip', () => {
  const codes = DURABILITY_LEVELS.map((level) => level.wireCode);
  expect(new Set(codes).size).toBe(codes.length);
  for (const level of DURABILITY_LEVELS) {
    expect(level.wireCode & ~DURABILITY_CODE_MASK).toBe(0);
    expect(durabilityOfWireCode(wireCodeOf(level.name))).toBe(level.name);
  }
  expect(FLAG_FENCE & DURABILITY_CODE_MASK).toBe(0);
  expect(durabilityOfWireCode(DURABILITY_CODE_MASK)).toBeUndefined();
});

test("the README and docs/PROTOCOL.md say what each level survives in the table's own words", () => {
  const flat = (file: string) => fs.readFileSync(path.join(REPO, file), 'utf8').replace(/\s+/g, ' ');
  for (const doc of ['README.md', 'docs/PROTOCOL.md']) {
    const text = flat(doc);
    for (const level of DURABILITY_LEVELS) {
      expect(text).toContain(level.survives);
      expect(text).toContain(level.ackedWhen);
    }
  }
});
