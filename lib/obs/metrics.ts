/**
 * The Prometheus view of a running server, with prom-client's registry and text format. A thin
 * layer: every figure is read when scraped from plain counters the server and the unit keep
 * anyway (ServerCounters, the unit's stats) and from the checkpoint logs' figures
 * (lib/checkpoint/log-figures.ts); nothing here is called from the request path. It sees its
 * sources only through MetricsSource, so it imports nothing of pmu's other layers.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { BucketSnapshot, MirrorCounters, ScrubCounters, UnitStats } from './counters';
import { ServerStats } from './server-counters';

interface Sample {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What one checkpoint log looks like at a scrape. */
export interface LogFigures {
  region: string;
  /** The region's handle: its label when names are hidden. */
  handle: number;
  mode: 'append' | 'overwrite';
  epoch: number;
  /** Records and bytes written but not yet cleared by the backup (append mode). */
  lagRecords?: number;
  lagBytes?: number;
  /** False while a long log is still being walked for the first time: the lag is a lower bound. */
  lagExact?: boolean;
  heartbeatAgeSeconds?: number;
}

/** The unit as the exposition reads it (PersistentMemoryUnit has this shape). */
export interface UnitFigures {
  readonly isClosed: boolean;
  stats(): UnitStats;
  info(): { size: number; freeBytes: number; regionCount: number };
  listRegions(): Array<{ name: string; handle: number }>;
}

export interface MetricsSource {
  /** The server's counters (PmuServer.stats); absent for a unit served by no server. */
  serverStats?: () => ServerStats;
  unit: UnitFigures;
  /** The checkpoint logs' figures at a scrape (CheckpointLogFigures.logs); absent: no log metrics. */
  logs?: () => Promise<LogFigures[]>;
  /** A background scrubber's counters (pmu serve --join --scrub); absent: no scrub metrics. */
  scrub?: () => ScrubCounters;
  /**
   * Label regions by name. Off by default: a scrape is unauthenticated, and names can say what
   * a region holds (and that it exists) to someone granted nothing; regions are then labelled
   * by handle ("#3"; `pmu region list` shows handles).
   */
  regionNames?: boolean;
  /** A set member's join and agent counters (pmu serve --join); absent: no pmu_mirror_* metrics. */
  mirror?: () => MirrorCounters;
}

export class PmuMetrics {
  readonly registry = new Registry();

  constructor(private readonly source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry });
    // prom-client names three gauges *_total, which the exposition format keeps for counters
    // (promtool check metrics refuses them); nodejs_active_resources, by type, says the same.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
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
    add('pmu_flushes_total', 'Group-commit flushes, by where the msync ran: inline on the event loop (a lone writer) or on the libuv pool', 'counter', () => {
      if (!open()) return [];
      const { flushes, inlineFlushes } = unit.stats();
      return [{ labels: { thread: 'inline' }, value: inlineFlushes }, { labels: { thread: 'pool' }, value: flushes - inlineFlushes }];
    });
    add('pmu_group_commit_writes', 'Durable writes made durable by one flush (group-commit size)', 'histogram', () => (open() ? histogram('pmu_group_commit_writes', unit.stats().writesPerFlush) : []));
    const names = this.source.regionNames === true;
    /** Counters of the regions in the table now, with their label. */
    const regions = () => {
      if (!open()) return [];
      const handles = new Map(unit.listRegions().map((r) => [r.name, r.handle]));
      return unit.stats().regions.flatMap((r) => {
        const handle = handles.get(r.name);
        return handle === undefined ? [] : [{ ...r, label: names ? r.name : `#${handle}` }];
      });
    };
    add('pmu_region_writes_total', 'Writes into a region', 'counter', () => regions().map((r) => ({ labels: { region: r.label }, value: r.writes })));
    add('pmu_region_write_bytes_total', 'Bytes written into a region', 'counter', () => regions().map((r) => ({ labels: { region: r.label }, value: r.bytesWritten })));
    add('pmu_region_reads_total', 'Reads from a region', 'counter', () => regions().map((r) => ({ labels: { region: r.label }, value: r.reads })));
    add('pmu_region_read_bytes_total', 'Bytes read from a region', 'counter', () => regions().map((r) => ({ labels: { region: r.label }, value: r.bytesRead })));
    add('pmu_unit_bytes', 'Size of the PMU file', 'gauge', () => (open() ? [{ value: unit.info().size }] : []));
    add('pmu_unit_free_bytes', 'Bytes not allocated to any region', 'gauge', () => (open() ? [{ value: unit.info().freeBytes }] : []));
    add('pmu_unit_regions', 'Regions in the table', 'gauge', () => (open() ? [{ value: unit.info().regionCount }] : []));
    // One read of the logs' headers serves every log metric of a scrape (prom-client starts all collectors at once).
    let logsRead: Promise<LogFigures[]> | undefined;
    const readLogs = (): Promise<LogFigures[]> => {
      if (!this.source.logs) return Promise.resolve([]);
      logsRead ??= this.source.logs().finally(() => (logsRead = undefined));
      return logsRead;
    };
    const logs = async (pick: (log: LogFigures) => number | undefined) =>
      (await readLogs()).flatMap((log) => {
        const value = pick(log);
        return value === undefined ? [] : [{ labels: { region: names ? log.region : `#${log.handle}` }, value }];
      });
    add('pmu_checkpoint_lag_records', 'Records appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagRecords));
    add('pmu_checkpoint_lag_bytes', 'Log bytes appended but not yet cleared by the backup', 'gauge', () => logs((l) => l.lagBytes));
    add('pmu_checkpoint_lag_exact', 'Whether the lag figures are exact (0 while a long log is walked for the first time: they are a lower bound)', 'gauge', () =>
      logs((l) => (l.lagExact === undefined ? undefined : l.lagExact ? 1 : 0)),
    );
    add('pmu_checkpoint_epoch', "The log's epoch (bumped by every takeover)", 'gauge', () => logs((l) => l.epoch));
    const scrub = this.source.scrub;
    add('pmu_scrub_bytes_total', 'Bytes of mirrored regions compared by checksum across their in-sync replicas', 'counter', () => (scrub ? [{ value: scrub().bytesScrubbed }] : []));
    add('pmu_scrub_mismatches_total', 'Chunks whose in-sync replicas held different bytes (confirmed)', 'counter', () => (scrub ? [{ value: scrub().mismatches }] : []));
    add('pmu_scrub_repairs_total', 'Mismatching chunks repaired from the majority of replicas', 'counter', () => (scrub ? [{ value: scrub().repairs }] : []));
    const mirror = this.source.mirror;
    add('pmu_mirror_joined', 'Whether this PMU is registered in its set (1) or still trying to join (0)', 'gauge', () => (mirror ? [{ value: mirror().joined }] : []));
    add('pmu_mirror_join_failures_total', "Failed attempts to register in the set's directory (retried with backoff)", 'counter', () => (mirror ? [{ value: mirror().joinFailures }] : []));
    add('pmu_mirror_resync_failures_total', "Failed resyncs of this PMU's copies (each region retried with backoff)", 'counter', () => (mirror ? [{ value: mirror().resyncFailures }] : []));
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
