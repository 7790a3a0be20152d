/**
 * A full disk, for real: a small ext4 file system made by the test (a loop-mounted image),
 * filled by a process that keeps taking any block that comes free, while a unit creates,
 * writes, deletes and reuses regions. What must hold: no signal ever (SIGBUS was what a hole
 * in the mapping gave), every operation on the unit's own space still works (its blocks were
 * all written at creation), a new unit file is a clean ENOSPC with nothing left behind, the
 * unit file stays fully allocated (du = its length), and a sparse unit file there is refused at
 * open with ENOSPC. Needs root, mkfs.ext4 and loop devices. Bound: about 10 s.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit } from '../lib';
import { FAULT_CHILD, hasCommand, isRoot, required, runScenario } from './helpers/fault';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const enabled =
  required('root (to mount a loop device)', isRoot, 'run the tests as root') &&
  required('mkfs.ext4', hasCommand('mkfs.ext4'), 'apt-get install -y e2fsprogs') &&
  required('mount and losetup', hasCommand('mount') && hasCommand('losetup'), 'apt-get install -y mount');
const suite = enabled ? describe : describe.skip;

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr || result.error}`);
}

function allocatedBytes(file: string): number {
  const du = spawnSync('du', ['--block-size=1', file], { encoding: 'utf8' });
  return Number(du.stdout.split(/\s/)[0]);
}

suite('a unit on a full ext4 file system', () => {
  let mnt = '';
  let mounted = false;
  let filler: ChildProcess | undefined;

  beforeAll(() => {
    const dir = tempDir('pmu-fulldisk-');
    const image = path.join(dir, 'fs.img');
    mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    run('truncate', ['-s', '48M', image]);
    run('mkfs.ext4', ['-q', '-F', image]);
    run('mount', ['-o', 'loop', image, mnt]);
    mounted = true;
  });

  afterAll(async () => {
    if (filler && filler.exitCode === null && filler.signalCode === null) {
      filler.kill('SIGKILL');
      await waitForExit(filler);
    }
    // umount of a loop mount made with -o loop also detaches the loop device.
    if (mounted && spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
    removeTempDirs();
  });

  test('create, write, delete and reuse regions while the disk is full: no signal, no hole, a clean ENOSPC for a new file', async () => {
    const file = path.join(mnt, 'unit.pmu');
    const sparse = path.join(mnt, 'sparse.pmu');
    const second = path.join(mnt, 'second.pmu');
    const size = 16 << 20;
    const unit = PersistentMemoryUnit.open(file, { size, maxRegions: 64 });
    unit.closeSync();
    expect(allocatedBytes(file)).toBeGreaterThanOrEqual(size);
    run('cp', ['--sparse=always', file, sparse]);
    expect(allocatedBytes(sparse)).toBeLessThan(size);

    filler = spawn(process.execPath, [FAULT_CHILD, 'fill', path.join(mnt, 'filler')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForLine(filler, /full/, 20_000);

    const ops = await runScenario([], 'full-disk', [file, second, '24'], 30_000);
    expect(ops.signal).toBeNull();
    expect(ops.code).toBe(0);
    const { steps, secondUnit, close } = ops.result;
    expect(steps).toHaveLength(24);
    for (const step of steps) {
      expect(step.create).toMatchObject({ ok: true });
      expect(step.writeSync).toMatchObject({ ok: true });
      expect(step.write).toMatchObject({ ok: true });
      expect(step.readBack).toMatchObject({ ok: true, value: true });
      if (step.i > 0) expect(step.delete).toMatchObject({ ok: true });
    }
    expect(secondUnit).toMatchObject({ ok: false, code: 'ENOSPC' });
    expect(secondUnit.message).toContain(second);
    expect(close).toMatchObject({ ok: true });
    expect(fs.readdirSync(mnt).filter((name) => name.startsWith('second'))).toEqual([]);
    expect(allocatedBytes(file)).toBeGreaterThanOrEqual(size);
    expect(fs.statSync(file).blocks * 512).toBeGreaterThanOrEqual(size);

    // A sparse unit file on the full file system: refused at open, no signal.
    const refused = await runScenario([], 'open', [sparse]);
    expect(refused.signal).toBeNull();
    expect(refused.result.open).toMatchObject({ ok: false, code: 'ENOSPC' });
    expect(refused.result.open.message).toMatch(/holes/);

    // The unit itself still opens and holds the last region's bytes.
    const reopened = PersistentMemoryUnit.open(file);
    expect(reopened.openRegion('k23').readSync(0, 4).equals(Buffer.alloc(4, 24))).toBe(true);
    reopened.closeSync();
  });
});
