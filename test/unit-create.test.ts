/**
 * Creating a unit file: every block allocated and written with zeros (no hole, no unwritten
 * extent), off the main thread with progress, atomically; and `pmu serve` showing that progress
 * for a new unit. Bound: about 3 s.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit } from '../lib';
import { removeTempDirs, tempDir, tempFile } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

afterAll(removeTempDirs);

test('create() writes every block, reports progress per 64 MiB, and is atomic', async () => {
  const file = tempFile();
  const progress: Array<[number, number]> = [];
  let mainThreadFree = false;
  const creating = PersistentMemoryUnit.create(file, { size: 70 << 20, maxRegions: 8, onProgress: (done, total) => progress.push([done, total]) });
  setImmediate(() => (mainThreadFree = true)); // the zero-fill runs on the libuv pool
  await creating;
  expect(mainThreadFree).toBe(true);
  expect(progress).toEqual([
    [64 << 20, 70 << 20],
    [70 << 20, 70 << 20],
  ]);
  const stat = fs.statSync(file);
  expect(stat.size).toBe(70 << 20);
  expect(stat.blocks * 512).toBeGreaterThanOrEqual(70 << 20);
  await expect(PersistentMemoryUnit.create(file, { size: 1 << 20 })).rejects.toMatchObject({ code: 'EEXIST' });
  expect(() => PersistentMemoryUnit.create(file, { size: 0 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  const unit = PersistentMemoryUnit.open(file);
  expect(unit.info().maxRegions).toBe(8);
  expect(unit.info().generation).toBe(1);
  await unit.close();
  expect(fs.readdirSync(path.dirname(file))).toEqual([path.basename(file)]);
});

test('pmu serve shows the progress of creating a new unit', async () => {
  const dir = tempDir('pmu-serve-create-');
  const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
  const server = spawn(process.execPath, [PMU, 'serve', '--data', path.join(dir, 'data'), '--no-tcp', '--size', '80MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  server.stderr!.on('data', (chunk) => (stderr += chunk));
  try {
    await waitForLine(server, /connect with/, 20_000);
    expect(stderr).toMatch(/pmu: creating \S+unit\.pmu: 80% \(64 of 80 MiB written with zeros\)/);
    expect(stderr).toMatch(/pmu: creating \S+unit\.pmu: 100% \(80 of 80 MiB written with zeros\)/);
  } finally {
    server.kill('SIGINT');
    await waitForExit(server, 15_000);
  }
});
