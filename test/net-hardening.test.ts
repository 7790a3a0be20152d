/**
 * Names: malformed ones are refused before they reach the unit; the answers do not reveal
 * which users or regions exist; a name sent by a client is echoed only in bounded form.
 * Logs: failed logins, refusals and limit hits reach the server's log, and `pmu serve` writes
 * them as JSON lines at --log-level. Bounded: ~10 s.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { Op } from '../lib/wire/protocol';
import { errorCode, Harness, memoryLog, RawPeer, replyTo, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

// Counts the random secrets made, server side included (the module registry is this file's).
jest.mock('node:crypto', () => {
  const actual = jest.requireActual('node:crypto');
  return { ...actual, randomBytes: jest.fn(actual.randomBytes) };
});

let h: Harness;
let admin: PmuClient;
const log = memoryLog();
beforeAll(async () => {
  h = await startServer({ log });
  admin = await h.connect('admin');
  await admin.createRegion('secret-plans', 4096, { owner: 'primary' });
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

test('CREATE with a lone UTF-16 surrogate in the name is EINVAL and creates nothing', async () => {
  const before = (await admin.listRegions()).length;
  const peer = await RawPeer.connect(h.addresses.tcp);
  await peer.authenticate('admin', SECRETS.admin);
  for (const [id, body] of [
    [2, { name: 'bad\ud800', size: 4096 }],
    [3, { name: 'fine', size: 4096, owner: '\udfff' }],
    [4, { name: 'fine2', size: 4096, grants: [{ user: 'x\ud800', rights: 'r' }] }],
  ] as const) {
    peer.send(Op.CREATE, 0, id, Buffer.from(JSON.stringify(body)));
    const reply = await replyTo(peer, id);
    expect(errorCode(reply)).toBe('EINVAL');
    expect(reply!.body.toString()).toMatch(/lone UTF-16 surrogate/);
  }
  const names = (await admin.listRegions()).map((r) => r.name);
  expect(names).toHaveLength(before);
  expect(names.some((n) => n.includes('\uFFFD'))).toBe(false);
  // OPEN with bytes that are not UTF-8 names nothing (not a region called U+FFFD).
  peer.send(Op.OPEN, 0, 5, Buffer.from([0, 0xff, 0xfe]));
  expect(errorCode(await replyTo(peer, 5))).toBe('ENOENT');
  peer.destroy();
});

test('OPEN answers a missing region and a forbidden one alike', async () => {
  const stranger = await h.connect('stranger');
  const missing = await stranger.openRegion('no-such-plans').catch((e) => e);
  const forbidden = await stranger.openRegion('secret-plans').catch((e) => e);
  expect(missing.code).toBe('ENOENT');
  expect(forbidden.code).toBe(missing.code);
  expect(forbidden.message.replace('secret-plans', 'X')).toBe(missing.message.replace('no-such-plans', 'X'));
});

test('an unknown user costs the same work as a wrong secret: no per-attempt secret is made', async () => {
  const randomBytes = crypto.randomBytes as unknown as jest.Mock;
  const attempt = async (user: string) => {
    const before = randomBytes.mock.calls.length;
    await expect(PmuClient.connect(h.addresses.tcp, { user, secret: 'wrong-secret-0123456789' })).rejects.toMatchObject({ code: 'EAUTH' });
    return randomBytes.mock.calls.length - before;
  };
  const known = await attempt('primary');
  const unknown = await attempt('nobody-by-this-name');
  expect(known).toBeGreaterThan(0); // the nonces: the count is real
  expect(unknown).toBe(known);
});

test('EAUTH echoes at most a bounded piece of the user name sent', async () => {
  const peer = await RawPeer.connect(h.addresses.tcp);
  const reply = await peer.authenticate('A'.repeat(4000), 'x'.repeat(32));
  expect(errorCode(reply)).toBe('EAUTH');
  expect(reply.body.length).toBeLessThan(200);
  await peer.waitClosed();
});

test('failed logins and refusals are logged with who, where and why (limit hits: net-limits)', async () => {
  await expect(PmuClient.connect(h.addresses.tcp, { user: 'primary', secret: 'wrong-secret-0123456789' })).rejects.toMatchObject({ code: 'EAUTH' });
  const failed = log.events.find((e) => e.event === 'auth.failed' && e.user === 'primary');
  expect(failed).toMatchObject({ level: 'warn', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  const stranger = await h.connect('stranger');
  await expect(stranger.createRegion('mine', 4096)).rejects.toMatchObject({ code: 'EACCESS' });
  expect(log.events.find((e) => e.event === 'request.refused' && e.user === 'stranger' && e.code === 'EACCESS')).toMatchObject({ code: 'EACCESS', message: expect.stringContaining('needs an admin') });
});

describe('pmu serve', () => {
  const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await waitForExit(child);
    }
  });

  test('--log-level info writes a JSON line for a failed login on stderr', async () => {
    const dir = tempDir('pmu-log-');
    child = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--log-level', 'info'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const [, url] = await waitForLine(child, /listening on (tcp:\S+)/);
    await expect(PmuClient.connect(url, { user: 'intruder', secret: 'guessed-secret-0123456789' })).rejects.toMatchObject({ code: 'EAUTH' });
    await waitFor('the log line', () => stderr.includes('auth.failed'));
    const line = JSON.parse(stderr.split('\n').find((l) => l.includes('auth.failed'))!);
    expect(line).toMatchObject({ level: 40, event: 'auth.failed', user: 'intruder', name: 'pmu' });
  });

  const openssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!openssl) console.warn('net-hardening: openssl is not on this machine, so the `pmu serve --tls-cert` test is skipped (apt-get install -y openssl)');
  (openssl || process.env.CI === 'true' ? test : test.skip)('--tls-cert/--tls-key serve tls://, and the CLI connects with --tls-ca or the recorded credential', async () => {
    const dir = tempDir('pmu-tls-cli-');
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    child = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--no-tcp', '--tls-cert', cert, '--tls-key', key], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = await waitForExit(child);
    expect(exited.code).toBe(2);
    expect(stderr).toMatch(/make no sense with --no-tcp/);
    child = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--tls-cert', cert, '--tls-key', key], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const [, url] = await waitForLine(child, /listening on (tls:\/\/\S+)/);
    const run = (args: string[]) => execFileSync(process.execPath, [PMU, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '' } });
    const credential = JSON.parse(fs.readFileSync(path.join(dir, 'pmu-data', 'admin.credential.json'), 'utf8'));
    expect(credential).toMatchObject({ tcp: url, tlsCa: cert });
    run(['region', 'create', 'over-tls', '--size', '4096', '--url', url, '--tls-ca', cert]);
    expect(run(['region', 'list', '--url', url])).toMatch(/^over-tls\t4096 bytes/m);
  });
});

test('a flood of failed logins costs the log a bounded number of lines a second, the rest counted as suppressed', async () => {
  const flood = memoryLog();
  const server = await startServer({ log: flood, logLinesPerSecond: 5 });
  try {
    const started = Date.now();
    await Promise.all(Array.from({ length: 30 }, () => PmuClient.connect(server.addresses.tcp, { user: 'nobody', secret: 'wrong-secret-0123456789' }).catch(() => undefined)));
    const seconds = Math.floor((Date.now() - started) / 1000) + 2;
    const lines = flood.events.filter((e) => e.event === 'auth.failed');
    expect(lines.length).toBeLessThanOrEqual(5 * seconds);
    expect(server.server.stats().refusals.EAUTH).toBe(30);
    // The next line that goes out (in a later second) says how many were left out: none is lost.
    let attempts = 30;
    const accounted = () => flood.events.filter((e) => e.event === 'auth.failed').reduce((sum, e) => sum + 1 + (Number(e.suppressed) || 0), 0);
    await waitFor(
      'every failed login accounted for',
      async () => {
        if (accounted() === attempts) return true;
        await PmuClient.connect(server.addresses.tcp, { user: 'nobody', secret: 'wrong-secret-0123456789' }).catch(() => undefined);
        attempts++;
        return false;
      },
      10_000,
      100,
    );
  } finally {
    await server.close();
  }
});
