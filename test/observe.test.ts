/**
 * Seeing inside a running server: the Prometheus endpoint (figures read from plain counters
 * when scraped), `pmu stat` over it, and the startup warnings about where the unit sits.
 * In-process server on loopback plus a few CLI children; ~10 s.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openPrimary } from '../lib/checkpoint/takeover';
import { parseMetricsAddress } from '../lib/cli/args';
import { CheckpointLogFigures } from '../lib/checkpoint/log-figures';
import { PmuMetrics } from '../lib/obs/metrics';
import { MetricsEndpoint, serveMetrics } from '../lib/obs/metrics-endpoint';
import { placementWarnings } from '../lib/cli/placement';
import { parseExposition } from '../lib/cli/commands/stat';
import { PmuError } from '../lib/unit/errors';
import { Harness, startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');

async function run(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [PMU, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const { code } = await waitForExit(child, 15_000);
  return { code, stdout, stderr };
}

afterAll(removeTempDirs);

describe('the metrics endpoint', () => {
  let h: Harness;
  let logFigures: CheckpointLogFigures;
  let endpoint: MetricsEndpoint;
  const scrape = async () => parseExposition(await (await fetch(endpoint.url)).text());
  const value = (samples: Map<string, Array<{ labels: Record<string, string>; value: number }>>, name: string, labels: Record<string, string> = {}) =>
    samples.get(name)?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  beforeAll(async () => {
    h = await startServer();
    logFigures = new CheckpointLogFigures(h.unit);
    const metrics = new PmuMetrics({ serverStats: () => h.server.stats(), unit: h.unit, logs: () => logFigures.logs() });
    endpoint = await serveMetrics(metrics, parseMetricsAddress('127.0.0.1:0'));
  });

  afterAll(async () => {
    logFigures.close();
    await endpoint.close();
    await h.close();
  });

  test('connections, requests and bytes by op, refusals by code, per-region traffic, msync and group commit', async () => {
    const admin = await h.connect('admin');
    const created = await admin.createRegion('orders', 1 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    await created.close();
    const primary = await h.connect('primary');
    const region = await primary.openRegion('orders');
    // 16 concurrent durable writes: group commit makes fewer flushes than writes.
    await Promise.all(Array.from({ length: 16 }, (_, i) => region.write(i * 4096, Buffer.alloc(4096, i))));
    await region.write(0, Buffer.alloc(100), { durability: 'mapped' });
    await region.read(0, 1000);
    const backup = await h.connect('backup');
    await expect((await backup.openRegion('orders', { rights: 'r' })).write(0, Buffer.from('x'))).rejects.toMatchObject({ code: 'EACCESS' });

    const samples = await scrape();
    expect(value(samples, 'pmu_connections_open')).toBe(3);
    expect(value(samples, 'pmu_connections_accepted_total')).toBeGreaterThanOrEqual(3);
    expect(value(samples, 'pmu_requests_total', { op: 'WRITE' })).toBe(18);
    expect(value(samples, 'pmu_requests_total', { op: 'READ' })).toBe(1);
    expect(value(samples, 'pmu_request_bytes_total', { op: 'WRITE' })).toBeGreaterThan(16 * 4096 + 100);
    expect(value(samples, 'pmu_refusals_total', { code: 'EACCESS' })).toBe(1);
    expect(value(samples, 'pmu_region_writes_total', { region: 'orders' })).toBe(17);
    expect(value(samples, 'pmu_region_write_bytes_total', { region: 'orders' })).toBe(16 * 4096 + 100);
    expect(value(samples, 'pmu_region_reads_total', { region: 'orders' })).toBe(1);
    expect(value(samples, 'pmu_region_read_bytes_total', { region: 'orders' })).toBe(1000);
    const flushes = value(samples, 'pmu_msync_seconds_count')!;
    expect(flushes).toBeGreaterThanOrEqual(1);
    expect(flushes).toBeLessThan(16);
    expect(value(samples, 'pmu_msync_seconds_bucket', { le: '+Inf' })).toBe(flushes);
    expect(value(samples, 'pmu_msync_seconds_sum')).toBeGreaterThan(0);
    expect(value(samples, 'pmu_group_commit_writes_sum')).toBe(16);
    expect(value(samples, 'pmu_group_commit_writes_count')).toBe(flushes);
    expect(value(samples, 'pmu_unit_regions')).toBe(1);
    // Default process metrics come along from prom-client.
    expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('a checkpoint log: consumer lag in records and bytes, epoch, heartbeat age; scraping reads are not counted as traffic', async () => {
    h.unit.createRegion('ckpt', 1 << 20);
    const { writer } = await openPrimary(h.unit.openRegion('ckpt'), { mode: 'append', heartbeatMs: 20 });
    try {
      for (let i = 0; i < 5; i++) await writer.append(Buffer.alloc(100, i));
      const before = value(await scrape(), 'pmu_region_reads_total', { region: 'ckpt' }) ?? 0;
      const samples = await scrape();
      expect(value(samples, 'pmu_checkpoint_lag_records', { region: 'ckpt' })).toBe(5);
      expect(value(samples, 'pmu_checkpoint_lag_bytes', { region: 'ckpt' })).toBeGreaterThanOrEqual(500);
      expect(value(samples, 'pmu_checkpoint_epoch', { region: 'ckpt' })).toBeGreaterThanOrEqual(1);
      expect(value(samples, 'pmu_checkpoint_heartbeat_age_seconds', { region: 'ckpt' })).toBeLessThan(2);
      expect(value(samples, 'pmu_region_reads_total', { region: 'ckpt' }) ?? 0).toBe(before);
      // A region that is not a log has no checkpoint figures.
      expect(samples.get('pmu_checkpoint_epoch')!.map((s) => s.labels.region)).toEqual(['ckpt']);
    } finally {
      await writer.close();
    }
    // Once the writer stops, its heartbeat stops moving and the age grows.
    await waitFor('the heartbeat age to pass 1 s', async () => (value(await scrape(), 'pmu_checkpoint_heartbeat_age_seconds', { region: 'ckpt' }) ?? 0) > 1, 10_000, 100);
  });

  test('pmu stat prints the same figures in a terminal view', async () => {
    const result = await run(['stat', endpoint.url], tempDir());
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^connections\s+\d+ open, \d+ accepted/m);
    expect(result.stdout).toMatch(/^requests\s+.*WRITE \d+/m);
    expect(result.stdout).toMatch(/^refusals\s+EACCESS 1/m);
    expect(result.stdout).toMatch(/^msync\s+\d+ flushes, mean [\d.]+ ms, p50 <=/m);
    expect(result.stdout).toMatch(/^orders\s+17\s+64\.1 KiB\s+1\s+1000 B/m);
    expect(result.stdout).toMatch(/^ckpt\s+\d+\s+5\s+/m);
  });

  test('pmu stat --watch redraws with rates until interrupted', async () => {
    const child = spawn(process.execPath, [PMU, 'stat', endpoint.url, '--watch', '--interval', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(child, /connections[^\n]*\(\d+(\.\d+)?\/s\)/);
    child.kill('SIGINT');
    expect((await waitForExit(child)).code).toBe(0);
  });

  test('the endpoint answers only GET /metrics', async () => {
    expect((await fetch(endpoint.url.replace('/metrics', '/other'))).status).toBe(404);
  });
});

describe('pmu stat and --metrics on the command line', () => {
  test('stat with nothing listening: one line that says how to start the endpoint', async () => {
    const result = await run(['stat', 'http://127.0.0.1:1/metrics'], tempDir());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pmu stat: ECONNECTION: no metrics at http:\/\/127\.0\.0\.1:1\/metrics .*pmu serve --metrics 127\.0\.0\.1:9464/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a bad --metrics address is a usage error', async () => {
    expect(() => parseMetricsAddress('nonsense:port')).toThrow(/--metrics must be HOST:PORT/);
    expect(parseMetricsAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseMetricsAddress('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    const result = await run(['serve', '--metrics', 'x:y'], tempDir());
    expect(result.code).toBe(2);
  });

  test('pmu serve --metrics prints the endpoint and serves it', async () => {
    const dir = tempDir();
    const server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--metrics', '127.0.0.1:0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [, url] = await waitForLine(server, /metrics on (http:\S+)/);
      const text = await (await fetch(url)).text();
      expect(text).toContain('pmu_connections_open 0');
      expect(text).toContain('# TYPE pmu_msync_seconds histogram');
    } finally {
      server.kill('SIGINT');
      expect((await waitForExit(server)).code).toBe(0);
    }
  });
});

describe('startup warnings about where the unit sits', () => {
  const shm = fs.existsSync('/dev/shm') && fs.statfsSync('/dev/shm').type === 0x01021994;

  test('a file on tmpfs: msync promises nothing there', () => {
    if (!shm) throw new PmuError('ESYS', '/dev/shm is not a tmpfs on this machine: this test needs one');
    const dir = fs.mkdtempSync('/dev/shm/pmu-placement-');
    try {
      const file = path.join(dir, 'unit.pmu');
      fs.writeFileSync(file, Buffer.alloc(4096, 1));
      const warnings = placementWarnings(file);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/is on tmpfs: msync there makes nothing durable/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a sparse file, and none for a preallocated file on a disk file system', () => {
    const dir = tempDir();
    const sparse = path.join(dir, 'sparse.pmu');
    fs.writeFileSync(sparse, '');
    fs.truncateSync(sparse, 1 << 20);
    const full = path.join(dir, 'full.pmu');
    fs.writeFileSync(full, Buffer.alloc(1 << 20, 1));
    const sparseWarnings = placementWarnings(sparse).filter((w) => w.includes('sparse'));
    expect(sparseWarnings).toEqual([expect.stringMatching(/is sparse \(0 of 1048576 bytes allocated\)/)]);
    expect(placementWarnings(full).filter((w) => w.includes('sparse'))).toEqual([]);
  });

  test('pmu serve prints the warning in one line at startup and serves anyway', async () => {
    if (!shm) throw new PmuError('ESYS', '/dev/shm is not a tmpfs on this machine: this test needs one');
    const dir = fs.mkdtempSync('/dev/shm/pmu-serve-');
    const server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--data', path.join(dir, 'data')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (c) => (stderr += c));
    try {
      await waitForLine(server, /connect with:/);
      // stderr and stdout are separate pipes: the warning may arrive after the listening line.
      await waitFor('the placement warning on stderr', () => /^pmu: warning: .*\n/m.test(stderr));
      // One whole line (the JSON log lines of the server may follow it on stderr).
      const warnings = stderr.split('\n').filter((line) => line.startsWith('pmu: warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/unit\.pmu is on tmpfs: msync there makes nothing durable/);
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
