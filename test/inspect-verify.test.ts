/**
 * pmu inspect --verify FILE: read-only, works while the file is held, exit 0 when everything
 * recovery trusts checks out, 1 with a report naming what is damaged otherwise.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointReader, CURSOR_POSITION_OFFSET, HEADER_BYTES, inspectFile, PersistentMemoryUnit, RECORD_HEADER_BYTES, recordBytes, openPrimary } from '../lib';
import { main } from '../lib/cli/main';
import { removeTempDirs, tempFile } from './helpers/temp';
import { payload } from './fixtures/checkpoint-setup';

afterAll(removeTempDirs);

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const PAYLOAD = 100;
const RECORD = recordBytes(PAYLOAD);

/** `pmu ARGS` in a child process: what a user runs (and a separate process from this one's unit). */
function pmuChild(args: string[]) {
  const result = spawnSync(process.execPath, [PMU, ...args], { timeout: 20000 });
  return { code: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** The same command in this process (no node start-up per call: keeps the suite's CPU share small). */
async function pmu(args: string[]) {
  let stdout = '';
  let stderr = '';
  const outSpy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true));
  const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    outSpy.mockRestore();
    errSpy.mockRestore();
  }
}

/** A file with an append log of 20 records (7 cleared), an overwrite log with 2 checkpoints, and a raw region. */
async function makeFile(): Promise<string> {
  const file = tempFile();
  const unit = PersistentMemoryUnit.open(file, { size: 2 << 20, maxRegions: 8 });
  const log = (await openPrimary(unit.createRegion('log', 64 * 1024), { mode: 'append', heartbeatMs: 0 })).writer;
  for (let i = 1; i <= 20; i++) await log.append(payload(i, PAYLOAD));
  const reader = await CheckpointReader.open(unit.openRegion('log'));
  await reader.readBatch({ maxRecords: 7 });
  await reader.clear(7);
  const slots = (await openPrimary(unit.createRegion('state', 16 * 1024), { mode: 'overwrite', heartbeatMs: 0 })).writer;
  await slots.checkpoint(payload(1));
  await slots.checkpoint(payload(2));
  unit.createRegion('blob', 8192).writeSync(0, Buffer.from('not a log'));
  await log.close();
  await slots.close();
  await unit.close();
  return file;
}

function regionOffset(file: string, name: string): number {
  const entry = inspectFile(file).regions?.find((e) => e.name === name);
  if (!entry) throw new Error(`no region ${name}`);
  return entry.physOffset;
}

function flipFileByte(file: string, offset: number, mask = 0xff): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] ^= mask;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

test('a clean file: exit 0, every region reported (append live part and stale part, overwrite slots, raw), nothing changed', async () => {
  const file = await makeFile();
  const before = fs.readFileSync(file);
  const result = pmuChild(['inspect', '--verify', file]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/region 'log': ok: append log, .*cursor at position \d+ \(sequence 8\); live: records 8-20 \(13,/);
  expect(result.stdout).toMatch(/note: stale: /);
  expect(result.stdout).toMatch(/region 'state': ok: overwrite log, .*checkpoint 2/);
  expect(result.stdout).toMatch(/region 'blob': ok: raw: not a checkpoint log/);
  expect(result.stdout).toMatch(/verify {6}OK: both metadata copies and 3 region\(s\) check out/);
  expect(fs.readFileSync(file).equals(before)).toBe(true);
  const json = JSON.parse((await pmu(['inspect', '--verify', '--json', file])).stdout);
  expect(json.verify.ok).toBe(true);
  expect(json.verify.regions.map((r: { kind: string }) => r.kind)).toEqual(['append', 'overwrite', 'raw']);
});

test('works while another process holds the file (a unit open, as a server would have it)', async () => {
  const file = await makeFile();
  const unit = PersistentMemoryUnit.open(file);
  try {
    const result = pmuChild(['inspect', '--verify', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/verify {6}OK/);
  } finally {
    await unit.close();
  }
});

test('a damaged record followed by acknowledged ones: exit 1, the report names the region, the record and its offset', async () => {
  const file = await makeFile();
  // Record 10 (live: the cursor is at 8), one payload byte.
  flipFileByte(file, regionOffset(file, 'log') + HEADER_BYTES + 9 * RECORD + RECORD_HEADER_BYTES + 5);
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/region 'log': DAMAGED/);
  expect(result.stdout).toMatch(new RegExp(`region 'log': record 10 at log position ${9 * RECORD} \\(region offset ${HEADER_BYTES + 9 * RECORD}\\) is damaged .*fails its CRC32C.*record 11 at position`));
  expect(result.stdout).toMatch(/FAILED: 1 problem/);
});

test('a torn last record is a note, not a problem: exit 0', async () => {
  const file = await makeFile();
  flipFileByte(file, regionOffset(file, 'log') + HEADER_BYTES + 19 * RECORD + RECORD_HEADER_BYTES + 5);
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/live: records 8-19 .*\n.*note: ends in a torn tail at record 20/);
});

test('a damaged cursor word: exit 1, the report names the word', async () => {
  const file = await makeFile();
  flipFileByte(file, regionOffset(file, 'log') + CURSOR_POSITION_OFFSET + 1, 0x04);
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/region 'log': DAMAGED/);
  expect(result.stdout).toMatch(/the checkpoint cursor position word \(header bytes 32-39, 0x[0-9a-f]{16}\) fails its check/);
});

test('a damaged header of an overwrite log: exit 1', async () => {
  const file = await makeFile();
  flipFileByte(file, regionOffset(file, 'state') + 60, 0x01); // capacity: covered by the header CRC
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/region 'state': DAMAGED.*\n.*PROBLEM: .*header CRC mismatch/);
});

test('a damaged metadata copy: exit 1 naming the copy; plain inspect prints the recovery line', async () => {
  const file = await makeFile();
  const copies = inspectFile(file).copies;
  const newest = copies[0].generation > copies[1].generation ? 0 : 1;
  const copiesStart = 4096; // page 0 holds the commit record (docs/FORMAT.md)
  const copySize = 8192; // roundUp(512 + 8 regions x 512, 4096)
  flipFileByte(file, copiesStart + newest * copySize + 100, 0x01); // inside the superblock, covered by its CRC
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(new RegExp(`metadata copy ${'AB'[newest]} is (torn|invalid)`));
  // The damaged copy is the acknowledged one: opening refuses instead of rolling back.
  expect(result.stdout).toMatch(/the unit cannot be opened: ECORRUPT/);
  const plain = await pmu(['inspect', file]);
  const recovery = /^recovery {4}(.*)$/m.exec(plain.stdout);
  expect(recovery).not.toBeNull();
  // Either open falls back to the older copy and says so, or it refuses: never a silent "none".
  expect(/^status {6}OK$/m.test(plain.stdout) && recovery![1].startsWith('none')).toBe(false);
});

test('a damaged commit record: exit 1 naming it, and the unit refuses to open', async () => {
  const file = await makeFile();
  flipFileByte(file, 20, 0x01); // sector 0: the commit record, under its own CRC
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/the commit record is damaged/);
  expect(result.stdout).toMatch(/the unit cannot be opened: ECORRUPT/);
});

test('a damaged newest checkpoint of an overwrite log: exit 1', async () => {
  const file = await makeFile();
  // Checkpoint 2 sits in slot 0, right after the header.
  flipFileByte(file, regionOffset(file, 'state') + HEADER_BYTES + RECORD_HEADER_BYTES + 3);
  const result = await pmu(['inspect', '--verify', file]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/region 'state': DAMAGED.*\n.*PROBLEM: .*checkpoint 2 was acknowledged/);
});
