/**
 * pmu cluster and pmu serve --join end to end: etcd, three `pmu serve --join` processes, a
 * mirrored region, a PMU killed (out of sync), restarted (resynced by its agent), status at
 * each step; usage errors; the progress bar. Bound: ~15 s.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { describeRegion, progressBar } from '../lib/cli/commands/cluster';
import { MirrorDirectory } from '../lib/mirror/directory';
import { MirroredRegion } from '../lib/mirror/mirrored-region';
import { PmuPool } from '../lib/mirror/pool';
import { etcdAvailable, EtcdHandle, freePort, startEtcd } from './helpers/etcd';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const SET_ENV = { PMU_USER: 'mirror', PMU_SECRET: 'mirror-secret-0123456789abcdef', PMU_URL: '' };

test('the progress bar and a region description', () => {
  expect(progressBar({ copied: 64 * 1024 * 1024, total: 256 * 1024 * 1024, at: '' }, 8)).toBe('[██░░░░░░] 25% 64 MiB/256 MiB');
  const lines = describeRegion({ name: 'r', size: 1 << 20, replicas: ['a', 'b', 'c'], inSync: ['a'], syncing: ['b'], epoch: 7 }, new Map([['b', { copied: 1 << 19, total: 1 << 20, at: '' }]]));
  expect(lines[0]).toBe('region r  1 MiB  epoch 7  read replica a');
  expect(lines[1]).toMatch(/a\s+in sync$/);
  expect(lines[2]).toMatch(/b\s+resyncing \[█+░+\] 50% /);
  expect(lines[3]).toMatch(/c\s+out of sync/);
});

const run = etcdAvailable() ? describe : describe.skip;

run('pmu cluster with pmu serve --join', () => {
  let etcd: EtcdHandle;
  let dir: string;
  const servers = new Map<string, ChildProcess>();
  const ports = new Map<string, number>();

  const pmu = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [PMU, ...args], { cwd: dir, env: { ...process.env, ...SET_ENV, PMU_ETCD: etcd.url, ...env }, timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const serve = async (id: string) => {
    const server = spawn(process.execPath, [PMU, 'serve', '--data', id, '--port', String(ports.get(id)), '--size', '16MiB', '--join', etcd.url, '--id', id], { cwd: dir, env: { ...process.env, ...SET_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    servers.set(id, server);
    await waitForLine(server, /joined the PMU set .* as '\w+'/, 20_000);
    return server;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    dir = tempDir('pmu-cluster-cli-');
    for (const id of ['pmu1', 'pmu2', 'pmu3']) ports.set(id, await freePort());
  }, 30_000);
  afterAll(async () => {
    for (const server of servers.values()) if (server.exitCode === null) server.kill('SIGKILL');
    await Promise.all([...servers.values()].map((server) => waitForExit(server)));
    await etcd?.stop();
    removeTempDirs();
  });

  test('init, three PMUs join, create, status; a killed PMU shows out of sync, and is resynced when it returns', async () => {
    expect((await pmu(['cluster', 'status'])).stderr).toMatch(/ENOENT: no PMU set .* run pmu cluster init/);
    const init = await pmu(['cluster', 'init']);
    expect(init.stdout).toMatch(/made the PMU set \/pmu\/sets\/default .* \(2 copies per region\)/);
    expect((await pmu(['cluster', 'init'])).code).toBe(1);
    for (const id of ['pmu1', 'pmu2', 'pmu3']) await serve(id);
    const created = await pmu(['cluster', 'create', 'orders', '--size', '1MiB']);
    expect(created.stdout).toMatch(/created mirrored region 'orders' \(1 MiB\) on pmu1, pmu2/);
    let status = await pmu(['cluster', 'status']);
    expect(status.stdout).toMatch(/3 PMU\(s\), 1 region\(s\)/);
    expect(status.stdout).toMatch(/region orders {2}1 MiB {2}epoch 1 {2}read replica pmu1/);
    expect(status.stdout).toMatch(/pmu2\s+in sync/);

    // Kill pmu2; a write through the mirror takes it out of the in-sync set.
    servers.get('pmu2')!.kill('SIGKILL');
    await waitForExit(servers.get('pmu2')!);
    const directory = MirrorDirectory.connect(etcd.url);
    const pool = new PmuPool(directory, { user: SET_ENV.PMU_USER, secret: SET_ENV.PMU_SECRET, timeoutMs: 1000 });
    const region = await MirroredRegion.open(directory, pool, 'orders');
    try {
      await region.write(0, Buffer.from('written while pmu2 was down'));
      status = await pmu(['cluster', 'status']);
      expect(status.stdout).toMatch(/epoch 2/);
      expect(status.stdout).toMatch(/pmu2\s+out of sync/);
      const json = JSON.parse((await pmu(['cluster', 'status', '--json'])).stdout);
      expect(json.regions[0]).toMatchObject({ name: 'orders', inSync: ['pmu1'], epoch: 2 });

      // It comes back: its agent resyncs it and it rejoins with the write it missed.
      const back = await serve('pmu2');
      await waitForLine(back, /resync-done of region 'orders'/, 20_000);
      await waitFor('pmu2 in sync', async () => (await directory.config('orders')).inSync.includes('pmu2'));
      status = await pmu(['cluster', 'status']);
      expect(status.stdout).toMatch(/pmu2\s+in sync/);
      const direct = await pool.openRegion('pmu2', 'orders');
      expect((await direct.read(0, 27)).toString()).toBe('written while pmu2 was down');
    } finally {
      await region.close();
      await pool.close();
      directory.close();
    }
    // pmu3 holds no copy: it may leave the set.
    expect((await pmu(['cluster', 'remove', 'pmu3'])).stdout).toMatch(/removed PMU 'pmu3'/);
  }, 60_000);

  test('pmu cluster scrub: equal replicas pass; one changed behind the set\'s back is reported, never guessed with 2 copies (exit 1)', async () => {
    let scrub = await pmu(['cluster', 'scrub', '--region', 'orders']);
    expect(scrub.stdout).toMatch(/region orders: 1 MiB compared on pmu1, pmu2 \(epoch \d+\): equal/);
    expect(scrub.code).toBe(0);
    const directory = MirrorDirectory.connect(etcd.url);
    const pool = new PmuPool(directory, { user: SET_ENV.PMU_USER, secret: SET_ENV.PMU_SECRET, timeoutMs: 1000 });
    try {
      await (await pool.openRegion('pmu2', 'orders')).write(4096, Buffer.from('rot'), { durability: 'mapped' });
    } finally {
      await pool.close();
      directory.close();
    }
    scrub = await pmu(['cluster', 'scrub']);
    expect(scrub.code).toBe(1);
    expect(scrub.stdout).toMatch(/region orders: .*: 1 range\(s\) differ/);
    expect(scrub.stdout).toMatch(/bytes 0\.\.1048576: pmu1 [0-9a-f]{8}, pmu2 [0-9a-f]{8}\n/);
    expect(scrub.stdout).toMatch(/no majority/);
    const json = JSON.parse((await pmu(['cluster', 'scrub', '--json', '--no-repair', '--rate', '256MiB'])).stdout);
    expect(json[0]).toMatchObject({ region: 'orders', bytesScrubbed: 1 << 20, repaired: [], mismatches: [{ offset: 0, length: 1 << 20 }] });
    expect((await pmu(['cluster', 'scrub', 'orders'])).stderr).toMatch(/unexpected argument/);
  }, 30_000);

  test('usage errors say what to do', async () => {
    expect((await pmu(['cluster'])).stderr).toMatch(/say what to do/);
    expect((await pmu(['cluster', 'status'], { PMU_ETCD: '' })).stderr).toMatch(/--etcd/);
    expect((await pmu(['cluster', 'add', 'x'])).stderr).toMatch(/--url/);
    expect((await pmu(['cluster', 'create', 'big', '--size', '1GiB'])).stderr).toMatch(/ENOSPC/);
    const noId = spawn(process.execPath, [PMU, 'serve', '--data', 'x', '--join', etcd.url], { cwd: dir, env: { ...process.env, ...SET_ENV } });
    const exit = await waitForExit(noId);
    expect(exit.code).toBe(2);
    expect((await pmu(['serve', '--data', 'y', '--scrub', '64MiB'])).stderr).toMatch(/--scrub needs --join/);
    expect((await pmu(['serve', '--data', 'y', '--resync-rate', '32MiB'])).stderr).toMatch(/--resync-rate needs --join/);
    const zero = spawn(process.execPath, [PMU, 'serve', '--data', 'z', '--join', etcd.url, '--id', 'z', '--resync-rate', '0'], { cwd: dir, env: { ...process.env, ...SET_ENV } });
    let zeroErr = '';
    zero.stderr.on('data', (chunk) => (zeroErr += chunk));
    expect((await waitForExit(zero)).code).toBe(2);
    expect(zeroErr).toMatch(/--resync-rate 0 would never heal/);
  }, 30_000);
});
