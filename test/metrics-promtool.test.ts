/**
 * The whole /metrics page passes Prometheus's own linter (`promtool check metrics`, from
 * Debian's prometheus package, which .ci/run installs): every metric pmu serves, with a
 * server, checkpoint logs, a set member's and a scrubber's counters, and region names.
 */
import { spawnSync } from 'node:child_process';
import { CheckpointLogFigures } from '../lib/checkpoint/log-figures';
import { openPrimary } from '../lib/checkpoint/takeover';
import { PmuMetrics } from '../lib/obs/metrics';
import { startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';

afterAll(removeTempDirs);

const havePromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
if (!havePromtool) {
  if (process.env.CI === 'true') throw new Error('promtool is missing under CI=true: .ci/run installs Debian\'s prometheus package');
  console.warn('metrics-promtool: promtool is not installed (apt-get install prometheus), so the lint of /metrics is skipped');
}

(havePromtool ? test : test.skip)('promtool check metrics finds nothing to complain about on the whole page', async () => {
  const h = await startServer();
  const figures = new CheckpointLogFigures(h.unit);
  try {
    const admin = await h.connect('admin');
    const region = await admin.createRegion('orders', 1 << 20);
    const { writer } = await openPrimary(region, { mode: 'append', heartbeatMs: 0 });
    for (let i = 0; i < 5; i++) await writer.append(Buffer.from(`record ${i}`));
    await region.read(0, 100);
    await figures.settle?.();
    const metrics = new PmuMetrics({
      serverStats: () => h.server.stats(),
      unit: h.unit,
      logs: () => figures.logs(),
      scrub: () => ({ bytesScrubbed: 4096, mismatches: 1, repairs: 1 }),
      mirror: () => ({ joinFailures: 2, joined: 1, resyncFailures: 0 }),
      regionNames: true,
    });
    const page = await metrics.registry.metrics();
    expect(page).toMatch(/pmu_checkpoint_/);
    expect(page).toMatch(/pmu_mirror_/);
    expect(page).toMatch(/nodejs_active_resources\{type=/);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
    expect({ status: lint.status, complaints: (lint.stdout + lint.stderr).trim() }).toEqual({ status: 0, complaints: '' });
    await writer.close();
  } finally {
    figures.close();
    await h.close();
  }
});
