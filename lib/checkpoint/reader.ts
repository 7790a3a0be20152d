/**
 * CheckpointReader: the backup's side. It reads the log in batches from its own position,
 * clears what it has consumed (advancing the persisted cursor so the writer can reuse the
 * space) and watches the primary; when the primary is gone, openPrimary(reader) takes over
 * from where it stands (takeover.ts).
 *
 * One reader owns the cursor at a time. Its read position runs ahead of the cleared cursor:
 * records read but not cleared are read again by the next reader if this one dies.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isPmuError, PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { decodeWord, encodeWord } from './format/checked-word';
import { damageError, findVouchingRecord } from './format/damage';
import { LogHeader, readCheckedWord, readHeader, wordBytes } from './format/header';
import { CheckpointMode, CURSOR_POSITION_OFFSET, CURSOR_SEQUENCE_OFFSET, HEADER_BYTES } from './format/layout';
import { CleanEndMemo, LogPoint, LogRecord, scanLog, ScanLimits, ScanStop, ScannedEntry } from './format/log-scan';
import { watchPrimary, PrimaryFailure, WatchPrimaryOptions } from './primary-watch';
import { withRepair } from './repair';
import { Checkpoint, readLatestCheckpoint } from './slots';

export interface LogBatch {
  records: LogRecord[];
  /** Why the batch ended: 'end' (caught up), 'limit', or 'torn' (a damaged record: the log is not trusted past it). */
  stop: ScanStop;
}

export interface FollowOptions extends ScanLimits {
  /** Poll period while caught up. Default 10 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** Clear each batch once the loop asks for the next one (it has been consumed). Default false. */
  autoClear?: boolean;
}

export interface ReaderOpenOptions {
  /** Wait up to this long for the primary to format the region. Default 0 (fail at once with ENOENT). */
  waitForLogMs?: number;
}

export class CheckpointReader {
  private readPoint: LogPoint;
  private clearedPosition: number;
  /** Entries read but not yet cleared, in log order (pads included: they must be cleared too). */
  private uncleared: ScannedEntry[] = [];
  private trustFirstSequence = true;
  private lastEpochTag = 0;
  private observedEpoch: bigint;
  private lastStopValue: ScanStop | undefined;
  private readonly cleanEnd: CleanEndMemo = { position: -1, header: Buffer.alloc(0) };

  private constructor(
    readonly region: Region,
    private readonly header: LogHeader,
  ) {
    this.readPoint = { position: header.cursorPosition, sequence: header.cursorSequence };
    this.clearedPosition = header.cursorPosition;
    this.observedEpoch = header.epoch;
  }

  static async open(region: Region, options: ReaderOpenOptions = {}): Promise<CheckpointReader> {
    const deadline = Date.now() + (options.waitForLogMs ?? 0);
    for (;;) {
      const header = await withRepair(region, () => readHeader(region));
      if (header) return new CheckpointReader(region, header);
      if (Date.now() >= deadline) throw new PmuError('ENOENT', `region '${region.name}' holds no checkpoint log yet: start the primary (openPrimary) first`);
      await sleep(5);
    }
  }

  get mode(): CheckpointMode {
    return this.header.mode;
  }

  /** Ring bytes (append) or bytes per slot (overwrite). */
  get capacity(): number {
    return this.header.capacity;
  }

  /** Position and sequence of the next record this reader will read. */
  get next(): LogPoint {
    return { ...this.readPoint };
  }

  /** The epoch of the primary this reader follows (as last seen). */
  get epoch(): bigint {
    return this.observedEpoch;
  }

  /** Why the last batch stopped. */
  get lastStop(): ScanStop | undefined {
    return this.lastStopValue;
  }

  /**
   * Append mode: the records after the read position, as many as the limits allow (default up
   * to 1 MiB). ECORRUPT when the walk stops at a record that a valid later record proves was
   * persisted (format/damage.ts): damage is reported, never taken for the end of the log.
   */
  async readBatch(limits: ScanLimits = {}): Promise<LogBatch> {
    this.needAppend('readBatch');
    return withRepair(this.region, () => this.readBatchOnce(limits));
  }

  private async readBatchOnce(limits: ScanLimits): Promise<LogBatch> {
    const scanOnce = () =>
      scanLog(this.region, this.header, this.readPoint, { ...limits, trustFirstSequence: this.trustFirstSequence, lastEpoch: this.lastEpochTag, cleanEnd: this.cleanEnd });
    let scan = await scanOnce();
    if (scan.stop.suspect && (await this.vouchedPast(scan.stop))) {
      // A live writer may have completed the record since it was read: read once more before calling it damage.
      const again = await scanOnce();
      if (again.stop.position === scan.stop.position && again.stop.reason !== 'limit') await this.refuseIfDamaged(again);
      scan = again;
    }
    if (scan.entries.length > 0) {
      this.trustFirstSequence = false;
      this.uncleared.push(...scan.entries);
    }
    this.readPoint = scan.next;
    this.lastEpochTag = scan.lastEpoch;
    this.lastStopValue = scan.stop;
    const records = scan.entries.flatMap((entry) => (entry.record ? [entry.record] : []));
    return { records, stop: scan.stop };
  }

  /**
   * Append mode: yields each non-empty batch, polling every `intervalMs` while caught up, until
   * `signal` aborts (then it ends quietly).
   */
  async *follow(options: FollowOptions = {}): AsyncGenerator<LogRecord[], void, undefined> {
    this.needAppend('follow');
    const intervalMs = options.intervalMs ?? 10;
    const signal = options.signal;
    let lastYielded: number | undefined;
    while (!signal?.aborted) {
      if (options.autoClear && lastYielded !== undefined) {
        await this.clear(lastYielded);
        lastYielded = undefined;
      }
      const { records } = await this.readBatch(options);
      if (records.length > 0) {
        lastYielded = records[records.length - 1].sequence;
        yield records;
        continue;
      }
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /**
   * Append mode: advances the persisted cursor past every record with a sequence up to
   * `upToSequence` that this reader has read, so the writer may reuse the space. Clearing up to
   * just before a snapshot drops history that recovery no longer needs.
   */
  async clear(upToSequence: number): Promise<void> {
    this.needAppend('clear');
    let last = -1;
    for (let i = 0; i < this.uncleared.length && this.uncleared[i].header.sequence <= upToSequence; i++) last = i;
    if (last < 0) return;
    const through = this.uncleared[last];
    const position = through.end;
    const sequence = through.header.sequence + 1;
    await this.moveCursor({ position, sequence });
    this.uncleared.splice(0, last + 1);
  }

  /**
   * Append mode: clears everything before `point`, the position and sequence of a record that
   * this process's own writer placed and saw persisted (CheckpointWriter.placeSnapshot), without
   * reading the records in between. Only for a primary that is its own reader: what it clears
   * is what it wrote, and its snapshot at `point` holds the state those records built. A point
   * behind the cursor, or more than a ring ahead of it, is EINVAL.
   */
  async clearBefore(point: LogPoint): Promise<void> {
    this.needAppend('clearBefore');
    const { position, sequence } = point;
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(sequence) || position < this.clearedPosition || position - this.clearedPosition > this.header.capacity || sequence < 1) {
      throw new PmuError('EINVAL', `clearBefore needs the position and sequence of a record placed in region '${this.region.name}' within one ring after the cursor (at ${this.clearedPosition}); got position ${position}, sequence ${sequence}`);
    }
    if (position === this.clearedPosition) return;
    await this.moveCursor(point);
    this.uncleared = this.uncleared.filter((entry) => entry.header.sequence >= sequence && entry.end > position);
    if (this.readPoint.position < position) {
      this.readPoint = { position, sequence };
      this.trustFirstSequence = false;
    }
  }

  private async moveCursor({ position, sequence }: LogPoint): Promise<void> {
    // The sequence word first: if we die before the position moves, the record still at the old
    // position is the authority (scanLog trusts it); the other order could leave a cursor whose
    // sequence describes an earlier record.
    await this.region.write(CURSOR_SEQUENCE_OFFSET, wordBytes(encodeWord('cursor sequence', sequence)), { durability: 'mapped' });
    const expected = encodeWord('cursor position', this.clearedPosition);
    const desired = encodeWord('cursor position', position);
    // A word that fails its own check is damage on the copy that decided the swap, not another
    // reader: decodeWord makes it ECORRUPT, and withRepair asks again of a copy that passes
    // (nothing was swapped; the sequence word above is already on every copy). A mirrored set
    // whose configuration changed under the swap cannot say whether it landed (ECONFIG): the
    // word itself says, read again; finding our own new position there means our swap landed.
    const swap = async (): Promise<bigint> => {
      for (let tries = 0; ; tries++) {
        try {
          const found = await this.region.compareAndSwap(CURSOR_POSITION_OFFSET, expected, desired, { durability: 'mapped' });
          if (found !== expected) decodeWord('cursor position', found, this.region.name, CURSOR_POSITION_OFFSET);
          return found;
        } catch (error) {
          if (!(error instanceof PmuError) || error.code !== 'ECONFIG' || tries >= 8) throw error;
          const found = (await this.region.read(CURSOR_POSITION_OFFSET, 8)).readBigUInt64LE(0);
          decodeWord('cursor position', found, this.region.name, CURSOR_POSITION_OFFSET);
          if (found === desired) return expected;
          if (found !== expected) return found;
        }
      }
    };
    const previous = await withRepair(this.region, swap);
    if (previous !== expected) {
      throw new PmuError('EBUSY', `the cursor of region '${this.region.name}' was moved by someone else (expected position ${this.clearedPosition}, found word 0x${previous.toString(16)}): only one reader may clear a log`);
    }
    // One flush for both words (they share a page and a sector).
    await this.region.flush(CURSOR_POSITION_OFFSET, 16);
    this.clearedPosition = position;
  }

  /** Overwrite mode: the newest valid checkpoint, or undefined if none was written yet. */
  async latest(): Promise<Checkpoint | undefined> {
    if (this.header.mode !== 'overwrite') throw new PmuError('EINVAL', `latest() needs an overwrite-mode log; region '${this.region.name}' holds an append-mode log (use readBatch)`);
    return (await withRepair(this.region, () => readLatestCheckpoint(this.region, this.header))).checkpoint;
  }

  /**
   * Resolves when the primary looks gone: its heartbeat has not moved for `leaseMs` by this
   * process's clock, or the region reports that the writer's connection dropped. A takeover by
   * someone else (the epoch moved) restarts the watch on the new primary.
   */
  async watchPrimary(options: WatchPrimaryOptions = {}): Promise<PrimaryFailure> {
    return watchPrimary(this.region, options, (epoch) => {
      this.observedEpoch = epoch;
    });
  }

  /** @internal The log's header as this reader opened it (takeover.ts). */
  get logHeader(): LogHeader {
    return this.header;
  }

  /** @internal Takeover fenced the old writer: this reader now follows `epoch`. */
  adoptEpoch(epoch: bigint): void {
    this.observedEpoch = epoch;
  }

  /**
   * @internal Takeover, append mode, after the fence: reads every record not read yet and
   * returns them with where the new writer starts and how far a flush from the region start
   * must reach to cover the header and the live ring. ECORRUPT if the log is damaged.
   */
  async readRest(): Promise<{ records: LogRecord[]; stop: ScanStop; next: LogPoint; clearedPosition: number; flushEnd: number }> {
    const records: LogRecord[] = [];
    let batch: LogBatch;
    for (let repairs = 0; ; repairs++) {
      do {
        batch = await this.readBatch();
        records.push(...batch.records);
      } while (batch.stop.reason === 'limit');
      this.clearedPosition = Number(await withRepair(this.region, () => readCheckedWord(this.region, 'cursor position', CURSOR_POSITION_OFFSET)));
      // readBatch looked past a suspect end already; the writer will overwrite what sits there,
      // so look once more now that no one else can write (the old writer is fenced).
      if (!batch.stop.suspect) break;
      try {
        await this.refuseIfDamaged(batch);
        break;
      } catch (error) {
        // Damage on the copy read: if another copy passes, read on from there (it may hold more).
        if (!isPmuError(error, 'ECORRUPT') || !this.region.repair || repairs >= 3 || !(await this.region.repair(error))) throw error;
      }
    }
    return { records, stop: batch.stop, next: this.next, clearedPosition: this.clearedPosition, flushEnd: this.flushEnd(this.clearedPosition, this.readPoint.position) };
  }

  /**
   * End of one flush from the region start that covers the header and the ring bytes holding
   * logical positions [from, to): one msync instead of two or three (pages already clean in
   * between cost next to nothing; every msync costs a device cache flush).
   */
  private flushEnd(from: number, to: number): number {
    const { capacity, dataOffset } = this.header;
    const length = Math.min(capacity, to - from);
    if (length <= 0) return HEADER_BYTES;
    const start = from % capacity;
    return dataOffset + (start + length <= capacity ? start + length : capacity);
  }

  private async vouchedPast(stop: ScanStop) {
    return findVouchingRecord(this.region, this.header, stop, this.clearedPosition + this.header.capacity);
  }

  private async refuseIfDamaged(scan: { stop: ScanStop }): Promise<void> {
    const voucher = await this.vouchedPast(scan.stop);
    if (voucher) throw damageError(this.region, this.header, scan.stop, voucher);
  }

  private needAppend(what: string): void {
    if (this.header.mode !== 'append') throw new PmuError('EINVAL', `${what}() needs an append-mode log; region '${this.region.name}' holds an overwrite-mode log (use latest())`);
  }
}
