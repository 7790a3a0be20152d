/**
 * `pmu serve` at startup: it writes only what is new (a restart on a full disk serves, and
 * rewrites nothing), and every startup failure exits 1 with a message naming the path and what
 * to do, leaving nothing behind and nothing listening. The full and read-only file systems are
 * real: a small tmpfs mounted by the test (needs root; skipped loudly otherwise). Bound: ~10 s.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort } from './helpers/etcd';
import { hasCommand, isRoot, required } from './helpers/fault';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const ENV = { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', PMU_USERS_FILE: '' };

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; output: () => Exited } {
  const child = spawn(process.execPath, [PMU, 'serve', ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  return { child, output: () => ({ code: child.exitCode, stdout, stderr }) };
}

async function failedStart(args: string[]): Promise<Exited> {
  const { child, output } = start(args);
  await waitForExit(child, 15_000);
  return output();
}

/** Serves until the listening line, then stops it with SIGTERM; resolves with what it printed. */
async function serveOnce(args: string[]): Promise<Exited> {
  const { child, output } = start(args);
  await waitForLine(child, /listening on tcp:/, 15_000).catch((error) => {
    throw new Error(`${(error as Error).message}; stderr: ${output().stderr}`);
  });
  child.kill('SIGTERM');
  await waitForExit(child, 15_000);
  return output();
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Fills the file system holding `dir` to the last byte. */
function fill(dir: string): void {
  const fd = fs.openSync(path.join(dir, 'filler'), 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
}

test('a unit file that is not a PMU file: exit 1, the path and what to do, nothing listening', async () => {
  const dir = tempDir('pmu-startup-');
  fs.writeFileSync(path.join(dir, 'unit.pmu'), 'not a pmu file');
  const port = await freePort();
  const result = await failedStart(['--data', dir, '--port', String(port)]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`ECORRUPT: ${path.join(dir, 'unit.pmu')}`);
  expect(result.stderr).toMatch(/move it away and start with another --data DIR/);
  expect(await refused(port)).toBe(true);
  expect(fs.existsSync(path.join(dir, 'admin.credential.json'))).toBe(false);
  expect(fs.existsSync(path.join(dir, 'users.json'))).toBe(false);
});

const enabled = required('root (to mount a tmpfs)', isRoot, 'run the tests as root') && required('mount', hasCommand('mount'), 'apt-get install -y mount');
const suite = enabled ? describe : describe.skip;

suite('pmu serve on a small tmpfs', () => {
  let mnt = '';
  let mounted = false;

  beforeAll(() => {
    mnt = path.join(tempDir('pmu-startup-fs-'), 'mnt');
    fs.mkdirSync(mnt);
    const result = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mnt], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`mount -t tmpfs failed: ${result.stderr}`);
    mounted = true;
  });
  afterAll(() => {
    if (mounted && spawnSync('umount', [mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
    removeTempDirs();
  });

  test('a restart on a full disk rewrites nothing and serves; one with a new address is refused: exit 1, the path, what to do, nothing listening', async () => {
    const data = path.join(mnt, 'data');
    const credentialFile = path.join(data, 'admin.credential.json');
    const usersFile = path.join(data, 'users.json');
    const port = await freePort();
    const args = ['--data', data, '--port', String(port), '--size', '1MiB'];
    const first = await serveOnce(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/created the admin credential/);
    const before = { credential: fs.statSync(credentialFile), users: fs.statSync(usersFile), text: fs.readFileSync(credentialFile, 'utf8') };

    fill(mnt);
    const again = await serveOnce(args);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/pmu: serving .*unit\.pmu/);
    // Not rewritten (a rewrite is a rename: a new inode), not even touched.
    expect(fs.statSync(credentialFile)).toMatchObject({ ino: before.credential.ino, mtimeMs: before.credential.mtimeMs });
    expect(fs.statSync(usersFile)).toMatchObject({ ino: before.users.ino, mtimeMs: before.users.mtimeMs });
    // The pid file cannot be written: said, with the path, and the server serves anyway.
    expect(again.stderr).toContain(`pmu: warning: cannot write ${path.join(data, 'pmu.pid')}: no space left on device (ENOSPC)`);

    // A new port is new content for the credential: that cannot be written, so it does not start.
    const otherPort = await freePort();
    const moved = await failedStart(['--data', data, '--port', String(otherPort), '--size', '1MiB']);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain(`pmu serve: ENOSPC: cannot write ${credentialFile}: no space left on device (ENOSPC): free space on that file system or use --data DIR`);
    expect(await refused(otherPort)).toBe(true);
    expect(fs.readFileSync(credentialFile, 'utf8')).toBe(before.text);
    expect(fs.readdirSync(data).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    fs.rmSync(path.join(mnt, 'filler'));
  }, 30_000);

  test('a first start on a full disk: exit 1 naming the file it could not write, and nothing left behind', async () => {
    fill(mnt);
    try {
      const data = path.join(mnt, 'fresh');
      const port = await freePort();
      const result = await failedStart(['--data', data, '--port', String(port), '--size', '1MiB']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`pmu serve: ENOSPC: cannot (write|create) ${data}/\\S+: no space left on device \\(ENOSPC\\): free space on that file system or use --data DIR`));
      expect(fs.existsSync(data)).toBe(false);
      expect(await refused(port)).toBe(true);
    } finally {
      fs.rmSync(path.join(mnt, 'filler'));
    }
  }, 30_000);

  test('a read-only file system: exit 1, EROFS with the path and what to do', async () => {
    const data = path.join(mnt, 'ro');
    const port = await freePort();
    expect((await serveOnce(['--data', data, '--port', String(port), '--size', '1MiB'])).code).toBe(0);
    expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
    try {
      const result = await failedStart(['--data', data, '--port', String(await freePort()), '--size', '1MiB']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`pmu serve: EACCESS: cannot open ${path.join(data, 'unit.pmu')}: read-only file system (EROFS): remount it read-write or use --data DIR`);
    } finally {
      spawnSync('mount', ['-o', 'remount,rw', mnt]);
    }
  }, 30_000);
});
