/**
 * Flush errors and allocation failures, injected for real: child processes run under strace
 * with one system call made to fail (msync, fsync, fdatasync, fallocate, pwrite64; EIO and
 * ENOSPC), embedded and through `pmu serve`. What must hold: no write is acknowledged whose
 * flush failed, every waiter of a failed group flush gets EIO naming the region and the file,
 * later writes are refused, reads still work, close rejects, allocation failures are a clean
 * ENOSPC, and no process ever dies of a signal. Bound: about 15 s (each child ~0.5 s).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistentMemoryUnit, PmuClient } from '../lib';
import { hasCommand, required, runScenario, straceArgs } from './helpers/fault';
import { removeTempDirs, tempDir, tempFile } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const enabled = required('strace', hasCommand('strace'), 'apt-get install -y strace');
const suite = enabled ? describe : describe.skip;

afterAll(removeTempDirs);

const EIO = 'msync:error=EIO';

async function unitWithRegion(regionSize = 64 << 10): Promise<string> {
  const file = tempFile();
  const unit = PersistentMemoryUnit.open(file, { size: 4 << 20, maxRegions: 16 });
  unit.createRegion('r', regionSize).writeSync(0, Buffer.from('before'));
  await unit.close();
  return file;
}

function regionsOf(file: string): { names: string[]; note: string } {
  const unit = PersistentMemoryUnit.open(file);
  const result = { names: unit.listRegions().map((r) => r.name), note: unit.info().recoveryNote };
  unit.closeSync();
  return result;
}

suite('embedded, under strace', () => {
  test('the harness itself: with nothing injected every write is acknowledged and close resolves', async () => {
    const file = await unitWithRegion();
    const run = await runScenario([], 'group-commit', [file, '8']);
    expect(run.signal).toBeNull();
    expect(run.result.writes.every((w: { ok: boolean }) => w.ok)).toBe(true);
    expect(run.result.close.ok).toBe(true);
  });

  test('a group flush whose msync fails: every waiting writer gets EIO naming the region and file, nothing is acked, later writes refused, reads work, close rejects', async () => {
    const file = await unitWithRegion();
    const run = await runScenario([EIO], 'group-commit', [file, '32']);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    const { writes, later, laterMapped, laterAsync, read, close } = run.result;
    expect(writes).toHaveLength(32);
    for (const write of writes) {
      expect(write.ok).toBe(false);
      expect(write.code).toBe('EIO');
      expect(write.message).toContain("region 'r'");
      expect(write.message).toContain(file);
    }
    for (const refused of [later, laterMapped, laterAsync]) expect(refused).toMatchObject({ ok: false, code: 'EIO' });
    expect(read.ok).toBe(true);
    expect(close).toMatchObject({ ok: false, code: 'EIO' });
    expect(close.message).toContain(file);
  });

  test("a lone writer's flush, made on the main thread (loneFlush 'inline'): msync EIO is EIO for it too, never an ack, and final", async () => {
    const file = await unitWithRegion();
    const run = await runScenario([EIO], 'group-commit', [file, '1']);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    const { writes, later, laterMapped, laterAsync, read, close } = run.result;
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ ok: false, code: 'EIO' });
    expect(writes[0].message).toContain("region 'r'");
    for (const refused of [later, laterMapped, laterAsync]) expect(refused).toMatchObject({ ok: false, code: 'EIO' });
    expect(read.ok).toBe(true);
    expect(close).toMatchObject({ ok: false, code: 'EIO' });
  });

  test("a server's lone remote writer, flushed on the event loop ('auto'): msync EIO is EIO for it, never an ack, and final", async () => {
    const file = await unitWithRegion();
    const run = await runScenario([EIO], 'server-lone-flush', [file]);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    const { write, inlineFlushes, flushes, later, read, close } = run.result;
    // The one flush the server made was the lone writer's, on the event loop.
    expect({ inlineFlushes, flushes }).toEqual({ inlineFlushes: 1, flushes: 1 });
    expect(write).toMatchObject({ ok: false, code: 'EIO' });
    expect(later).toMatchObject({ ok: false, code: 'EIO' });
    expect(read).toMatchObject({ ok: true, value: 'mapped' });
    expect(close).toMatchObject({ ok: false, code: 'EIO' });
  });

  test('a large write (1 MiB and more, copied in by pwrite) whose pwrite fails is EIO, never acknowledged, and final', async () => {
    const file = tempFile();
    const unit = PersistentMemoryUnit.open(file, { size: 8 << 20, maxRegions: 4 });
    unit.createRegion('r', 4 << 20).writeSync(0, Buffer.from('before'));
    await unit.close();
    const run = await runScenario(['pwrite64:error=EIO'], 'large-write', [file]);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    expect(run.result.write).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.later).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.read).toMatchObject({ ok: true, value: 'before' });
    expect(run.result.close).toMatchObject({ ok: false, code: 'EIO' });
    // Without the fault the same write is acknowledged and reads back.
    const ok = await runScenario([], 'large-write', [file]);
    expect(ok.result.write.ok).toBe(true);
    expect(ok.result.close.ok).toBe(true);
  });

  test('an fsync error at open fails the open with EIO instead of being swallowed', async () => {
    const file = await unitWithRegion();
    const run = await runScenario(['fsync:error=EIO'], 'open', [file]);
    expect(run.signal).toBeNull();
    expect(run.result.open).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.open.message).toMatch(/fsync/);
    // Without the fault the same file opens: the refusal came from the injected error.
    expect((await runScenario([], 'open', [file])).result.open.ok).toBe(true);
  });

  test('a table update whose copy flush fails is EIO, never acknowledged, and rolls back at the next open', async () => {
    const file = await unitWithRegion();
    const run = await runScenario([EIO], 'table-update', [file]);
    expect(run.signal).toBeNull();
    expect(run.result.created).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.later).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.read.ok).toBe(true);
    expect(run.result.close).toMatchObject({ ok: false, code: 'EIO' });
    expect(regionsOf(file).names).toEqual(['r']);
  });

  test('a table update whose commit-record flush fails is EIO too', async () => {
    const file = await unitWithRegion();
    // Both flushes of a commit run on the main thread: the second is the commit record's.
    const run = await runScenario(['msync:error=EIO:when=2'], 'table-update', [file]);
    expect(run.signal).toBeNull();
    expect(run.result.created).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.later).toMatchObject({ ok: false, code: 'EIO' });
    expect(run.result.close).toMatchObject({ ok: false, code: 'EIO' });
  });

  // createRegion zeroes on this thread; createRegionAsync on the libuv pool: the same faults, the same outcomes.
  test.each([
    ['createRegion', []],
    ['createRegionAsync', ['async']],
  ])("zeroing a reused extent (%s): an fdatasync error is EIO and final; a pwrite ENOSPC is a clean ENOSPC and the unit carries on", async (_how, how) => {
    const file = tempFile();
    const unit = PersistentMemoryUnit.open(file, { size: 4 << 20, maxRegions: 16 });
    unit.createRegion('r', 4096);
    unit.createRegion('old', 256 << 10).writeSync(0, Buffer.alloc(256 << 10, 0xab));
    unit.deleteRegion('old');
    await unit.close();

    const eio = await runScenario(['fdatasync:error=EIO'], 'reuse-extent', [file, String(256 << 10), ...how]);
    expect(eio.signal).toBeNull();
    expect(eio.result.created).toMatchObject({ ok: false, code: 'EIO' });
    expect(eio.result.created.message).toMatch(/fdatasync/);
    expect(eio.result.created.message).toContain(file);
    expect(eio.result.write).toMatchObject({ ok: false, code: 'EIO' });
    expect(eio.result.close).toMatchObject({ ok: false, code: 'EIO' });
    expect(regionsOf(file).names).toEqual(['r']);

    const full = await runScenario(['pwrite64:error=ENOSPC'], 'reuse-extent', [file, String(256 << 10), ...how]);
    expect(full.signal).toBeNull();
    expect(full.result.created).toMatchObject({ ok: false, code: 'ENOSPC' });
    expect(full.result.created.message).toMatch(/free space/);
    expect(full.result.write.ok).toBe(true);
    expect(full.result.close.ok).toBe(true);
    expect(regionsOf(file).names).toEqual(['r']);

    // And without a fault the extent is reused, and reads as zeros.
    const ok = await runScenario([], 'reuse-extent', [file, String(256 << 10), ...how]);
    expect(ok.result.created.ok).toBe(true);
    const reopened = PersistentMemoryUnit.open(file);
    expect(reopened.openRegion('again').readSync(0, 256 << 10).every((b) => b === 0)).toBe(true);
    reopened.closeSync();
  });

  for (const [injection, code] of [
    ['fallocate:error=ENOSPC', 'ENOSPC'],
    ['pwrite64:error=ENOSPC', 'ENOSPC'],
    ['fdatasync:error=EIO', 'EIO'],
    ['fsync:error=EIO', 'EIO'],
  ] as const) {
    test(`creating a unit file with ${injection} fails with ${code} and leaves no file behind`, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'unit.pmu');
      const run = await runScenario([injection], 'create', [file, String(2 << 20)]);
      expect(run.signal).toBeNull();
      expect(run.result.created).toMatchObject({ ok: false, code });
      expect(run.result.created.message).toContain(file);
      expect(fs.readdirSync(dir)).toEqual([]);
    });
  }

  test('a sparse unit file is allocated at open, or refused with ENOSPC when the allocation fails; never mapped with holes', async () => {
    const file = await unitWithRegion(1 << 20);
    const sparse = path.join(path.dirname(file), 'sparse.pmu');
    expect(spawnSync('cp', ['--sparse=always', file, sparse]).status).toBe(0);
    const size = fs.statSync(sparse).size;
    expect(fs.statSync(sparse).blocks * 512).toBeLessThan(size);

    const refused = await runScenario(['fallocate:error=ENOSPC'], 'open', [sparse]);
    expect(refused.signal).toBeNull();
    expect(refused.result.open).toMatchObject({ ok: false, code: 'ENOSPC' });
    expect(refused.result.open.message).toMatch(/holes/);
    expect(refused.result.open.message).toContain(sparse);

    const opened = await runScenario([], 'open', [sparse]);
    expect(opened.result.open.ok).toBe(true);
    expect(fs.statSync(sparse).blocks * 512).toBeGreaterThanOrEqual(size);
  });
});

/** The process strace runs (its child): signals for the server go there, not to strace. */
function traceeOf(strace: ChildProcess): number {
  const found = spawnSync('pgrep', ['-P', String(strace.pid)]).stdout.toString().trim().split('\n')[0];
  if (!found) throw new Error(`no process under strace ${strace.pid}`);
  return Number(found);
}

suite('pmu serve, under strace', () => {
  let server: ChildProcess | undefined;
  let tracee = 0;

  afterEach(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      if (tracee) process.kill(tracee, 'SIGKILL');
      server.kill('SIGKILL');
      await waitForExit(server);
    }
  });

  test('remote writers of a group flush whose msync fails each get EIO; nothing acked; later writes refused; reads work; shutdown reports the failure', async () => {
    const dir = tempDir('pmu-serve-fault-');
    const data = path.join(dir, 'pmu-data');
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    const unit = PersistentMemoryUnit.open(path.join(data, 'unit.pmu'), { size: 4 << 20 });
    unit.createRegion('r', 64 << 10).writeSync(0, Buffer.from('before'));
    await unit.close();

    const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
    server = spawn('strace', [...straceArgs([EIO]), process.execPath, PMU, 'serve', '--data', data, '--no-tcp'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (chunk) => (stderr += chunk));
    const unix = (await waitForLine(server, /listening on (unix:\S+)/, 15_000))[1];
    tracee = traceeOf(server);
    const credential = JSON.parse(fs.readFileSync(path.join(data, 'admin.credential.json'), 'utf8'));
    const client = await PmuClient.connect(unix, { user: credential.user, secret: credential.secret });
    try {
      const region = await client.openRegion('r');
      const results = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => region.write(i * 64, Buffer.alloc(64, i + 1))));
      for (const result of results) {
        expect(result.status).toBe('rejected');
        expect((result as PromiseRejectedResult).reason.code).toBe('EIO');
        // The server's file path stays on the server (its log has it); the client reads a name for it.
        expect((result as PromiseRejectedResult).reason.message).not.toContain(data);
        expect((result as PromiseRejectedResult).reason.message).toMatch(/the server's PMU file/);
      }
      await expect(region.write(0, Buffer.from('later'))).rejects.toMatchObject({ code: 'EIO' });
      await expect(region.write(0, Buffer.from('later'), { durability: 'mapped' })).rejects.toMatchObject({ code: 'EIO' });
      expect((await region.read(0, 6)).length).toBe(6);
    } finally {
      await client.close();
    }
    process.kill(tracee, 'SIGTERM');
    const exit = await waitForExit(server, 15_000);
    expect(exit.signal).toBeNull();
    expect(exit.code).not.toBe(0); // the final close rejected
    expect(stderr).toMatch(/flush failed/);
  });
});
