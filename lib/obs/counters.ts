/**
 * Plain counters the unit keeps as it works: a field increment on the hot path, nothing more.
 * Exporters (the Prometheus endpoint, `pmu stat`) read them when asked; nothing here knows
 * about them.
 */

/** Upper bounds, in seconds, of the msync latency buckets: 4 KiB on ext4 is ~0.1 ms, 16 MiB ~20 ms. */
export const FLUSH_SECONDS_BOUNDS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Upper bounds of the writes-per-flush buckets (group commit size). */
export const BATCH_SIZE_BOUNDS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];

/** A histogram as plain counts per bucket (not cumulative); values above the last bound count only in `count`. */
export class BucketCounts {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  add(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]) {
        this.counts[i]++;
        return;
      }
    }
  }

  snapshot(): BucketSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

export interface BucketSnapshot {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Per region, since the unit was opened (or the region created). */
export interface RegionCounters {
  name: string;
  writes: number;
  bytesWritten: number;
  reads: number;
  bytesRead: number;
}

/** What PersistentMemoryUnit.stats() returns. */
export interface UnitStats {
  /** Group-commit flushes (one msync each) and the writes they made durable. */
  flushes: number;
  flushedWrites: number;
  /** Of those flushes, the ones made on the event loop (a lone writer's, lib/unit/group-commit.ts); the rest ran on the libuv pool. */
  inlineFlushes: number;
  flushSeconds: BucketSnapshot;
  writesPerFlush: BucketSnapshot;
  regions: RegionCounters[];
}

/** A scrubber's counters (lib/mirror/scrub.ts), kept as it goes; the exporter reads them. */
export interface ScrubCounters {
  /** Bytes compared, per replica (each in-sync replica checksummed them). */
  bytesScrubbed: number;
  /** Chunks whose replicas differed (confirmed: the same checksums twice in a row). */
  mismatches: number;
  /** Mismatching chunks repaired from the majority. */
  repairs: number;
}

/** A set member's counters (pmu serve --join: lib/mirror/join.ts and agent.ts), kept as it goes. */
export interface MirrorCounters {
  /** Failed attempts to register in the set's directory. */
  joinFailures: number;
  /** 1 once registered, else 0. */
  joined: number;
  /** Resyncs of a region that failed (each is retried with backoff). */
  resyncFailures: number;
}
