/**
 * The CLI's failure paths as a shell user meets them: one line, an exit status, nothing left
 * behind, never a hang. Commands run as child processes (bin/pmu.js over dist/), bounded by
 * waitForExit; one `pmu serve` on a free port serves the client commands. ~10 s in all.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
let dir: string;
let server: ChildProcess;

async function pmu(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const child = spawn(process.execPath, [PMU, ...args], { cwd: options.cwd ?? dir, env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const { code } = await waitForExit(child, options.timeoutMs ?? 15_000).catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  dir = tempDir('pmu-cli-errors-');
  server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '16MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForLine(server, /connect with: .*\n/);
});

afterAll(async () => {
  if (server.exitCode === null) server.kill('SIGINT');
  await waitForExit(server);
  removeTempDirs();
});

describe('pmu tail on a region that is not a checkpoint log', () => {
  test('--once exits with a clear EINVAL (not ECORRUPT) when the region holds other bytes', async () => {
    expect((await pmu(['region', 'create', 'raw', '--size', '64KiB'])).code).toBe(0);
    const child = spawn(process.execPath, [PMU, 'write', 'raw'], { cwd: dir, env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '' }, stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin!.end('just some bytes, no header');
    expect((await waitForExit(child)).code).toBe(0);
    const result = await pmu(['tail', 'raw', '--once']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmu tail: EINVAL: region 'raw' is not a checkpoint log .*use pmu read for raw bytes\n$/);
    expect(result.stderr).not.toContain('ECORRUPT');
  });

  test('--once on a region never formatted says there is no log yet, and exits', async () => {
    expect((await pmu(['region', 'create', 'empty', '--size', '64KiB'])).code).toBe(0);
    const result = await pmu(['tail', 'empty', '--once']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmu tail: ENOENT: region 'empty' holds no checkpoint log yet/);
    expect(result.stderr).not.toMatch(/CheckpointWriter|\(\)/);
  });

  test('following (no --once) a non-log region exits too instead of waiting forever', async () => {
    const result = await pmu(['tail', 'raw', '--interval', '5']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is not a checkpoint log');
  });
});

describe('command-line nits', () => {
  test('a negative number is rejected by the option\'s own check, not as an "ambiguous" argument', async () => {
    for (const args of [['read', 'raw', '--offset', '-5'], ['read', 'raw', '--length', '-1'], ['tail', 'raw', '--interval', '-10']]) {
      const result = await pmu(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/must be an integer from \d+ to \d+, got "-\d+"/);
      expect(result.stderr).not.toContain('ambiguous');
    }
  });

  test('messages do not name JavaScript calls', async () => {
    const result = await pmu(['read', 'no-such-region']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ENOENT: .*no region named 'no-such-region'/);
    expect(result.stderr).not.toMatch(/\w\(\)/);
  });

  test('user add refuses a name that would not survive a grant or a shell', async () => {
    const users = path.join(dir, 'pmu-data', 'users.json');
    const before = fs.readFileSync(users, 'utf8');
    for (const bad of ['bad name!', 'a=b', 'x/y', 'x'.repeat(65)]) {
      const result = await pmu(['user', 'add', bad]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('a user name is 1 to 64 letters, digits');
    }
    expect(fs.readFileSync(users, 'utf8')).toBe(before);
    expect((await pmu(['user', 'add', 'good.name-1'])).code).toBe(0);
  });

  test('--data with a missing parent is refused, and nothing is created', async () => {
    const deep = path.join(dir, 'no', 'such', 'deep', 'dir');
    for (const args of [['serve', '--data', deep, '--port', '0'], ['user', 'add', 'someone', '--data', deep]]) {
      const result = await pmu(args);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/ENOENT: cannot create the data directory .*its parent .* does not exist/);
    }
    expect(fs.existsSync(path.join(dir, 'no'))).toBe(false);
  });

  test('a serve that fails on a busy port leaves no unit file, users file or credential behind', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const fresh = path.join(dir, 'busy-port');
      const result = await pmu(['serve', '--data', fresh, '--port', String(port), '--size', '1MiB']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/ECONNECTION: listen on 127\.0\.0\.1:\d+ failed: EADDRINUSE/);
      expect(fs.existsSync(fresh)).toBe(false);

      // An existing directory (a users file made by `pmu user add` first) keeps what it had.
      const existing = path.join(dir, 'existing');
      expect((await pmu(['user', 'add', 'primary', '--data', existing])).code).toBe(0);
      const before = fs.readdirSync(existing).sort();
      const users = fs.readFileSync(path.join(existing, 'users.json'), 'utf8');
      expect((await pmu(['serve', '--data', existing, '--port', String(port), '--size', '1MiB'])).code).toBe(1);
      expect(fs.readdirSync(existing).sort()).toEqual(before);
      expect(fs.readFileSync(path.join(existing, 'users.json'), 'utf8')).toBe(users);
    } finally {
      blocker.close();
    }
  });

  test('a serve that fails on a too-small --size leaves nothing behind', async () => {
    const fresh = path.join(dir, 'tiny');
    const result = await pmu(['serve', '--data', fresh, '--port', '0', '--size', '4096']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(fresh)).toBe(false);
  });
});

describe('pmu bench as installed', () => {
  test('an unknown suite or option is one usage line, exit 2, no stack trace', async () => {
    for (const args of [['bench', '--only', 'nope'], ['bench', '--only', 'floors,nope']]) {
      const result = await pmu(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^pmu bench: .* \(usage: pmu bench \[--quick\] .*suites: floors, embedded, remote, durable, checkpoint, peers, clients, primaries, regions, unit-size, backup-lag, record-size\)\n$/);
    }
    // An unknown option is caught by pmu's own parser, in the words every command uses.
    const result = await pmu(['bench', '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('pmu bench: unknown option --bogus (pmu help bench)\n');
  });

  test('a quick run of one suite writes its results under the working directory', async () => {
    const cwd = tempDir('pmu-bench-cwd-');
    const result = await pmu(['bench', '--quick', '--only', 'floors'], { cwd, timeoutMs: 60_000 });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(written to pmu-bench-results/latest.md and latest.json)');
    const run = JSON.parse(fs.readFileSync(path.join(cwd, 'pmu-bench-results', 'latest.json'), 'utf8'));
    expect(run.command).toBe('pmu bench --quick --only floors');
    expect(run.rows.length).toBeGreaterThan(0);
  });
});

describe('without the addon (npm install --ignore-scripts, no prebuild fits)', () => {
  // node-gyp-build honours PMU_PREBUILD: pointing it at an empty directory hides every build.
  const env = () => ({ PMU_PREBUILD: tempDir('pmu-no-addon-') });

  test('pmu --help and command help work', async () => {
    const top = await pmu(['--help'], { env: env() });
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^Usage: pmu COMMAND/);
    const serveHelp = await pmu(['serve', '--help'], { env: env() });
    expect(serveHelp.code).toBe(0);
  });

  test('a client command still works: it needs no addon', async () => {
    const result = await pmu(['region', 'list'], { env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('raw');
  });

  test('a command that needs it fails in one line saying what to install', async () => {
    const result = await pmu(['inspect', path.join(dir, 'pmu-data', 'unit.pmu')], { env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmu inspect: ESYS: the pmu addon is not available for linux-\w+ .*install python3, make and g\+\+, then run `npm rebuild pmu`/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('a reader that goes away', () => {
  test('`pmu --help | true` exits 0 with nothing on stderr (EPIPE is not a crash)', async () => {
    // `true` exits without reading: pmu's write meets a closed pipe.
    const child = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${PMU}" inspect --help | true; echo "status=\${PIPESTATUS[0]}" >&2`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    await waitForExit(child, 15_000);
    expect(stderr).toBe('status=0\n');
  });
});
