/** CLI smoke tests: `node bin/pmu.js ...` in a temp data dir, a server on a free port. */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
let dir: string;
let server: ChildProcess;
let serverOutput = '';
let tcpUrl: string;

function pmu(args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(process.execPath, [PMU, ...args], { cwd: dir, input: options.input, env: { ...process.env, PMU_URL: '', PMU_USER: '', PMU_SECRET: '', ...options.env }, timeout: 20000 });
  return { code: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString(), raw: result.stdout };
}

beforeAll(async () => {
  dir = tempDir('pmu-cli-');
  server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '16MiB'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.on('data', (chunk) => (serverOutput += chunk));
  const match = await waitForLine(server, /connect with: .*\n/);
  tcpUrl = /listening on (tcp:\/\/\S+)/.exec(serverOutput)![1];
  expect(match).toBeTruthy();
});

afterAll(async () => {
  if (server.exitCode === null) server.kill('SIGINT');
  await waitForExit(server);
  removeTempDirs();
});

test('pmu serve on a fresh directory makes the data dir, the file, an admin credential, and says how to connect', () => {
  const data = path.join(dir, 'pmu-data');
  expect(serverOutput).toContain(`created ${path.join(data, 'unit.pmu')} (16777216 bytes)`);
  expect(serverOutput).toMatch(/listening on tcp:\/\/127\.0\.0\.1:\d+/);
  expect(serverOutput).toContain(`listening on unix:${path.join(data, 'pmu.sock')}`);
  expect(serverOutput).toContain(path.join(data, 'admin.credential.json'));
  expect(serverOutput).toContain('connect with:');
  for (const file of ['users.json', 'admin.credential.json']) expect(fs.statSync(path.join(data, file)).mode & 0o777).toBe(0o600);
  expect(fs.statSync(path.join(data, 'unit.pmu')).size).toBe(16 << 20);
});

test('--help on the tool and on each command', () => {
  const top = pmu(['--help']);
  expect(top.code).toBe(0);
  for (const command of ['serve', 'region', 'write', 'read', 'inspect', 'user']) {
    expect(top.stdout).toContain(command);
    const help = pmu([command, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage/);
  }
});

test('region create, list, grant, write from stdin and a file, read to stdout, delete', () => {
  expect(pmu(['user', 'add', 'backup']).code).toBe(0);
  const created = pmu(['region', 'create', 'cli', '--size', '64KiB', '--grant', 'backup=r']);
  expect(created.stderr).toBe('');
  expect(created.stdout).toMatch(/created region 'cli': 65536 bytes/);
  expect(pmu(['region', 'list']).stdout).toMatch(/^cli\t65536 bytes.*grants backup=r/m);
  expect(pmu(['write', 'cli', '--offset', '100'], { input: 'from stdin' }).code).toBe(0);
  const file = path.join(dir, 'payload.bin');
  fs.writeFileSync(file, Buffer.from([1, 2, 3, 4]));
  expect(pmu(['write', 'cli', '--file', file, '--durability', 'mapped', '--url', tcpUrl]).code).toBe(0);
  expect(pmu(['read', 'cli', '--offset', '100', '--length', '10']).stdout).toBe('from stdin');
  expect([...pmu(['read', 'cli', '--length', '4']).raw]).toEqual([1, 2, 3, 4]);
  expect(pmu(['read', 'cli']).raw.length).toBe(65536);
  expect(pmu(['region', 'grant', 'cli', 'primary=rw']).stdout).toContain('backup=r, primary=rw');
  expect(pmu(['region', 'grant', 'cli', '--revoke', 'primary']).stdout).toContain("grants: backup=r");
  expect(pmu(['region', 'delete', 'cli']).stdout).toContain("deleted region 'cli'");
});

test('a user from PMU_USER / PMU_SECRET gets only its rights', () => {
  const secret = pmu(['user', 'add', 'reader']).stdout.trim();
  expect(secret).toMatch(/^[0-9a-f]{64}$/);
  pmu(['region', 'create', 'shared', '--size', '4096', '--grant', 'reader=r']);
  const env = { PMU_URL: tcpUrl, PMU_USER: 'reader', PMU_SECRET: secret };
  expect(pmu(['read', 'shared', '--length', '4'], { env }).code).toBe(0);
  const refused = pmu(['write', 'shared'], { input: 'x', env });
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/^pmu write: EACCESS: .+\n$/);
  const notAdmin = pmu(['region', 'create', 'mine', '--size', '4096'], { env });
  expect(notAdmin.stderr).toMatch(/EACCESS/);
});

test('pmu user remove tells the running server, which closes that user\'s live connection at once', async () => {
  const { PmuClient } = await import('../lib/client/client');
  const secret = pmu(['user', 'add', 'leaver']).stdout.trim();
  pmu(['region', 'create', 'left', '--size', '4096', '--grant', 'leaver=rw']);
  const client = await PmuClient.connect(tcpUrl, { user: 'leaver', secret });
  try {
    const region = await client.openRegion('left');
    await region.write(0, Buffer.from('here'));
    const removed = pmu(['user', 'remove', 'leaver']);
    expect(removed.code).toBe(0);
    expect(removed.stderr).toMatch(/told the running server \(pid \d+\) to reload/);
    await waitFor('the connection to close', () => !client.connected);
    await expect(region.write(0, Buffer.from('gone'))).rejects.toMatchObject({ code: 'EAUTH' });
    expect(pmu(['user', 'remove', 'admin']).stderr).toMatch(/last admin/);
  } finally {
    await client.close();
  }
});

test('errors are one line on stderr with a non-zero exit', () => {
  const missing = pmu(['read', 'no-such-region']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/^pmu read: ENOENT: [^\n]+\n$/);
  const usage = pmu(['region', 'create', 'x']);
  expect(usage.code).toBe(2);
  expect(usage.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(pmu(['frobnicate']).code).toBe(2);
  const badSecret = pmu(['region', 'list', '--url', tcpUrl, '--user', 'admin', '--secret', 'wrong-secret-0123456789']);
  expect(badSecret.code).toBe(1);
  expect(badSecret.stderr).toMatch(/^pmu region: EAUTH: /);
  const nobody = pmu(['region', 'list', '--url', 'tcp://127.0.0.1:1', '--user', 'a', '--secret', 'b']);
  expect(nobody.stderr).toMatch(/^pmu region: ECONNECTION: .*127\.0\.0\.1:1/);
});

test('pmu inspect dumps both metadata copies and the table, offline, without keys', () => {
  pmu(['region', 'create', 'seen', '--size', '8KiB']);
  const text = pmu(['inspect', path.join(dir, 'pmu-data', 'unit.pmu')]);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/^copy A +valid, generation \d+/m);
  expect(text.stdout).toMatch(/^copy B +\w+/m);
  expect(text.stdout).toMatch(/^region +seen\thandle \d+\tbase 0x[0-9a-f]+\tlength 8192/m);
  const json = JSON.parse(pmu(['inspect', path.join(dir, 'pmu-data', 'unit.pmu'), '--json']).stdout);
  expect(json.copies).toHaveLength(2);
  expect(json.regions.find((r: { name: string }) => r.name === 'seen')).not.toHaveProperty('key');
  expect(pmu(['inspect', path.join(dir, 'nope.pmu')]).code).toBe(1);
});

test('SIGINT stops the server cleanly and a second serve finds the same data', async () => {
  server.kill('SIGINT');
  expect((await waitForExit(server)).code).toBe(0);
  expect(serverOutput).toContain('pmu: stopped');
  const again = spawn(process.execPath, [PMU, 'serve', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  again.stdout!.on('data', (chunk) => (output += chunk));
  try {
    await waitForLine(again, /connect with/);
    expect(output).toContain('serving');
    expect(pmu(['region', 'list']).stdout).toContain('seen');
  } finally {
    again.kill('SIGTERM');
  }
  expect((await waitForExit(again)).code).toBe(0);
});
