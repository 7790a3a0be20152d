/**
 * The Prometheus view of a running server, with prom-client's registry and text format. A thin
 * layer: every figure is read when scraped from plain counters the server and the unit keep
 * anyway (PmuServer.stats(), PersistentMemoryUnit.stats()) or from the regions' checkpoint
 * headers; nothing here is called from the request path.
 *
 * The one thing sampled between scrapes is each log's heartbeat word (a counter the writer
 * bumps, not a clock): "seconds since the writer's last heartbeat" needs to know when it last
 * moved. The sampler reads 72-byte headers twice a second.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { readHeader } from '../checkpoint/header';
import { CheckpointReader } from '../checkpoint/reader';
import { PmuServer } from '../server/server';
import { BucketSnapshot } from '../unit/counters';
import { PersistentMemoryUnit } from '../unit/unit';

interface Sample {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What one checkpoint log looks like at a scrape. */
export interface LogFigures {
  region: string;
  mode: 'append' | 'overwrite';
  epoch: number;
  /** Records and bytes written but not yet cleared by the backup (append mode). */
  lagRecords?: number;
  lagBytes?: number;
  heartbeatAgeSeconds?: number;
}

export interface MetricsSource {
  server: PmuServer;
  unit: PersistentMemoryUnit;
}

const HEARTBEAT_SAMPLE_MS = 500;

export class PmuMetrics {
  readonly registry = new Registry();
  private readonly heartbeats = new Map<string, { value: bigint; changedAt: number }>();
  private readonly sampler: NodeJS.Timeout;
  private logsInFlight: Promise<LogFigures[]> | undefined;

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry });
    this.define();
    this.sampler = setInterval(() => void this.sampleHeartbeats(), HEARTBEAT_SAMPLE_MS);
    this.sampler.unref();
    void this.sampleHeartbeats();
  }

  close(): void {
    clearInterval(this.sampler);
  }

  /** The checkpoint logs of the unit, with lag, epoch and heartbeat age. One walk per scrape. */
  logs(): Promise<LogFigures[]> {
    if (!this.logsInFlight) {
      this.logsInFlight = this.readLogs().finally(() => {
        this.logsInFlight = undefined;
      });
    }
    return this.logsInFlight;
  }

  private define(): void {
    const { server, unit } = this.source;
    const add = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => Sample[] | Promise<Sample[]>) => {
      const metric = { name, help, type, get: async () => ({ name, help, type, values: await collect(), aggregator: 'sum' }) };
      // prom-client's Registry takes any object with name/help/type and get(): a collector that reads.
      this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    };
    const open = () => !unit.isClosed;
    const perKey = (record: Record<string, number | undefined>, label: string): Sample[] => Object.entries(record).map(([key, value]) => ({ labels: { [label]: key }, value: value ?? 0 }));

    add('pmu_connections_open', 'Connections open now', 'gauge', () => [{ value: server.stats().connectionsOpen }]);
    add('pmu_connections_accepted_total', 'Connections accepted since start', 'counter', () => [{ value: server.stats().connectionsAccepted }]);
    add('pmu_requests_total', 'Requests received, by operation', 'counter', () => perKey(server.stats().requestsByOp, 'op'));
    add('pmu_request_bytes_total', 'Request body bytes received, by operation', 'counter', () => perKey(server.stats().requestBytesByOp, 'op'));
    add('pmu_refusals_total', 'Error replies sent, by code', 'counter', () => perKey(server.stats().refusals, 'code'));
    add('pmu_msync_seconds', 'Latency of each group-commit flush (one msync)', 'histogram', () => (open() ? histogram('pmu_msync_seconds', unit.stats().flushSeconds) : []));
    add('pmu_group_commit_writes', 'Durable writes made durable by one flush (group-commit size)', 'histogram', () => (open() ? histogram('pmu_group_commit_writes', unit.stats().writesPerFlush) : []));
    const regions = () => (open() ? unit.stats().regions : []);
    add('pmu_region_writes_total', 'Writes into a region', 'counter', () => regions().map((r) => ({ labels: { region: r.name }, value: r.writes })));
    add('pmu_region_write_bytes_total', 'Bytes written into a region', 'counter', () => regions().map((r) => ({ labels: { region: r.name }, value: r.bytesWritten })));
    add('pmu_region_reads_total', 'Reads from a region', 'counter', () => regions().map((r) => ({ labels: { region: r.name }, value: r.reads })));
    add('pmu_region_read_bytes_total', 'Bytes read from a region', 'counter', () => regions().map((r) => ({ labels: { region: r.name }, value: r.bytesRead })));
    add('pmu_unit_bytes', 'Size of the PMU file', 'gauge', () => (open() ? [{ value: unit.info().size }] : []));
    add('pmu_unit_free_bytes', 'Bytes not allocated to any region', 'gauge', () => (open() ? [{ value: unit.info().freeBytes }] : []));
    add('pmu_unit_regions', 'Regions in the table', 'gauge', () => (open() ? [{ value: unit.info().regionCount }] : []));
    const logs = async (pick: (log: LogFigures) => number | undefined) =>
      (await this.logs()).flatMap((log) => {
        const value = pick(log);
        return value === undefined ? [] : [{ labels: { region: log.region }, value }];
      });
    add('pmu_checkpoint_lag_records', 'Records appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagRecords));
    add('pmu_checkpoint_lag_bytes', 'Log bytes appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagBytes));
    add('pmu_checkpoint_epoch', "The log's epoch (bumped by every takeover)", 'gauge', () => logs((l) => l.epoch));
    add('pmu_checkpoint_heartbeat_age_seconds', "Seconds since the writer's heartbeat last moved (as sampled every 0.5 s)", 'gauge', () => logs((l) => l.heartbeatAgeSeconds));
  }

  private async readLogs(): Promise<LogFigures[]> {
    const { unit } = this.source;
    if (unit.isClosed) return [];
    const figures: LogFigures[] = [];
    for (const info of unit.listRegions()) {
      try {
        const region = unit.observerRegion(info.name);
        const header = await readHeader(region);
        if (!header) continue;
        const beat = this.heartbeats.get(info.name);
        const log: LogFigures = {
          region: info.name,
          mode: header.mode,
          epoch: Number(header.epoch),
          heartbeatAgeSeconds: beat && beat.value === header.heartbeat ? (Date.now() - beat.changedAt) / 1000 : 0,
        };
        if (header.mode === 'append') {
          // Walk what the backup has not cleared (read only, nothing is cleared here).
          const reader = await CheckpointReader.open(region);
          const start = reader.next;
          for (;;) {
            const batch = await reader.readBatch();
            if (batch.stop.reason !== 'limit') break;
          }
          log.lagRecords = reader.next.sequence - start.sequence;
          log.lagBytes = reader.next.position - start.position;
        }
        figures.push(log);
      } catch {
        // Not a log (other bytes), damaged, or deleted meanwhile: no figures for it.
      }
    }
    return figures;
  }

  private async sampleHeartbeats(): Promise<void> {
    const { unit } = this.source;
    if (unit.isClosed) return;
    const now = Date.now();
    try {
      const seen = new Set<string>();
      for (const info of unit.listRegions()) {
        seen.add(info.name);
        let header;
        try {
          header = await readHeader(unit.observerRegion(info.name));
        } catch {
          continue;
        }
        if (!header) continue;
        const last = this.heartbeats.get(info.name);
        if (!last || last.value !== header.heartbeat) this.heartbeats.set(info.name, { value: header.heartbeat, changedAt: now });
      }
      for (const name of this.heartbeats.keys()) if (!seen.has(name)) this.heartbeats.delete(name);
    } catch {
      // The unit closed under us: the next tick returns early.
    }
  }
}

/** Prometheus histogram samples (cumulative buckets, +Inf, sum, count) from plain per-bucket counts. */
function histogram(name: string, snapshot: BucketSnapshot): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  snapshot.bounds.forEach((bound, i) => {
    cumulative += snapshot.counts[i];
    samples.push({ metricName: `${name}_bucket`, labels: { le: bound }, value: cumulative });
  });
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: snapshot.count });
  samples.push({ metricName: `${name}_sum`, value: snapshot.sum });
  samples.push({ metricName: `${name}_count`, value: snapshot.count });
  return samples;
}
