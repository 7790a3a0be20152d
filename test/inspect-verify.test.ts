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

describe('pmu inspect --verify over the copies of a set (--set FILE, or several FILEs)', () => {
  /** Two replicas' unit files holding the same regions byte for byte. */
  async function pair(): Promise<[string, string]> {
    const a = await makeFile();
    const b = tempFile();
    fs.copyFileSync(a, b);
    return [a, b];
  }
  const lastRecordByte = (file: string) => regionOffset(file, 'log') + HEADER_BYTES + 19 * RECORD + RECORD_HEADER_BYTES + 5;

  test('equal copies: exit 0, every copy of every region agrees; nothing changed', async () => {
    const [a, b] = await pair();
    const before = fs.readFileSync(b);
    const result = await pmu(['inspect', '--verify', a, '--set', b]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`region {6}'log' \\(checkpoint log\\): ok, source ${a}`));
    expect(result.stdout).toMatch(new RegExp(`behind {5}${b}: equal to the source`));
    expect(result.stdout).toMatch(/region {6}'blob' \(raw\): ok\n(.*\n)*.*note: not a checkpoint log: the 2 copies hold the same bytes/);
    expect(result.stdout).toMatch(/verify {6}OK: 2 files, 3 region\(s\): the copies agree/);
    expect(fs.readFileSync(b).equals(before)).toBe(true);
  });

  test('the last acknowledged record damaged on one copy: damaged there (not a torn tail), the other is the source; exit 1 naming the file and the fix', async () => {
    const [a, b] = await pair();
    flipFileByte(b, lastRecordByte(b));
    // Alone, the damaged copy passes: its last record reads as a torn tail.
    expect((await pmu(['inspect', '--verify', b])).code).toBe(0);
    const result = await pmu(['inspect', '--verify', b, '--set', a, '--region', 'log']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`region {6}'log' \\(checkpoint log\\): DAMAGED, source ${a}`));
    expect(result.stdout).toMatch(new RegExp(`damaged {4}${b}: record 20 is invalid here .* and valid on '${a}': damage on this copy, not a torn tail`));
    expect(result.stdout).toMatch(new RegExp(`source {5}${a}: append log`));
    expect(result.stdout).toMatch(new RegExp(`resync the copy in '${b}' from the one in '${a}'.*pmu cluster scrub --region log.*keep '${a}' as it is`));
    expect(result.stdout).not.toMatch(/every copy ends in a torn tail/);
    const json = JSON.parse((await pmu(['inspect', '--verify', '--json', a, b, '--region', 'log'])).stdout);
    expect(json.ok).toBe(false);
    expect(json.regions).toHaveLength(1);
    expect(json.regions[0]).toMatchObject({ region: 'log', kind: 'log', ok: false, source: a });
    expect(json.regions[0].copies.map((c: { file: string; role: string }) => [c.file, c.role])).toEqual([[a, 'source'], [b, 'damaged']]);
  });

  test('a torn tail on every copy: exit 0, said so', async () => {
    const [a, b] = await pair();
    flipFileByte(a, lastRecordByte(a));
    flipFileByte(b, lastRecordByte(b));
    const result = await pmuChild(['inspect', '--verify', a, b]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/region {6}'log' \(checkpoint log\): ok/);
    expect(result.stdout).toMatch(/note: every copy ends in a torn tail at record 20: what a crash during an append leaves/);
    expect(result.stdout).toMatch(/verify {6}OK/);
  });

  test('a copy that holds more (a writer died mid-append) is the source; the shorter one is behind, not damaged: exit 0', async () => {
    const [a, b] = await pair();
    // b's record 20 was never written there: zero it whole, as an append that never reached it.
    const fd = fs.openSync(b, 'r+');
    fs.writeSync(fd, Buffer.alloc(RECORD), 0, RECORD, regionOffset(b, 'log') + HEADER_BYTES + 19 * RECORD);
    fs.closeSync(fd);
    const result = await pmu(['inspect', '--verify', b, '--set', a, '--region', 'log']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`source {5}${a}`));
    expect(result.stdout).toMatch(new RegExp(`behind {5}${b}: ends at record 19, the source at 20 \\(a writer died mid-append\\)`));
    expect(result.stdout).toMatch(/note: .*not damage; the next takeover makes every in-sync copy agree/);
  });

  test('no copy valid: exit 1, and the advice never names a copy to delete', async () => {
    const [a, b] = await pair();
    for (const file of [a, b]) flipFileByte(file, regionOffset(file, 'log') + HEADER_BYTES + 9 * RECORD + RECORD_HEADER_BYTES + 5);
    const result = await pmu(['inspect', '--verify', a, '--set', b, '--region', 'log']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/no copy of its checkpoint log passes its checks/);
    expect(result.stdout).not.toMatch(/resync the copy/);
  });

  test('a damaged header word on one copy, a file that is not a unit, a region missing: each a problem, exit 1', async () => {
    const [a, b] = await pair();
    flipFileByte(b, regionOffset(b, 'log') + CURSOR_POSITION_OFFSET + 1, 0x04);
    const damaged = await pmu(['inspect', '--verify', a, '--set', b]);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(new RegExp(`damaged {4}${b}: region 'log': the checkpoint cursor position word`));
    const junk = tempFile();
    fs.writeFileSync(junk, Buffer.alloc(8192, 7));
    const unreadable = await pmu(['inspect', '--verify', a, '--set', junk, '--region', 'log']);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stdout).toMatch(new RegExp(`unreadable {1}${junk}: the unit cannot be opened`));
    const absent = await pmu(['inspect', '--verify', a, '--set', `${junk}.absent`]);
    expect(absent.code).toBe(1);
    expect(absent.stdout).toMatch(new RegExp(`unreadable {1}${junk}.absent: `));
    const missing = await pmu(['inspect', '--verify', a, '--set', b, '--region', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/holds no region 'nope'/);
  });

  test('command-line mistakes: several files without --verify, --region without other copies, a file named twice', async () => {
    const [a, b] = await pair();
    expect((await pmu(['inspect', a, b])).code).toBe(2);
    expect((await pmu(['inspect', '--verify', a, '--region', 'log'])).code).toBe(2);
    expect((await pmu(['inspect', '--verify', a, '--set', a])).code).toBe(2);
  });
});
