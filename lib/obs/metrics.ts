/**
 * The Prometheus view of a running server, with prom-client's registry and text format. A thin
 * layer: every figure is read when scraped from plain counters the server and the unit keep
 * anyway (ServerCounters, the unit's stats) and from the checkpoint logs' figures
 * (lib/checkpoint/log-figures.ts); nothing here is called from the request path. It sees its
 * sources only through MetricsSource, so it imports nothing of pmu's other layers.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { BucketSnapshot, UnitStats } from './counters';
import { ServerStats } from './server-counters';

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

/** The unit as the exposition reads it (PersistentMemoryUnit has this shape). */
export interface UnitFigures {
  readonly isClosed: boolean;
  stats(): UnitStats;
  info(): { size: number; freeBytes: number; regionCount: number };
}

export interface MetricsSource {
  /** The server's counters (PmuServer.stats); absent for a unit served by no server. */
  serverStats?: () => ServerStats;
  unit: UnitFigures;
  /** The checkpoint logs' figures at a scrape (CheckpointLogFigures.logs); absent: no log metrics. */
  logs?: () => Promise<LogFigures[]>;
}

export class PmuMetrics {
  readonly registry = new Registry();

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry });
    this.define();
  }

  private define(): void {
    const { unit } = this.source;
    const server = this.source.serverStats;
    const add = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', collect: () => Sample[] | Promise<Sample[]>) => {
      const metric = { name, help, type, get: async () => ({ name, help, type, values: await collect(), aggregator: 'sum' }) };
      // prom-client's Registry takes any object with name/help/type and get(): a collector that reads.
      this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    };
    const open = () => !unit.isClosed;
    const perKey = (record: Record<string, number | undefined>, label: string): Sample[] => Object.entries(record).map(([key, value]) => ({ labels: { [label]: key }, value: value ?? 0 }));

    add('pmu_connections_open', 'Connections open now', 'gauge', () => (server ? [{ value: server().connectionsOpen }] : []));
    add('pmu_connections_accepted_total', 'Connections accepted since start', 'counter', () => (server ? [{ value: server().connectionsAccepted }] : []));
    add('pmu_requests_total', 'Requests received, by operation', 'counter', () => (server ? perKey(server().requestsByOp, 'op') : []));
    add('pmu_request_bytes_total', 'Request body bytes received, by operation', 'counter', () => (server ? perKey(server().requestBytesByOp, 'op') : []));
    add('pmu_refusals_total', 'Error replies sent, by code', 'counter', () => (server ? perKey(server().refusals, 'code') : []));
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
      (this.source.logs ? await this.source.logs() : []).flatMap((log) => {
        const value = pick(log);
        return value === undefined ? [] : [{ labels: { region: log.region }, value }];
      });
    add('pmu_checkpoint_lag_records', 'Records appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagRecords));
    add('pmu_checkpoint_lag_bytes', 'Log bytes appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagBytes));
    add('pmu_checkpoint_epoch', "The log's epoch (bumped by every takeover)", 'gauge', () => logs((l) => l.epoch));
    add('pmu_checkpoint_heartbeat_age_seconds', "Seconds since the writer's heartbeat last moved (as sampled every 0.5 s)", 'gauge', () => logs((l) => l.heartbeatAgeSeconds));
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
