/**
 * Group commit for one unit. Durable writes copy into the mapping at once and join the
 * unit's pending span (natively); then they wait here. At most one flush is in flight: it
 * msyncs, on the libuv pool, everything that joined before it started, and every waiter of
 * that batch is settled together. Writes that arrive meanwhile form the next batch. Serial
 * writers pay one msync each; concurrent writers share one.
 *
 * A flush starts on process.nextTick, not at once: by then every promise continuation queued
 * in this turn has run, so writers whose previous write was just acknowledged rejoin this
 * batch instead of splitting the group in two alternating halves.
 *
 * A batch of one (a lone writer) is flushed on this thread when `loneFlush` is 'inline' (the
 * embedded default): the round trip to the libuv pool and back (two thread wake-ups, tens of
 * µs each on a VM) costs a lone writer more than the msync keeps the event loop waiting.
 * 'pool' keeps every flush on the pool. 'auto' (a server's) flushes a batch of one inline only
 * when it is small (AUTO_INLINE_MAX_BYTES) and `othersQuiet()` says nobody else has been
 * talking to this process lately: the way Redis fsyncs before it replies, but never while
 * another connection is being served. Its flush starts from setImmediate, after the poll phase
 * has handed over every socket that was ready, so every durable write that arrived together
 * joins one batch.
 */
import { BATCH_SIZE_BOUNDS, BucketCounts, FLUSH_SECONDS_BOUNDS } from '../obs/counters';
import { PmuError } from './errors';
import { NativeUnit, STATUS_OK, statusError } from './native';

/** Where a batch of one is flushed: on this thread ('inline') or on the libuv pool ('pool'). */
export type LoneFlush = 'inline' | 'pool' | 'auto';

/** The largest batch of one that 'auto' flushes inline: its msync holds the event loop ~0.1–0.4 ms. */
export const AUTO_INLINE_MAX_BYTES = 64 * 1024;

/** The writes gathered for one flush: they share one promise, settled once for all of them. */
class Batch {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: PmuError) => void;
  writes = 0;
  bytes = 0;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

export class GroupCommit {
  /** The batch being gathered: joins the flush after the one in flight. */
  private gathering: Batch | undefined;
  private inFlight = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  /** Flushes issued so far: lets a benchmark show how many writes one msync served. */
  flushes = 0;
  /** Of those, the ones made on this thread. */
  inlineFlushes = 0;
  /** Per flush: how long its msync took, and how many waiters it settled (read by exporters). */
  readonly flushSeconds = new BucketCounts(FLUSH_SECONDS_BOUNDS);
  readonly writesPerFlush = new BucketCounts(BATCH_SIZE_BOUNDS);
  private startedAt = 0n;
  /** 'auto': true when nobody but the writer has been served lately (a server sets it). */
  othersQuiet: () => boolean = () => false;

  constructor(
    private readonly native: NativeUnit,
    /** See the class comment; a server switches its unit to 'auto'. */
    public loneFlush: LoneFlush = 'inline',
  ) {}

  /**
   * Resolves once everything that joined the pending span before this call is flushed;
   * `bytes`: this write's length. Every write of a batch gets the same promise (one promise
   * per flush, not per write: the per-write cost is what group commit is limited by).
   */
  wait(bytes = 0): Promise<void> {
    const batch = (this.gathering ??= new Batch());
    batch.writes++;
    batch.bytes += bytes;
    this.schedule();
    return batch.promise;
  }

  /** True while a flush is scheduled, in flight, or awaited. */
  get busy(): boolean {
    return this.inFlight || this.scheduled || this.gathering !== undefined;
  }

  /** Resolves when no flush is in flight and none is waiting (close waits for this). */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled) return;
    this.scheduled = true;
    if (this.loneFlush === 'auto') setImmediate(this.startScheduled);
    else process.nextTick(this.startScheduled);
  }

  private readonly startScheduled = (): void => {
    this.scheduled = false;
    this.start();
  };

  private flushesInline(batch: Batch): boolean {
    if (batch.writes !== 1) return false;
    if (this.loneFlush === 'inline') return true;
    return this.loneFlush === 'auto' && batch.bytes <= AUTO_INLINE_MAX_BYTES && this.othersQuiet();
  }

  private start(): void {
    const batch = this.gathering;
    if (!batch) return;
    this.gathering = undefined;
    this.inFlight = true;
    this.flushes++;
    this.startedAt = process.hrtime.bigint();
    try {
      if (this.flushesInline(batch)) {
        this.inlineFlushes++;
        this.finish(batch, this.native.flushGroupSync());
      } else {
        this.native.flushGroup((status) => this.finish(batch, status));
      }
    } catch (error) {
      this.inFlight = false;
      batch.reject(error as PmuError);
      this.drainIdle();
    }
  }

  private finish(batch: Batch, status: number): void {
    this.inFlight = false;
    this.flushSeconds.add(Number(process.hrtime.bigint() - this.startedAt) / 1e9);
    this.writesPerFlush.add(batch.writes);
    if (status === STATUS_OK) batch.resolve();
    else batch.reject(statusError(status, 'flush'));
    if (this.gathering) this.schedule();
    else this.drainIdle();
  }

  private drainIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
