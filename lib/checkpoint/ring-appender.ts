/**
 * The append side of the ring: places records in order, never over bytes the reader has not
 * cleared, and acknowledges each one only when it and every record before it are persisted.
 *
 * Pipelining: placing a record (sequence, position, the write call) happens synchronously in
 * call order, so the region receives records in sequence order; the flushes of concurrent
 * appends overlap (LocalRegion joins them into one group commit; a RemoteRegion pipelines
 * them on its connection). Acks are chained so they fire in order.
 *
 * Space: `clearedHint` is the reader's cursor as last read and flushed; it only ever lags the
 * real one, so trusting it is safe. When a record does not fit, the persisted cursor is read again;
 * if it still does not fit the record fails with EFULL or waits (bounded), as configured.
 * Waiting records block the ones behind them, which keeps the order.
 */
import { PmuError } from '../unit/errors';
import { Durability, Region } from '../unit/region';
import { CURSOR_POSITION_OFFSET } from './format/layout';
import { fenceFor, LogHeader, readCheckedWord } from './format/header';
import { encodePad, END_MARK_BYTES, epochTag, frameFor, isSplitPayload, RecordFrame, recordBytes, RECORD_HEADER_BYTES, sealFrame, sealSplit, SplitPayload } from './format/record';
import { LogPoint } from './format/log-scan';
import { withRepair } from './repair';
import { WriterHealth } from './writer-health';

export type WhenFull = 'error' | 'wait';

export interface AppenderOptions {
  durability: Durability;
  whenFull: WhenFull;
  /** How long a record may wait for room in 'wait' mode before failing with EFULL. */
  fullWaitMs: number;
  /** How often the persisted cursor is read again while waiting for room. */
  fullPollMs: number;
}

interface Pending {
  type: 'update' | 'snapshot';
  frame: RecordFrame | SplitPayload;
  deadline: number;
  resolve(placed: LogPoint): void;
  reject(error: unknown): void;
}

export class RingAppender {
  private head: number;
  private nextSequence: number;
  private clearedHint: number;
  private readonly queue: Pending[] = [];
  private refreshing = false;
  /** Settles when every record placed so far is persisted; rejects once any of them failed. */
  private persistedSoFar: Promise<void> = Promise.resolve();
  /**
   * Every record up to this sequence is flushed: written into each record placed (its durable
   * mark), so recovery can tell damage from a torn tail. Only 'flushed' acks move it.
   */
  private durableThrough: number;
  /** The same for every write of this writer: built once (the fence word costs a CRC-8 of a BigInt). */
  private readonly writeOptions: { durability: Durability; fence: { offset: number; epoch: bigint } };

  constructor(
    private readonly region: Region,
    private readonly header: LogHeader,
    private readonly epoch: bigint,
    start: LogPoint,
    clearedPosition: number,
    durable: number,
    private readonly options: AppenderOptions,
    private readonly health: WriterHealth,
  ) {
    this.head = start.position;
    this.nextSequence = start.sequence;
    this.clearedHint = clearedPosition;
    this.durableThrough = durable;
    this.writeOptions = { durability: options.durability, fence: fenceFor(epoch) };
  }

  /** The sequence the next placed record will get. */
  get sequence(): number {
    return this.nextSequence;
  }

  /**
   * Appends the payload built in `frame`; the frame's buffer is the appender's from now on. A
   * SplitPayload is written from the caller's buffer if it is placed at once (the region
   * copies before write() returns); one that must wait for room is copied first.
   */
  append(type: 'update' | 'snapshot', frame: RecordFrame | SplitPayload): Promise<LogPoint> {
    this.health.assertUsable();
    const size = recordBytes(frame.length);
    if (size > this.header.capacity) {
      return Promise.reject(new PmuError('ETOOBIG', `a ${frame.length}-byte ${type} needs ${size} bytes of ring but the ring of region '${this.region.name}' holds ${this.header.capacity}: use a larger region, or split it`));
    }
    // Nothing waiting and room at the head (the common case): place it now, no queue.
    if (this.queue.length === 0 && !this.refreshing && !this.health.failure && this.makeRoom(size)) return this.place(type, frame);
    const queued = isSplitPayload(frame) ? frameFor(frame.payload) : frame;
    return new Promise<LogPoint>((resolve, reject) => {
      this.queue.push({ type, frame: queued, deadline: Date.now() + this.options.fullWaitMs, resolve, reject });
      this.placeQueued();
    });
  }

  /** Settles once everything placed so far is persisted (rejects if any of it failed). */
  drained(): Promise<void> {
    return this.persistedSoFar;
  }

  /** Places queued records while they fit; starts a cursor refresh when the first does not. */
  private placeQueued(): void {
    while (this.queue.length > 0 && !this.refreshing) {
      const pending = this.queue[0];
      const failure = this.health.failure;
      if (failure) {
        this.queue.shift();
        pending.reject(failure);
        continue;
      }
      if (!this.makeRoom(recordBytes(pending.frame.length))) {
        this.refreshing = true;
        void this.refreshCursor();
        return;
      }
      this.queue.shift();
      this.place(pending.type, pending.frame).then(pending.resolve, pending.reject);
    }
  }

  /**
   * True if a record of `size` bytes can go at the head now. A record that would cross the
   * ring end first needs the tail filled; the pad is written as soon as the tail is free (so
   * the reader can clear it), even if the record itself must still wait.
   */
  private makeRoom(size: number): boolean {
    const capacity = this.header.capacity;
    const tail = capacity - (this.head % capacity);
    if (tail < size) {
      if (this.head + tail - this.clearedHint > capacity) return false;
      if (tail >= RECORD_HEADER_BYTES) {
        const pad = encodePad(this.nextSequence - 1, this.head, this.durableThrough, epochTag(this.epoch), tail - RECORD_HEADER_BYTES, this.header.logId);
        this.issue(this.head, pad, this.nextSequence - 1);
      }
      this.head += tail;
    }
    return this.head + size - this.clearedHint <= capacity;
  }

  /** Places a record at the head (room was made); resolves with where it sits once persisted. */
  private place(type: Pending['type'], frame: RecordFrame | SplitPayload): Promise<LogPoint> {
    const sequence = this.nextSequence++;
    const position = this.head;
    const header = { sequence, position, durable: this.durableThrough, epoch: epochTag(this.epoch), type };
    const size = recordBytes(frame.length);
    const withMark = this.endMarkFits(this.head + size);
    let persisted: Promise<void>;
    if (isSplitPayload(frame)) {
      const { head, tail } = sealSplit(header, frame, this.header.logId);
      persisted = this.issueSplit(position, head, frame.payload, withMark ? tail : tail.subarray(0, tail.length - END_MARK_BYTES), sequence);
    } else {
      const sealed = sealFrame(header, frame, this.header.logId);
      persisted = this.issue(position, withMark ? sealed : sealed.subarray(0, size), sequence);
    }
    this.head += size;
    return persisted.then(() => ({ position, sequence }));
  }

  /**
   * The end mark goes with the record when its bytes are free ring space (cleared, and before
   * the ring end: a mark never wraps). Without one, a reader that catches up may find stale
   * bytes there and search the ring past them; that only costs it time.
   */
  private endMarkFits(end: number): boolean {
    const ringOffset = end % this.header.capacity;
    return ringOffset !== 0 && ringOffset + END_MARK_BYTES <= this.header.capacity && end + END_MARK_BYTES - this.clearedHint <= this.header.capacity;
  }

  /** One write call for the whole record (a torn one fails its CRC); acked in placement order. */
  private issue(position: number, bytes: Buffer, sequence: number): Promise<void> {
    const offset = this.header.dataOffset + (position % this.header.capacity);
    return this.track(writeAsPromise(this.region, offset, bytes, this.writeOptions), sequence);
  }

  /**
   * A split record (records never wrap: it is contiguous): the payload and its tail first,
   * the header last, all in this turn so they share one group flush. Until the header lands
   * a reader finds the previous record's end mark there, never a header whose payload is
   * still on its way; a torn record fails its CRC like a torn single write.
   */
  private issueSplit(position: number, head: Buffer, payload: Uint8Array, tail: Buffer, sequence: number): Promise<void> {
    const offset = this.header.dataOffset + (position % this.header.capacity);
    const writes = [writeAsPromise(this.region, offset + RECORD_HEADER_BYTES, payload, this.writeOptions)];
    if (tail.length > 0) writes.push(writeAsPromise(this.region, offset + RECORD_HEADER_BYTES + payload.length, tail, this.writeOptions));
    writes.push(writeAsPromise(this.region, offset, head, this.writeOptions));
    return this.track(Promise.all(writes).then(() => undefined), sequence);
  }

  /** Acks a placed record's write in placement order; a failure stops the writer. */
  private track(written: Promise<void>, sequence: number): Promise<void> {
    const before = this.persistedSoFar;
    const persisted = written.then(
      () => before,
      (error) => {
        // A record that did not land leaves a hole: nothing placed after it is readable, so the writer stops here.
        this.health.fail(error);
        throw this.health.failure;
      },
    );
    const acked = persisted.then(() => {
      if (this.options.durability === 'flushed' && sequence > this.durableThrough) this.durableThrough = sequence;
    });
    // Keep the chain, but do not let a failure surface as an unhandled rejection when nobody awaits drained().
    acked.catch(() => undefined);
    this.persistedSoFar = acked;
    return acked;
  }

  private async refreshCursor(): Promise<void> {
    try {
      for (;;) {
        const cleared = Number(await withRepair(this.region, () => readCheckedWord(this.region, 'cursor position', CURSOR_POSITION_OFFSET)));
        if (cleared !== this.clearedHint) {
          // The reader's clear makes the cursor visible before its flush completes: make it
          // durable before writing over what it freed, or an OS crash could leave the old
          // cursor pointing at a record of the next lap.
          await this.region.flush(CURSOR_POSITION_OFFSET, 16);
          this.clearedHint = cleared;
        }
        const pending = this.queue[0];
        if (!pending || this.health.failure || this.makeRoom(recordBytes(pending.frame.length))) break;
        if (this.options.whenFull === 'error' || Date.now() >= pending.deadline) {
          this.queue.shift();
          const used = this.head - this.clearedHint;
          const waited = this.options.whenFull === 'wait' ? ` after waiting ${this.options.fullWaitMs} ms` : '';
          pending.reject(
            new PmuError('EFULL', `the checkpoint log in region '${this.region.name}' is full${waited}: ${used} of ${this.header.capacity} bytes are not yet cleared by the reader; let the backup catch up (or clear), or use whenFull: 'wait'`),
          );
          continue;
        }
        await new Promise((resolve) => setTimeout(resolve, this.options.fullPollMs));
      }
    } catch (error) {
      // Reading the cursor failed (e.g. the connection to the PMU): nothing was placed, so the
      // writer stays usable; the records waiting for room fail with the reason.
      for (const pending of this.queue.splice(0)) pending.reject(error);
    } finally {
      this.refreshing = false;
    }
    this.placeQueued();
  }
}

/** A region's write as a promise even if it throws at once: a record that did not land must fail the writer, never skip a sequence. */
function writeAsPromise(region: Region, offset: number, bytes: Uint8Array, options: { durability: Durability; fence: { offset: number; epoch: bigint } }): Promise<void> {
  try {
    return region.write(offset, bytes, options);
  } catch (error) {
    return Promise.reject(error);
  }
}
