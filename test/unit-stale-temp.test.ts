/**
 * The temporary file of a create (`<file>.creating.<pid>`, docs/FORMAT.md) never outlives its
 * creator: a signal during `pmu serve`'s create removes it, and the next open, create or serve
 * removes one a killed creator left (and says so), while a live creator's file is kept.
 * Bound: a few seconds (an 8 GiB create is interrupted as soon as its file appears).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit } from '../lib';
import { UnitWarning } from '../lib/unit/warnings';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');

afterAll(removeTempDirs);

/** A pid that was a process of ours and is no longer running. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

function leaveTempFile(unitFile: string, pid: number): string {
  const tmp = `${unitFile}.creating.${pid}`;
  fs.writeFileSync(tmp, Buffer.alloc(64 << 10));
  return tmp;
}

test('open removes a dead creator\'s temporary file, says so, and keeps a live creator\'s', async () => {
  const file = path.join(tempDir(), 'unit.pmu');
  await PersistentMemoryUnit.create(file, { size: 1 << 20 });
  const stale = leaveTempFile(file, deadPid());
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const kept = leaveTempFile(file, live.pid!);
    const warnings: UnitWarning[] = [];
    const unit = PersistentMemoryUnit.open(file, { onWarning: (warning) => warnings.push(warning) });
    await unit.close();
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(kept)).toBe(true);
    expect(warnings).toEqual([{ code: 'PMU_STALE_TEMP_FILE', file: stale, message: expect.stringMatching(/^removed \S+\.creating\.\d+: an unfinished unit \(65536 bytes\) left by process \d+, which stopped/) }]);
  } finally {
    live.kill();
    await waitForExit(live);
  }
});

test('create removes a dead creator\'s temporary file before making its own', async () => {
  const file = path.join(tempDir(), 'unit.pmu');
  const stale = leaveTempFile(file, deadPid());
  const warnings: UnitWarning[] = [];
  await PersistentMemoryUnit.create(file, { size: 1 << 20, onWarning: (warning) => warnings.push(warning) });
  expect(fs.readdirSync(path.dirname(file))).toEqual(['unit.pmu']);
  expect(warnings.map((w) => [w.code, w.file])).toEqual([['PMU_STALE_TEMP_FILE', stale]]);
});

test('embedded, the default is one process warning (Node\'s habit), not silence', () => {
  const file = path.join(tempDir(), 'unit.pmu');
  leaveTempFile(file, deadPid());
  const script = `const { PersistentMemoryUnit } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
    PersistentMemoryUnit.create(${JSON.stringify(file)}, { size: 1 << 20 }).then(() => PersistentMemoryUnit.open(${JSON.stringify(file)}).close());`;
  const result = spawnSync(process.execPath, ['-e', script]);
  expect(result.status).toBe(0);
  expect(result.stderr.toString()).toMatch(/\[PMU_STALE_TEMP_FILE\] PmuWarning: removed \S+unit\.pmu\.creating\.\d+/);
});

describe('pmu serve', () => {
  test('removes a dead creator\'s temporary file at start and logs it as a JSON event with msg', async () => {
    const data = path.join(tempDir(), 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    const stale = leaveTempFile(path.join(data, 'unit.pmu'), deadPid());
    const server = spawn(process.execPath, [PMU, 'serve', '--data', data, '--no-tcp', '--size', '1MiB'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (chunk) => (stderr += chunk));
    try {
      await waitForLine(server, /connect with/);
      expect(fs.existsSync(stale)).toBe(false);
      const event = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).find((line) => line.event === 'unit.warning');
      expect(event).toMatchObject({ level: 40, code: 'PMU_STALE_TEMP_FILE', file: stale, msg: expect.stringContaining(`removed ${stale}`) });
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
    }
  });

  test('with the log silenced, says it in one plain line instead', async () => {
    const data = path.join(tempDir(), 'data');
    fs.mkdirSync(data, { mode: 0o700 });
    const stale = leaveTempFile(path.join(data, 'unit.pmu'), deadPid());
    const server = spawn(process.execPath, [PMU, 'serve', '--data', data, '--no-tcp', '--size', '1MiB', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (chunk) => (stderr += chunk));
    try {
      await waitForLine(server, /connect with/);
      await waitFor('the warning line', () => stderr.includes('pmu: warning:'));
      expect(stderr).toContain(`pmu: warning: removed ${stale}: an unfinished unit (65536 bytes)`);
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
    }
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${signal} while it creates a big unit leaves no temporary file (and no half-made data directory)`, async () => {
      const dir = tempDir();
      const data = path.join(dir, 'data');
      const server = spawn(process.execPath, [PMU, 'serve', '--data', data, '--no-tcp', '--size', '8GiB'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      server.stderr!.on('data', (chunk) => (stderr += chunk));
      const tmp = path.join(data, `unit.pmu.creating.${server.pid}`);
      try {
        await waitFor('the temporary file', () => fs.existsSync(tmp));
        server.kill(signal);
        // Dies of the signal at once (a shell shows 130 or 143), not after the whole zero-fill.
        const started = Date.now();
        expect(await waitForExit(server, 15_000)).toEqual({ code: null, signal });
        expect(Date.now() - started).toBeLessThan(3000);
        expect(stderr).toContain(`pmu: ${signal} while creating ${path.join(data, 'unit.pmu')}: stopped; removed the unfinished ${tmp}`);
        expect(fs.existsSync(tmp)).toBe(false);
        // The start was undone whole: the data directory it made is gone with the file.
        expect(fs.readdirSync(dir)).toEqual([]);
      } finally {
        if (server.exitCode === null) server.kill('SIGKILL');
      }
    });
  }
});
