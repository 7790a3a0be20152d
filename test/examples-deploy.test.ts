/**
 * examples/systemd and examples/docker: the unit passes `systemd-analyze verify` and its
 * ExecStart, run as written (the state directory and port swapped for a test's), serves,
 * reloads on ExecReload's SIGHUP and stops cleanly on KillSignal; the Dockerfiles pass
 * dockerfilelint and keep the habits that matter for pmu (no docker daemon here to build them).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit, waitForLine } from './helpers/wait';

const REPO = path.join(__dirname, '..');
const UNIT = fs.readFileSync(path.join(REPO, 'examples/systemd/pmu.service'), 'utf8');
const INSTALLED = '/opt/pmu/node_modules/pmu';

afterAll(removeTempDirs);

function directive(name: string): string {
  const line = UNIT.split('\n').find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`pmu.service has no ${name}=`);
  return line.slice(name.length + 1);
}

const haveSystemdAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;

(haveSystemdAnalyze ? test : test.skip)('the systemd unit passes systemd-analyze verify (with pmu where the unit expects it)', () => {
  const dir = tempDir('pmu-unit-');
  const file = path.join(dir, 'pmu.service');
  fs.writeFileSync(file, UNIT.split(INSTALLED).join(REPO));
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  expect({ status: verify.status, output: (verify.stdout + verify.stderr).trim() }).toEqual({ status: 0, output: '' });
  // The checks would fail on a bad unit.
  fs.writeFileSync(file, UNIT.split(INSTALLED).join(REPO).replace('KillSignal=SIGTERM', 'KillSignal=SIGTERM\nKillSignals=SIGTERM'));
  const bad = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  expect(bad.stdout + bad.stderr).toMatch(/Unknown key 'KillSignals'/);
});

test("the unit's ExecStart serves; ExecReload's SIGHUP reloads the users; KillSignal stops it with exit 0", async () => {
  expect(directive('StateDirectory')).toBe('pmu');
  expect(directive('StateDirectoryMode')).toBe('0700');
  expect(directive('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  expect(directive('KillSignal')).toBe('SIGTERM');
  const state = tempDir('pmu-state-');
  fs.chmodSync(state, 0o700);
  const argv = directive('ExecStart')
    .split(/\s+/)
    .map((arg) => arg.split(INSTALLED).join(REPO).replace(/^\/var\/lib\/pmu$/, state));
  expect(argv[0]).toBe('/usr/bin/node');
  argv[argv.indexOf('--port') + 1] = '0';
  const child = spawn(process.execPath, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForLine(child, /pmu: listening on tcp:\/\/127\.0\.0\.1:\d+/, 15_000);
    expect(fs.statSync(path.join(state, 'admin.credential.json')).mode & 0o777).toBe(0o600);
    child.kill('SIGHUP');
    // A reload keeps it serving: the pid file still names it.
    expect(fs.readFileSync(path.join(state, 'pmu.pid'), 'utf8').split(/\s+/)[0]).toBe(String(child.pid));
    child.kill('SIGTERM');
    expect(await waitForExit(child, 30_000)).toEqual({ code: 0, signal: null });
  } finally {
    child.kill('SIGKILL');
  }
}, 60_000);

describe.each(['Dockerfile.debian', 'Dockerfile.alpine'])('examples/docker/%s', (name) => {
  const file = path.join(REPO, 'examples/docker', name);
  const text = fs.readFileSync(file, 'utf8');

  test('passes dockerfilelint', () => {
    const lint = spawnSync(path.join(REPO, 'node_modules/.bin/dockerfilelint'), ['-o', 'json', file], { encoding: 'utf8' });
    expect(JSON.parse(lint.stdout)).toMatchObject({ totalIssues: 0 });
    expect(lint.status).toBe(0);
  });

  test('runs pmu serve as an unprivileged user, in exec form (SIGTERM reaches it), on a 0700 data volume', () => {
    const last = (instruction: string) => text.split('\n').filter((l) => l.startsWith(`${instruction} `)).pop();
    expect(last('USER')).toBe('USER node');
    expect(last('ENTRYPOINT')).toBe('ENTRYPOINT ["node", "/opt/pmu/node_modules/pmu/bin/pmu.js"]');
    expect(JSON.parse(last('CMD')!.slice(4))).toEqual(['serve', '--data', '/var/lib/pmu', '--host', '0.0.0.0', '--port', '7420']);
    expect(text).toMatch(/chmod 700 \/var\/lib\/pmu/);
    expect(text).toMatch(/^VOLUME \/var\/lib\/pmu$/m);
    expect(text).toMatch(/npm install --omit=dev/);
  });
});
