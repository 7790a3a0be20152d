/**
 * `pmu serve --join` that cannot register yet: it serves, retries with backoff, and says so in
 * the log (join.failed), the metrics (pmu_mirror_joined, pmu_mirror_join_failures_total) and
 * `pmu cluster status`; once etcd is up and the set is made, it joins and starts its agent.
 * Bound: ~15 s.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MirrorDirectory } from '../lib/mirror/directory';
import { etcdAvailable, EtcdHandle, freePort, startEtcd } from './helpers/etcd';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const SET_ENV = { PMU_USER: 'mirror', PMU_SECRET: 'mirror-secret-0123456789abcdef', PMU_URL: '', PMU_SET: '' };

interface LogLine {
  event?: string;
  code?: string;
  attempt?: number;
  retryInMs?: number;
}

const run = etcdAvailable() ? describe : describe.skip;

run('pmu serve --join before etcd and the set exist', () => {
  let etcd: EtcdHandle | undefined;
  let server: ChildProcess | undefined;
  afterAll(async () => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    if (server) await waitForExit(server);
    await etcd?.stop();
    removeTempDirs();
  });

  test('retries with backoff, visible in the log, the metrics and cluster status; joins once etcd and the set are there', async () => {
    const etcdPort = await freePort();
    const metricsPort = await freePort();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const dir = tempDir('pmu-join-');
    server = spawn(process.execPath, [PMU, 'serve', '--data', path.join(dir, 'd'), '--port', '0', '--size', '16MiB', '--metrics', `127.0.0.1:${metricsPort}`, '--join', etcdUrl, '--id', 'late'], {
      env: { ...process.env, ...SET_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log: LogLine[] = [];
    let partial = '';
    server.stderr!.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) log.push(JSON.parse(line) as LogLine);
    });
    const failures = (code: string) => log.filter((line) => line.event === 'join.failed' && line.code === code);
    const metrics = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const value = (name: string) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);
      return { joined: value('pmu_mirror_joined'), failures: value('pmu_mirror_join_failures_total') };
    };

    // etcd is not there: it serves, and each failed attempt waits longer than the one before.
    await waitForLine(server, /cannot join the PMU set \/pmu\/sets\/default .* yet \(EETCD: .*retrying with backoff/, 15_000);
    await waitFor('4 join.failed (EETCD)', () => failures('EETCD').length >= 4, 15_000);
    const delays = failures('EETCD').map((line) => line.retryInMs!);
    expect(delays[3]).toBeGreaterThan(delays[0]);
    expect(failures('EETCD').map((line) => line.attempt)).toEqual(expect.arrayContaining([1, 2, 3, 4]));
    let seen = await metrics();
    expect(seen.joined).toBe(0);
    expect(seen.failures).toBeGreaterThanOrEqual(4);

    // etcd comes up, but nobody made the set: the failure changes, and status says who waits.
    etcd = await startEtcd({ clientPort: etcdPort });
    await waitFor('join.failed (ENOENT)', () => failures('ENOENT').length >= 1, 15_000);
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, [PMU, ...args], { env: { ...process.env, ...SET_ENV, PMU_ETCD: etcdUrl }, timeout: 20_000 }).then(
        (done) => ({ code: 0, ...done }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
    const status = await cli(['cluster', 'status']);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/ENOENT: no PMU set at \/pmu\/sets\/default .* run pmu cluster init/);
    expect(status.stderr).toMatch(/pmu late\s+not joined: registering failed \d+ time\(s\) \(ENOENT: no PMU set/);

    // The set is made: it joins, by itself, and starts its agent.
    const directory = MirrorDirectory.connect(etcdUrl, { timeoutMs: 1000 });
    try {
      await directory.init(2);
      await waitForLine(server, /joined the PMU set \/pmu\/sets\/default in .* as 'late'/, 20_000);
      expect((await directory.pmus()).map((pmu) => pmu.id)).toEqual(['late']);
      expect((await directory.agentStates()).get('late')).toMatchObject({ joined: true });
    } finally {
      directory.close();
    }
    // The endpoint reuses a page for up to 1 s (minIntervalMs): wait for a fresh one to say so.
    seen = await waitFor('pmu_mirror_joined 1 on a fresh metrics page', async () => {
      const now = await metrics();
      return now.joined === 1 && now;
    }, 10_000, 50);
    expect(seen.joined).toBe(1);
    expect(log.some((line) => line.event === 'join.done')).toBe(true);
    const joinedStatus = await cli(['cluster', 'status']);
    expect(joinedStatus.stdout).toMatch(/pmu late\s+tcp:\/\//);
    expect(joinedStatus.stdout).not.toMatch(/not joined/);

    server.kill('SIGTERM');
    expect((await waitForExit(server)).code).toBe(0);
  }, 60_000);

  test('SIGTERM while it still tries to join: a clean stop, exit 0', async () => {
    const dir = tempDir('pmu-join-stop-');
    const child = spawn(process.execPath, [PMU, 'serve', '--data', path.join(dir, 'd'), '--port', '0', '--size', '16MiB', '--join', `http://127.0.0.1:${await freePort()}`, '--id', 'never'], {
      env: { ...process.env, ...SET_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForLine(child, /cannot join the PMU set/, 15_000);
    child.kill('SIGTERM');
    const exit = await waitForExit(child);
    expect(exit).toEqual({ code: 0, signal: null });
  }, 30_000);
});
