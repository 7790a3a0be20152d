/**
 * The checkpoint logs of a unit as the metrics see them: lag, epoch and heartbeat age per log
 * (LogFigures, lib/obs/metrics.ts).
 *
 * A scrape costs O(regions), never O(log): it reads each log's 80-byte header (epoch, cursor)
 * and takes the log's tail from a memo. The tail is found by content only (log-scan.ts), so a
 * tracker walks forward from the memo in the background, in slices of SLICE_BYTES with the
 * event loop free between slices: each record is walked once, when it is new, not at every
 * scrape. Until a long log has been walked once, its lag reads as what is known so far (a lower
 * bound) and `lagExact` is false. The same tick samples each heartbeat word (a counter the
 * writer bumps, not a clock), for "seconds since the writer's heartbeat last moved".
 */
import type { LogFigures } from '../obs/metrics';
import type { PersistentMemoryUnit } from '../unit/unit';
import { LogHeader, readHeader } from './format/header';
import { LogPoint, scanLog } from './format/log-scan';

const TICK_MS = 500;
/** Bytes of ring one slice walks before the event loop gets a turn (well under a millisecond). */
const SLICE_BYTES = 64 * 1024;
/** Bytes one tick walks per log at most: a flood of records is caught up over several ticks. */
const TICK_BYTES = 16 * 1024 * 1024;

interface TailMemo {
  logId: number;
  tail: LogPoint;
  lastEpoch: number;
  /** The walk reached the end (or a torn record) at its last try: the lag is exact. */
  caughtUp: boolean;
}

export class CheckpointLogFigures {
  private readonly heartbeats = new Map<string, { value: bigint; changedAt: number }>();
  private readonly tails = new Map<string, TailMemo>();
  private readonly ticker: NodeJS.Timeout;
  private ticking: Promise<void> | undefined;
  private closed = false;
  /** Ring bytes walked since start: what the figures cost (tests, diagnostics). */
  readonly stats = { bytesWalked: 0 };

  constructor(private readonly unit: PersistentMemoryUnit) {
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
    this.tick();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
  }

  /** Resolves once the tracker has walked every log to its end as it is now (tests, `pmu stat`). */
  async settle(): Promise<void> {
    for (let rounds = 0; rounds < 10_000 && !this.closed; rounds++) {
      await this.ticking; // one that started before the caller's change may miss it
      await this.run();
      if ([...this.tails.values()].every((memo) => memo.caughtUp)) return;
    }
  }

  /** The checkpoint logs of the unit, with lag, epoch and heartbeat age: headers only. */
  async logs(): Promise<LogFigures[]> {
    const { unit } = this;
    if (unit.isClosed) return [];
    const figures: LogFigures[] = [];
    for (const info of unit.listRegions()) {
      let header: LogHeader | undefined;
      try {
        header = await readHeader(unit.observerRegion(info.name));
      } catch {
        continue; // not a log (other bytes), damaged, or deleted meanwhile: no figures for it
      }
      if (!header) continue;
      const beat = this.heartbeats.get(info.name);
      const log: LogFigures = {
        region: info.name,
        handle: info.handle,
        mode: header.mode,
        epoch: Number(header.epoch),
        heartbeatAgeSeconds: beat && beat.value === header.heartbeat ? (Date.now() - beat.changedAt) / 1000 : 0,
      };
      if (header.mode === 'append') {
        const memo = this.tails.get(info.name);
        const tail = memo && memo.logId === header.logId && memo.tail.position >= header.cursorPosition ? memo.tail : { position: header.cursorPosition, sequence: header.cursorSequence };
        log.lagRecords = Math.max(0, tail.sequence - header.cursorSequence);
        log.lagBytes = Math.max(0, tail.position - header.cursorPosition);
        log.lagExact = memo?.caughtUp === true && tail === memo.tail;
      }
      figures.push(log);
    }
    return figures;
  }

  private tick(): void {
    if (this.closed || this.ticking) return;
    void this.run();
  }

  private run(): Promise<void> {
    this.ticking = this.walk().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async walk(): Promise<void> {
    const { unit } = this;
    if (unit.isClosed) return;
    const now = Date.now();
    const seen = new Set<string>();
    let names: string[];
    try {
      names = unit.listRegions().map((info) => info.name);
    } catch {
      return; // the unit closed under us
    }
    for (const name of names) {
      if (this.closed || unit.isClosed) return;
      seen.add(name);
      try {
        const region = unit.observerRegion(name);
        const header = await readHeader(region);
        if (!header) continue;
        const last = this.heartbeats.get(name);
        if (!last || last.value !== header.heartbeat) this.heartbeats.set(name, { value: header.heartbeat, changedAt: now });
        if (header.mode === 'append') await this.advance(name, header);
      } catch {
        this.tails.delete(name); // damaged or deleted meanwhile: start afresh when it reads again
      }
    }
    for (const name of this.heartbeats.keys()) if (!seen.has(name)) this.heartbeats.delete(name);
    for (const name of this.tails.keys()) if (!seen.has(name)) this.tails.delete(name);
  }

  /** Walks log `name` forward from its memo (or its cursor), a slice at a time. */
  private async advance(name: string, header: LogHeader): Promise<void> {
    let memo = this.tails.get(name);
    // A new log, another format of the region, or a backup that cleared past what was walked: from the cursor.
    const fromCursor = !memo || memo.logId !== header.logId || memo.tail.position < header.cursorPosition;
    if (fromCursor) {
      memo = { logId: header.logId, tail: { position: header.cursorPosition, sequence: header.cursorSequence }, lastEpoch: 0, caughtUp: false };
      this.tails.set(name, memo);
    }
    const region = this.unit.observerRegion(name);
    let first = fromCursor;
    for (let walked = 0; walked < TICK_BYTES; ) {
      const scan = await scanLog(region, header, memo!.tail, { maxBytes: SLICE_BYTES, trustFirstSequence: first, lastEpoch: memo!.lastEpoch });
      first = false;
      const bytes = scan.next.position - memo!.tail.position;
      walked += bytes;
      this.stats.bytesWalked += bytes;
      memo!.tail = scan.next;
      memo!.lastEpoch = scan.lastEpoch;
      memo!.caughtUp = scan.stop.reason !== 'limit';
      if (memo!.caughtUp || this.closed) return;
      await new Promise<void>((resolve) => setImmediate(resolve)); // the event loop's turn
    }
  }
}
