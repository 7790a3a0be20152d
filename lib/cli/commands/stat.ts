/**
 * pmu stat: the figures of `pmu serve --metrics` in a terminal, for an admin. It reads the
 * metrics endpoint (the same numbers Prometheus scrapes), so it needs no credentials and adds
 * no protocol: whoever can reach the endpoint (loopback by default) can read them.
 */
import { PmuError } from '../../unit/errors';
import { out, parseInteger, UsageError } from '../args';
import { Command } from '../command';
import { DEFAULT_METRICS_PORT } from '../../obs/metrics-endpoint';

const DEFAULT_STAT_URL = `http://127.0.0.1:${DEFAULT_METRICS_PORT}/metrics`;

export const stat: Command = {
  summary: "show a running server's figures (from its --metrics endpoint)",
  operands: '[URL]',
  description: `Prints connections, requests and bytes by operation, refusals by code, msync latency and
group-commit size, per-region traffic, and each checkpoint log's consumer lag, epoch and
writer heartbeat age, as read from the metrics endpoint of a server started with
pmu serve --metrics HOST:PORT. URL is the endpoint (default ${DEFAULT_STAT_URL},
or PMU_METRICS_URL).`,
  options: {
    watch: { type: 'boolean', help: 'redraw every interval, with rates per second, until interrupted' },
    interval: { type: 'string', value: 'MS', help: 'period of --watch (default 2000)' },
  },
  async run({ values, positionals }) {
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    const url = metricsUrl(positionals[0] ?? process.env.PMU_METRICS_URL ?? DEFAULT_STAT_URL);
    const intervalMs = values.interval === undefined ? 2000 : parseInteger('--interval', values.interval as string, 100);
    if (!values.watch) {
      out(render(url, await scrape(url)));
      return 0;
    }
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      let previous: { at: number; samples: Samples } | undefined;
      while (!stop.signal.aborted) {
        const samples = await scrape(url);
        const at = Date.now();
        const screen = render(url, samples, previous && { samples: previous.samples, seconds: (at - previous.at) / 1000 });
        process.stdout.write((process.stdout.isTTY ? '\x1b[2J\x1b[H' : '') + screen + '\n');
        previous = { at, samples };
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalMs);
          stop.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

function metricsUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(/^\w+:\/\//.test(text) ? text : `http://${text}`);
  } catch {
    throw new UsageError(`URL must look like ${DEFAULT_STAT_URL}, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`URL must be http://HOST:PORT/metrics, got ${JSON.stringify(text)}`);
  if (url.pathname === '/') url.pathname = '/metrics';
  return url.toString();
}

/** name -> list of { labels, value } */
export type Samples = Map<string, Array<{ labels: Record<string, string>; value: number }>>;

async function scrape(url: string): Promise<Samples> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new PmuError('ECONNECTION', `no metrics at ${url} (${cause}): start the server with pmu serve --metrics 127.0.0.1:${DEFAULT_METRICS_PORT}, or give the URL it printed`);
  }
  if (!response.ok) throw new PmuError('EPROTO', `${url} answered HTTP ${response.status}: is this a pmu metrics endpoint?`);
  return parseExposition(await response.text());
}

/** The Prometheus text format, as much of it as prom-client writes. */
export function parseExposition(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const list = samples.get(match[1]) ?? [];
    list.push({ labels, value: Number(match[3]) });
    samples.set(match[1], list);
  }
  return samples;
}

const BYTES = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
function bytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < BYTES.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${BYTES[unit]}`;
}

function count(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n * 10) / 10);
}

/** The value at quantile q from cumulative histogram buckets (the bucket's upper bound). */
function quantile(buckets: Array<{ labels: Record<string, string>; value: number }>, q: number): number | undefined {
  const total = buckets.find((b) => b.labels.le === '+Inf')?.value ?? 0;
  if (total === 0) return undefined;
  const hit = buckets.filter((b) => b.labels.le !== '+Inf').find((b) => b.value >= q * total);
  return hit ? Number(hit.labels.le) : Infinity;
}

function render(url: string, now: Samples, before?: { samples: Samples; seconds: number }): string {
  const one = (name: string, labels: Record<string, string> = {}, from = now) => from.get(name)?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  const list = (name: string) => now.get(name) ?? [];
  const rate = (name: string, labels: Record<string, string> = {}) => (before ? ` (${count(Math.max(0, one(name, labels) - one(name, labels, before.samples)) / before.seconds)}/s)` : '');
  const lines: string[] = [];
  const row = (what: string, text: string) => lines.push(`${what.padEnd(14)}${text}`);
  row('pmu stat', `${url}  at ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC`);
  row('connections', `${one('pmu_connections_open')} open, ${one('pmu_connections_accepted_total')} accepted${rate('pmu_connections_accepted_total')}`);
  const ops = list('pmu_requests_total').sort((a, b) => b.value - a.value);
  row('requests', ops.length === 0 ? 'none' : ops.map((s) => `${s.labels.op} ${count(s.value)}${rate('pmu_requests_total', { op: s.labels.op })} ${bytes(one('pmu_request_bytes_total', { op: s.labels.op }))}`).join(', '));
  const refusals = list('pmu_refusals_total').filter((s) => s.value > 0);
  row('refusals', refusals.length === 0 ? 'none' : refusals.map((s) => `${s.labels.code} ${s.value}`).join(', '));
  const flushes = one('pmu_msync_seconds_count');
  if (flushes > 0) {
    const ms = (v: number | undefined) => (v === undefined ? '-' : v === Infinity ? '>1000 ms' : `<=${(v * 1000).toFixed(v < 0.001 ? 2 : 1)} ms`);
    const buckets = list('pmu_msync_seconds_bucket');
    row('msync', `${count(flushes)} flushes${rate('pmu_msync_seconds_count')}, mean ${((one('pmu_msync_seconds_sum') / flushes) * 1000).toFixed(3)} ms, p50 ${ms(quantile(buckets, 0.5))}, p99 ${ms(quantile(buckets, 0.99))}`);
    row('group commit', `${(one('pmu_group_commit_writes_sum') / Math.max(1, one('pmu_group_commit_writes_count'))).toFixed(1)} writes per flush, largest bucket <=${quantile(list('pmu_group_commit_writes_bucket'), 1) ?? '-'}`);
  } else {
    row('msync', 'no group-commit flush yet');
  }
  row('unit', `${bytes(one('pmu_unit_bytes'))}, ${one('pmu_unit_regions')} regions, ${bytes(one('pmu_unit_free_bytes'))} free`);
  const regions = list('pmu_region_writes_total').map((s) => s.labels.region);
  if (regions.length > 0) {
    lines.push('', `${'region'.padEnd(20)}${'writes'.padStart(16)}${'written'.padStart(12)}${'reads'.padStart(16)}${'read'.padStart(12)}`);
    for (const region of regions) {
      const l = { region };
      lines.push(`${region.slice(0, 19).padEnd(20)}${(count(one('pmu_region_writes_total', l)) + rate('pmu_region_writes_total', l)).padStart(16)}${bytes(one('pmu_region_write_bytes_total', l)).padStart(12)}${(count(one('pmu_region_reads_total', l)) + rate('pmu_region_reads_total', l)).padStart(16)}${bytes(one('pmu_region_read_bytes_total', l)).padStart(12)}`);
    }
  }
  const logs = list('pmu_checkpoint_epoch').map((s) => s.labels.region);
  if (logs.length > 0) {
    lines.push('', `${'checkpoint log'.padEnd(20)}${'epoch'.padStart(8)}${'lag records'.padStart(14)}${'lag bytes'.padStart(12)}${'heartbeat age'.padStart(16)}`);
    for (const region of logs) {
      const l = { region };
      const has = (name: string) => list(name).some((s) => s.labels.region === region);
      lines.push(`${region.slice(0, 19).padEnd(20)}${String(one('pmu_checkpoint_epoch', l)).padStart(8)}${(has('pmu_checkpoint_lag_records') ? String(one('pmu_checkpoint_lag_records', l)) : '-').padStart(14)}${(has('pmu_checkpoint_lag_bytes') ? bytes(one('pmu_checkpoint_lag_bytes', l)) : '-').padStart(12)}${`${one('pmu_checkpoint_heartbeat_age_seconds', l).toFixed(1)} s`.padStart(16)}`);
    }
  }
  return lines.join('\n');
}
