/**
 * The addon's own argument checks (native/binding/args.h), reached directly: the TypeScript
 * layer checks first, so these are the second line, and nothing else exercises them. No JS
 * value may reach the core as a wrapped, negative, fractional or lossy offset, or as bytes that
 * are not a Uint8Array.
 */
import * as path from 'node:path';
import { addon, NativeUnit, STATUS_OK, statusError } from '../lib/unit/native';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { removeTempDirs, tempDir } from './helpers/temp';

let native: NativeUnit;
let handle: number;
let base: number;

beforeAll(async () => {
  const file = path.join(tempDir('pmu-native-args-'), 'unit.pmu');
  const unit = PersistentMemoryUnit.open(file, { size: 4 << 20 });
  await unit.close();
  native = new (addon().NativeUnit)();
  native.open(file);
  ({ handle, base } = native.createRegion('r', 64 << 10, 'owner'));
});
afterAll(() => {
  native.close();
  removeTempDirs();
});

const codeOf = (status: number) => (status === STATUS_OK ? 'OK' : statusError(status, 'test').code);
const bytes = Buffer.from('abcd');

test('numbers that are not exact non-negative integers up to 2^53 - 1, and lossy or negative bigints, are EINVAL', () => {
  const bad: unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, '0', null, undefined, {}, -1n, 2n ** 64n, true];
  for (const value of bad) {
    expect([value, codeOf(native.write(value as number, base, bytes, 0))]).toEqual([value, 'EINVAL']);
    expect([value, codeOf(native.write(handle, value as number, bytes, 0))]).toEqual([value, 'EINVAL']);
    expect([value, codeOf(native.write(handle, base, bytes, value as number))]).toEqual([value, 'EINVAL']);
  }
  // A handle past u32 is refused as an argument, not wrapped onto another region's.
  expect(codeOf(native.write(handle + 2 ** 32, base, bytes, 0))).toBe('EINVAL');
});

test('data that is not a Uint8Array is EINVAL, whatever its bytes', () => {
  const notBytes: unknown[] = ['abcd', new Int8Array(4), new Uint16Array(2), new Uint8ClampedArray(4), new DataView(new ArrayBuffer(4)), new ArrayBuffer(4), [1, 2, 3, 4], { length: 4 }];
  for (const value of notBytes) expect(codeOf(native.write(handle, base, value as Uint8Array, 0))).toBe('EINVAL');
  expect(codeOf(native.read(handle, base, new Uint16Array(2) as unknown as Uint8Array))).toBe('EINVAL');
});

test('valid numbers and bigints, Buffers and plain Uint8Arrays (views at an offset too) are taken exactly', () => {
  expect(codeOf(native.write(handle, base + 8, bytes, 0))).toBe('OK');
  expect(codeOf(native.write(handle, BigInt(base + 16) as unknown as number, new Uint8Array([1, 2, 3]), 0))).toBe('OK');
  const backing = new Uint8Array([9, 9, 7, 7, 7, 9]);
  expect(codeOf(native.write(handle, base + 24, backing.subarray(2, 5), 0))).toBe('OK');
  const target = Buffer.alloc(19);
  expect(codeOf(native.read(handle, base + 8, target))).toBe('OK');
  expect([...target]).toEqual([...bytes, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 7, 7, 7]);
  // An empty view at the region's end is inside; one byte past it is not.
  expect(codeOf(native.write(handle, base + (64 << 10), new Uint8Array(0), 0))).toBe('OK');
  expect(codeOf(native.write(handle, base + (64 << 10), new Uint8Array(1), 0))).toBe('EBOUNDS');
});
