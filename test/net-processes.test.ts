/**
 * The acceptance scenario: `pmu serve` in one process, a primary writing and a backup reading
 * the same region in two more, over TCP and over the Unix socket. The backup learns that the
 * primary is gone from watchWriters, then verifies every committed record.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const ROOT = path.join(__dirname, '..');
const PMU = path.join(ROOT, 'bin', 'pmu.js');
let dir: string;
let server: ChildProcess;
let urls: { tcp: string; unix: string };
const secrets: Record<string, string> = {};

function pmu(args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, [PMU, ...args], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stdout!.on('data', (chunk) => (text += chunk));
  child.stderr!.on('data', (chunk) => (text += chunk));
  return () => text;
}

beforeAll(async () => {
  dir = tempDir('pmu-proc-');
  for (const user of ['primary', 'backup']) secrets[user] = pmu(['user', 'add', user]).trim();
  server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '32MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const listening = await waitForLine(server, /listening on (tcp:\/\/127\.0\.0\.1:\d+)\n.*listening on (unix:\S+)\n/s);
  urls = { tcp: listening[1], unix: listening[2] };
  for (const transport of ['tcp', 'unix']) pmu(['region', 'create', `ckpt-${transport}`, '--size', '1MiB', '--owner', 'primary', '--grant', 'backup=r']);
});

afterAll(async () => {
  server.kill('SIGTERM');
  const { code } = await waitForExit(server);
  expect(code).toBe(0);
  removeTempDirs();
});

test.each(['tcp', 'unix'] as const)('a primary writes and a backup reads through pmu serve over %s', async (transport) => {
  const region = `ckpt-${transport}`;
  const env = (user: string) => ({ ...process.env, PMU_URL: urls[transport], PMU_USER: user, PMU_SECRET: secrets[user], REGION: region, COUNT: '200' });
  const backup = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'net-backup.js')], { env: env('backup'), stdio: ['ignore', 'pipe', 'pipe'] });
  const backupOutput = collect(backup);
  await waitForLine(backup, /watching/);
  const primary = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'net-primary.js')], { env: env('primary'), stdio: ['ignore', 'pipe', 'pipe'] });
  const primaryOutput = collect(primary);
  const verified = waitForLine(backup, /verified (\d+) after (\w+) (\w+); write (\w+); rights (\w+)/);
  expect((await waitForExit(primary)).code).toBe(0);
  expect(primaryOutput()).toContain('wrote 200');
  const match = await verified.catch((error) => {
    throw new Error(`${error.message}\nbackup said: ${backupOutput()}`);
  });
  expect(match.slice(1)).toEqual(['200', 'primary', 'disconnected', 'EACCESS', 'r']);
  expect((await waitForExit(backup)).code).toBe(0);
});
