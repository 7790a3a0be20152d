/**
 * Damaged PMU files: a table update a crash interrupted (never acknowledged) rolls back to the
 * committed copy with a note; damage to the acknowledged copy, the commit record, or real
 * corruption (bad magic, truncation, a valid-checksum entry pointing outside the file) opens
 * with ECORRUPT and a message saying what is wrong and what to do; nothing crashes, and nothing
 * is written over the damage. Offsets follow docs/FORMAT.md (format version 2).
 */
import * as fs from 'node:fs';
import { PersistentMemoryUnit, PmuError, crc32c, inspectFile } from '../lib';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

const MAX_REGIONS = 8;
const PAGE = 4096;
const HEADER = PAGE; // page 0: the commit record (sector 0)
const COPY = Math.ceil((512 + MAX_REGIONS * 512) / PAGE) * PAGE; // metadata copy size
const copyAt = (copy: 0 | 1): number => HEADER + copy * COPY;
const SB = { generation: 40, tableCrc: 88, crc: 508 };
const ENTRY = { phys: 24, crc: 508 };

function makeFile(regions: string[]): string {
  const file = tempFile();
  const unit = PersistentMemoryUnit.open(file, { size: 1 << 20, maxRegions: MAX_REGIONS });
  for (const name of regions) unit.createRegion(name, 5000).writeSync(0, Buffer.from(`data of ${name}`));
  unit.closeSync();
  return file;
}

function readCopy(file: string, copy: 0 | 1): Buffer {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(COPY);
  fs.readSync(fd, b, 0, COPY, copyAt(copy));
  fs.closeSync(fd);
  return b;
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(length);
  fs.readSync(fd, b, 0, length, offset);
  fs.closeSync(fd);
  return b;
}

function writeAt(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, offset);
  fs.closeSync(fd);
}

function generation(file: string, copy: 0 | 1): bigint {
  return readCopy(file, copy).readBigUInt64LE(SB.generation);
}

function currentCopy(file: string): 0 | 1 {
  return generation(file, 1) > generation(file, 0) ? 1 : 0;
}

/** Rewrites a copy's checksums so it passes as a deliberately written (not torn) copy. */
function resealCopy(copy: Buffer): void {
  for (let i = 0; i < MAX_REGIONS; i++) {
    const entry = copy.subarray(512 + i * 512, 512 + (i + 1) * 512);
    if (entry.every((b) => b === 0)) continue;
    entry.writeUInt32LE(crc32c(entry.subarray(0, ENTRY.crc)), ENTRY.crc);
  }
  // The table CRC runs over each slot without its own CRC field (native/core/att.cpp).
  let tableCrc = 0;
  for (let i = 0; i < MAX_REGIONS; i++) tableCrc = crc32c(copy.subarray(512 + i * 512, 512 + i * 512 + ENTRY.crc), tableCrc);
  copy.writeUInt32LE(tableCrc, SB.tableCrc);
  copy.writeUInt32LE(crc32c(copy.subarray(0, SB.crc)), SB.crc);
}

function openError(file: string): PmuError {
  try {
    PersistentMemoryUnit.open(file);
  } catch (error) {
    return error as PmuError;
  }
  throw new Error('expected open to fail');
}

test('a torn table update (never acknowledged) rolls back to the committed copy, with a note', async () => {
  const file = makeFile(['a']);
  const commitBefore = readAt(file, 0, 512);
  // Region 'b' is written to the other copy, then the commit record names it; put the old
  // commit record back and tear the new copy: a crash in the middle of createRegion('b').
  const unit0 = PersistentMemoryUnit.open(file);
  unit0.createRegion('b', 5000);
  unit0.closeSync();
  const uncommitted = currentCopy(file);
  writeAt(file, 0, commitBefore);
  writeAt(file, copyAt(uncommitted) + 512 + 512 + 70, Buffer.from([readCopy(file, uncommitted)[512 + 512 + 70] ^ 0xff]));

  const unit = PersistentMemoryUnit.open(file);
  expect(unit.info().recoveryNote).toMatch(/torn/);
  expect(unit.listRegions().map((r) => r.name)).toEqual(['a']);
  expect(unit.openRegion('a').readSync(0, 9).toString()).toBe('data of a');
  // The next update overwrites the torn copy, and the file is whole again.
  unit.createRegion('c', 10);
  await unit.close();
  const again = PersistentMemoryUnit.open(file);
  expect(again.info().recoveryNote).toBe('');
  expect(again.listRegions().map((r) => r.name).sort()).toEqual(['a', 'c']);
  await again.close();
});

test('a whole but uncommitted table update rolls back too, and the note says so', async () => {
  const file = makeFile(['a']);
  const commitBefore = readAt(file, 0, 512);
  const unit0 = PersistentMemoryUnit.open(file);
  unit0.createRegion('b', 5000);
  unit0.closeSync();
  writeAt(file, 0, commitBefore); // the crash came between the copy's flush and the commit record's
  const unit = PersistentMemoryUnit.open(file);
  expect(unit.info().recoveryNote).toMatch(/never committed/);
  expect(unit.hasRegion('b')).toBe(false);
  await unit.close();
});

for (const [what, at] of [
  ['a byte of a region entry', 512 + 512 + 70],
  ['a byte of the superblock', 100],
] as const) {
  test(`${what} damaged in the acknowledged copy is ECORRUPT, never a silent roll-back`, () => {
    const file = makeFile(['a', 'b']);
    const current = currentCopy(file);
    writeAt(file, copyAt(current) + at, Buffer.from([readCopy(file, current)[at] ^ 0x01]));
    const damaged = fs.readFileSync(file);
    const error = openError(file);
    expect(error.code).toBe('ECORRUPT');
    expect(error.message).toContain(`copy ${current === 0 ? 'A' : 'B'} holds the last acknowledged table update`);
    expect(error.message).toContain('pmu inspect --verify');
    expect(error.message).toMatch(/mirror or a backup/);
    // ensureRegion can never re-create 'b' over its old extent: nothing opens, nothing is written.
    expect(() => PersistentMemoryUnit.open(file).ensureRegion('b', 5000)).toThrow(expect.objectContaining({ code: 'ECORRUPT' }));
    expect(fs.readFileSync(file).equals(damaged)).toBe(true);
    const report = inspectFile(file);
    expect(report.status).toBe('ECORRUPT');
    expect(report.commit.state).toBe('valid');
    expect(report.commit.generation).toBe(3);
  });
}

test('a damaged commit record is ECORRUPT', () => {
  const file = makeFile(['a']);
  writeAt(file, 33, Buffer.from([readAt(file, 33, 1)[0] ^ 0x10])); // the committed generation
  const error = openError(file);
  expect(error.code).toBe('ECORRUPT');
  expect(error.message).toMatch(/commit record/);
  expect(inspectFile(file).commit.state).toBe('damaged');
});

test('bad magic in both copies is ECORRUPT', () => {
  const file = makeFile(['a']);
  writeAt(file, copyAt(0), Buffer.from('GARBAGE!'));
  writeAt(file, copyAt(1), Buffer.from('GARBAGE!'));
  const error = openError(file);
  expect(error.code).toBe('ECORRUPT');
  expect(error.message).toMatch(/bad magic/);
});

test('a file that is not a PMU file at all is ECORRUPT', () => {
  const file = tempFile('random.pmu');
  fs.writeFileSync(file, Buffer.alloc(1 << 16, 0x41));
  expect(openError(file).code).toBe('ECORRUPT');
  const tiny = tempFile('tiny.pmu');
  fs.writeFileSync(tiny, 'short');
  const error = openError(tiny);
  expect(error.code).toBe('ECORRUPT');
  expect(error.message).toMatch(/too short/);
});

test('a truncated file is ECORRUPT and says so', () => {
  const file = makeFile(['a']);
  fs.truncateSync(file, 1 << 19);
  const error = openError(file);
  expect(error.code).toBe('ECORRUPT');
  expect(error.message).toMatch(/truncated/);
});

test('a checksummed entry pointing outside the file is ECORRUPT, not a fallback', () => {
  const file = makeFile(['a', 'b']);
  const current = currentCopy(file);
  const copy = readCopy(file, current);
  copy.writeBigUInt64LE(BigInt(1 << 30), 512 + ENTRY.phys); // entry 0 -> 1 GiB into a 1 MiB file
  resealCopy(copy);
  writeAt(file, copyAt(current), copy);
  const error = openError(file);
  expect(error.code).toBe('ECORRUPT');
  expect(error.message).toMatch(/outside the file/);
});

test('overlapping extents are ECORRUPT', () => {
  const file = makeFile(['a', 'b']);
  const current = currentCopy(file);
  const copy = readCopy(file, current);
  const physA = copy.readBigUInt64LE(512 + ENTRY.phys);
  copy.writeBigUInt64LE(physA, 512 + 512 + ENTRY.phys); // b now sits on a
  resealCopy(copy);
  writeAt(file, copyAt(current), copy);
  expect(openError(file).message).toMatch(/overlap/);
});

test('inspect reports both copies of a damaged file without throwing', () => {
  const file = makeFile(['a']);
  writeAt(file, copyAt(0), Buffer.from('GARBAGE!'));
  writeAt(file, copyAt(1), Buffer.from('GARBAGE!'));
  const report = inspectFile(file);
  expect(report.status).toBe('ECORRUPT');
  expect(report.copies.map((c) => c.state)).toEqual(['invalid', 'invalid']);
  expect(report.copies[0].problem).toMatch(/magic/);
});

test('inspect of a healthy file lists the table', () => {
  const file = makeFile(['a', 'b']);
  const report = inspectFile(file);
  expect(report.status).toBe('OK');
  expect(report.regions?.map((r) => r.name)).toEqual(['a', 'b']);
  expect(report.copies.every((c) => c.state === 'valid')).toBe(true);
});
