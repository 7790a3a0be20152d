/**
 * Seeing inside a running server: the Prometheus endpoint (figures read from plain counters
 * when scraped), `pmu stat` over it, and the startup warnings about where the unit sits.
 * In-process server on loopback plus a few CLI children; ~10 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openPrimary } from '../lib/checkpoint/takeover';
import { parseMetricsAddress } from '../lib/cli/args';
import { CheckpointLogFigures } from '../lib/checkpoint/log-figures';
import { PmuMetrics } from '../lib/obs/metrics';
import { MetricsEndpoint, serveMetrics } from '../lib/obs/metrics-endpoint';
import { placementWarnings } from '../lib/unit/placement';
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
    const metrics = new PmuMetrics({ serverStats: () => h.server.stats(), unit: h.unit, logs: () => logFigures.logs(), regionNames: true });
    endpoint = await serveMetrics(metrics, parseMetricsAddress('127.0.0.1:0'), { minIntervalMs: 0 });
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
      await logFigures.settle(); // the tail is walked in the background, not by the scrape
      const before = value(await scrape(), 'pmu_region_reads_total', { region: 'ckpt' }) ?? 0;
      const samples = await scrape();
      expect(value(samples, 'pmu_checkpoint_lag_records', { region: 'ckpt' })).toBe(5);
      expect(value(samples, 'pmu_checkpoint_lag_bytes', { region: 'ckpt' })).toBeGreaterThanOrEqual(500);
      expect(value(samples, 'pmu_checkpoint_lag_exact', { region: 'ckpt' })).toBe(1);
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

describe('the metrics endpoint costs the server little and leaks nothing', () => {
  let h: Harness;
  let logFigures: CheckpointLogFigures;
  afterEach(async () => {
    logFigures?.close();
    await h?.close();
  });
  const valueOf = (text: string, name: string, region: string) => parseExposition(text).get(name)?.find((s) => s.labels.region === region)?.value;

  test('a scrape walks no log: the lag of 20,000 records is walked once in the background, never again per scrape', async () => {
    h = await startServer();
    h.unit.createRegion('flood', 4 << 20);
    const { writer } = await openPrimary(h.unit.openRegion('flood'), { mode: 'append', heartbeatMs: 0, durability: 'mapped' });
    for (let i = 0; i < 20_000; i++) void writer.append(Buffer.from('x'));
    await writer.append(Buffer.from('last'));
    logFigures = new CheckpointLogFigures(h.unit);
    const metrics = new PmuMetrics({ unit: h.unit, logs: () => logFigures.logs() });
    await logFigures.settle();
    const walked = logFigures.stats.bytesWalked;
    expect(walked).toBeGreaterThan(20_000 * 40);
    const handle = h.unit.listRegions().find((r) => r.name === 'flood')!.handle;
    for (let i = 0; i < 50; i++) {
      const text = await metrics.registry.metrics();
      expect(valueOf(text, 'pmu_checkpoint_lag_records', `#${handle}`)).toBe(20_001);
    }
    expect(logFigures.stats.bytesWalked).toBe(walked);
    // New records cost only themselves.
    await writer.append(Buffer.from('one more'));
    await logFigures.settle();
    expect(logFigures.stats.bytesWalked - walked).toBeLessThan(100);
    await writer.close();
  });

  test('region names stay out of an unauthenticated scrape unless asked for: regions are labelled by handle', async () => {
    h = await startServer();
    h.unit.createRegion('secret-payroll', 1 << 20);
    const region = h.unit.openRegion('secret-payroll');
    await (await openPrimary(region, { mode: 'append', heartbeatMs: 0 })).writer.close();
    await region.write(8192, Buffer.from('x'), { durability: 'mapped' });
    logFigures = new CheckpointLogFigures(h.unit);
    const hidden = await new PmuMetrics({ unit: h.unit, logs: () => logFigures.logs() }).registry.metrics();
    expect(hidden).not.toContain('secret-payroll');
    const handle = h.unit.listRegions()[0].handle;
    expect(valueOf(hidden, 'pmu_region_writes_total', `#${handle}`)).toBeGreaterThanOrEqual(1);
    expect(valueOf(hidden, 'pmu_checkpoint_epoch', `#${handle}`)).toBe(1);
    const named = await new PmuMetrics({ unit: h.unit, logs: () => logFigures.logs(), regionNames: true }).registry.metrics();
    expect(valueOf(named, 'pmu_checkpoint_epoch', 'secret-payroll')).toBe(1);
  });

  test('scrapes within the interval share one exposition; the listener holds at most maxConnections sockets and closes silent ones', async () => {
    h = await startServer();
    const metrics = new PmuMetrics({ unit: h.unit });
    const endpoint = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 }, { minIntervalMs: 60_000, maxConnections: 8, headersTimeoutMs: 300 });
    const net = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    try {
      const texts: string[] = [];
      for (let i = 0; i < 5; i++) texts.push(...(await Promise.all(Array.from({ length: 4 }, async () => (await fetch(endpoint.url)).text()))));
      expect(new Set(texts).size).toBe(1);
      expect(endpoint.stats).toEqual({ scrapes: 20, expositions: 1, longestExpositionMs: expect.any(Number) });
      expect(endpoint.stats.longestExpositionMs).toBeGreaterThan(0);
      // 30 silent sockets: at most 8 are held, the rest are closed at once, and the held ones time out.
      const port = Number(new URL(endpoint.url).port);
      const closed: Promise<void>[] = [];
      for (let i = 0; i < 30; i++) {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        closed.push(new Promise((resolve) => socket.on('close', () => resolve())));
        sockets.push(socket);
      }
      await Promise.all(closed); // every one closed by the server: none held forever
      expect((await fetch(endpoint.url)).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
      await endpoint.close();
    }
  });

  test('pmu serve refuses --metrics on an address other hosts reach, unless --metrics-public', async () => {
    const result = await run(['serve', '--metrics', '0.0.0.0:9464'], tempDir());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/can be reached from other hosts, and \/metrics has no authentication: bind 127\.0\.0\.1 .*--metrics-public/);
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
      expect(warnings[0]).toMatchObject({ code: 'PMU_VOLATILE_FILE', file, message: expect.stringMatching(/is on tmpfs: msync there makes nothing durable/) });
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
    const sparseWarnings = placementWarnings(sparse).filter((w) => w.code === 'PMU_SPARSE_FILE').map((w) => w.message);
    expect(sparseWarnings).toEqual([expect.stringMatching(/is sparse \(0 of 1048576 bytes allocated\)/)]);
    expect(placementWarnings(full).filter((w) => w.code === 'PMU_SPARSE_FILE')).toEqual([]);
  });

  async function serveOnShm(extra: string[], check: (stderr: string) => boolean, expectations: (stderr: string) => void) {
    if (!shm) throw new PmuError('ESYS', '/dev/shm is not a tmpfs on this machine: this test needs one');
    const dir = fs.mkdtempSync('/dev/shm/pmu-serve-');
    const server = spawn(process.execPath, [PMU, 'serve', '--port', '0', '--size', '4MiB', '--data', path.join(dir, 'data'), ...extra], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.on('data', (c) => (stderr += c));
    try {
      await waitForLine(server, /connect with:/);
      // stderr and stdout are separate pipes: the warning may arrive after the listening line.
      await waitFor('the placement warning on stderr', () => check(stderr));
      expectations(stderr);
    } finally {
      server.kill('SIGINT');
      await waitForExit(server);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  test('pmu serve logs the warning as one JSON event (event, code, msg) at startup and serves anyway', async () => {
    const events = (stderr: string) => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).filter((line) => line.event === 'unit.warning');
    await serveOnShm([], (stderr) => events(stderr).length > 0, (stderr) => {
      expect(events(stderr)).toEqual([expect.objectContaining({ level: 40, code: 'PMU_VOLATILE_FILE', msg: expect.stringMatching(/unit\.pmu is on tmpfs: msync there makes nothing durable/) })]);
      expect(stderr).not.toContain('pmu: warning:');
    });
  });

  test('with --log-level silent the warning is one plain line, not silence', async () => {
    await serveOnShm(['--log-level', 'silent'], (stderr) => /^pmu: warning: .*\n/m.test(stderr), (stderr) => {
      const warnings = stderr.split('\n').filter((line) => line.startsWith('pmu: warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/unit\.pmu is on tmpfs: msync there makes nothing durable/);
    });
  });

  test('embedded, open on tmpfs emits one process warning (PMU_VOLATILE_FILE) however many units', () => {
    if (!shm) throw new PmuError('ESYS', '/dev/shm is not a tmpfs on this machine: this test needs one');
    const dir = fs.mkdtempSync('/dev/shm/pmu-embedded-');
    try {
      const script = `const { PersistentMemoryUnit } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
        for (const name of ['a.pmu', 'b.pmu']) PersistentMemoryUnit.open(${JSON.stringify(dir)} + '/' + name, { size: 1 << 20 }).close();`;
      const result = spawnSync(process.execPath, ['-e', script]);
      expect(result.status).toBe(0);
      expect(result.stderr.toString().match(/\[PMU_VOLATILE_FILE\] PmuWarning: \S+a\.pmu is on tmpfs/g)).toHaveLength(1);
      expect(result.stderr.toString()).not.toContain('b.pmu');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
