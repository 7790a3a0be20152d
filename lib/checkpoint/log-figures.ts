/**
 * The checkpoint logs of a unit as the metrics see them: lag, epoch and heartbeat age per log
 * (LogFigures, lib/obs/metrics.ts). Read when a scrape asks, one walk at a time.
 *
 * The one thing sampled between scrapes is each log's heartbeat word (a counter the writer
 * bumps, not a clock): "seconds since the writer's last heartbeat" needs to know when it last
 * moved. The sampler reads 72-byte headers twice a second.
 */
import type { LogFigures } from '../obs/metrics';
import type { PersistentMemoryUnit } from '../unit/unit';
import { readHeader } from './format/header';
import { CheckpointReader } from './reader';

const HEARTBEAT_SAMPLE_MS = 500;

export class CheckpointLogFigures {
  private readonly heartbeats = new Map<string, { value: bigint; changedAt: number }>();
  private readonly sampler: NodeJS.Timeout;
  private logsInFlight: Promise<LogFigures[]> | undefined;

  constructor(private readonly unit: PersistentMemoryUnit) {
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

  private async readLogs(): Promise<LogFigures[]> {
    const { unit } = this;
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
    const { unit } = this;
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
