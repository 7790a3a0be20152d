/**
 * Startup refuses, with one clear line and without touching it, anything it would otherwise
 * destroy or misread; the Unix socket is never reachable by others, not even for a moment.
 * Bounded: ~10 s (a few `pmu serve` children that exit at once).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PmuServer } from '../lib/server/server';
import { UserDirectory } from '../lib/server/users';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { testUsers } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
afterAll(removeTempDirs);

function serve(dir: string, args: string[]) {
  const result = spawnSync(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--data', dir, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function expectOneLineRefusal(result: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(result.code).toBe(1);
  const lines = result.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** A data directory a server has run on once, with a region holding known bytes. */
function existingDataDir(): string {
  const dir = tempDir('pmu-start-');
  const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 4 << 20 });
  unit.createRegion('precious', 4096).writeSync(0, Buffer.from('keep me'), { durability: 'flushed' });
  unit.closeSync();
  new UserDirectory({ admin: { secret: 'admin-secret-0123456789abcdef', admin: true } }).save(path.join(dir, 'users.json'));
  return dir;
}

function regionsOf(dir: string): string[] {
  const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'));
  try {
    return unit.listRegions().map((r) => r.name);
  } finally {
    unit.closeSync();
  }
}

describe('pmu serve refuses what it would destroy or misread', () => {
  test('--socket naming the unit file: refused, the unit and its regions intact', () => {
    const dir = existingDataDir();
    const unitFile = path.join(dir, 'unit.pmu');
    expectOneLineRefusal(serve(dir, ['--socket', unitFile]), /^pmu serve: EINVAL: .*is the unit file itself/);
    expect(fs.statSync(unitFile).size).toBe(4 << 20);
    expect(regionsOf(dir)).toEqual(['precious']);
  });

  test('--socket naming an ordinary file: refused, the file intact', () => {
    const dir = existingDataDir();
    const other = path.join(dir, 'notes.txt');
    fs.writeFileSync(other, 'do not delete');
    expectOneLineRefusal(serve(dir, ['--socket', other]), /^pmu serve: EEXIST: .*notes\.txt exists and is not a socket \(a regular file of 13 bytes\)/);
    expect(fs.readFileSync(other, 'utf8')).toBe('do not delete');
  });

  test('a corrupt admin credential: ECORRUPT naming the file and what to do; nothing rewritten', () => {
    const dir = existingDataDir();
    const credential = path.join(dir, 'admin.credential.json');
    fs.writeFileSync(credential, '{"user": "admin", "secr', { mode: 0o600 });
    expectOneLineRefusal(serve(dir, []), /^pmu serve: ECORRUPT: admin credential .*admin\.credential\.json is not valid JSON.*pmu user add NAME --admin/);
    expect(fs.readFileSync(credential, 'utf8')).toBe('{"user": "admin", "secr');
  });

  test('a null user record: EINVAL naming the user; the file untouched', () => {
    const dir = existingDataDir();
    const users = path.join(dir, 'users.json');
    const text = '{"users": {"admin": {"secret": "admin-secret-0123456789abcdef", "admin": true}, "ghost": null}}\n';
    fs.writeFileSync(users, text, { mode: 0o600 });
    expectOneLineRefusal(serve(dir, []), /^pmu serve: EINVAL: users file .*user 'ghost' must be an object/);
    expect(fs.readFileSync(users, 'utf8')).toBe(text);
  });

  test('{"users": []} is refused, not silently replaced by a new admin', () => {
    const dir = existingDataDir();
    const users = path.join(dir, 'users.json');
    fs.writeFileSync(users, '{"users": []}\n', { mode: 0o600 });
    expectOneLineRefusal(serve(dir, []), /^pmu serve: EINVAL: users file .* must hold \{ "users": \{ NAME/);
    expect(fs.readFileSync(users, 'utf8')).toBe('{"users": []}\n');
    expect(fs.existsSync(path.join(dir, 'admin.credential.json'))).toBe(false);
  });

  test('a bad --log-level is a usage error', () => {
    const result = serve(tempDir('pmu-start-'), ['--log-level', 'loud']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--log-level must be one of fatal, error, warn, info, debug, trace, silent/);
  });

  test('a bad --lone-flush is a usage error naming both choices', () => {
    const result = serve(tempDir('pmu-start-'), ['--lone-flush', 'inline']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--lone-flush must be auto or pool, got "inline"/);
  });
});

describe('the Unix socket', () => {
  test('is created mode 0600 (under umask 000 too), not made private after the fact', async () => {
    const dir = tempDir('pmu-sock-');
    const socketPath = path.join(dir, 'pmu.sock');
    const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 1 << 20 });
    const server = new PmuServer({ unit, users: testUsers(), tcp: false, socket: socketPath });
    // bind() happens inside listen(): look at the socket the moment listen() returns, before any chmod.
    const original = net.Server.prototype.listen;
    let modeAtBind: number | undefined;
    const spy = jest.spyOn(net.Server.prototype, 'listen').mockImplementation(function (this: net.Server, ...args: unknown[]) {
      const result = (original as (...a: unknown[]) => net.Server).apply(this, args);
      if (fs.existsSync(socketPath)) modeAtBind = fs.statSync(socketPath).mode & 0o777;
      return result;
    });
    const umask = process.umask(0);
    try {
      await server.listen();
    } finally {
      process.umask(umask);
      spy.mockRestore();
      await server.close();
    }
    expect(modeAtBind).toBe(0o600);
  });

  test('a dead socket left by a crashed server is replaced; a live one is EBUSY', async () => {
    const dir = tempDir('pmu-sock-');
    const socketPath = path.join(dir, 'pmu.sock');
    const stale = net.createServer();
    await new Promise<void>((resolve) => stale.listen(socketPath, resolve));
    const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 1 << 20 });
    const blocked = new PmuServer({ unit, users: testUsers(), tcp: false, socket: socketPath, closeUnit: false });
    await expect(blocked.listen()).rejects.toMatchObject({ code: 'EBUSY' });
    await new Promise<void>((resolve) => stale.close(() => resolve()));
    // Closing a Unix server in Node unlinks its socket; a crash leaves it behind: make one so.
    const crashed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(crashed.signal).toBe('SIGKILL');
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    const server = new PmuServer({ unit, users: testUsers(), tcp: false, socket: socketPath });
    await expect(server.listen()).resolves.toMatchObject({ unix: `unix:${socketPath}` });
    await server.close();
  });
});
