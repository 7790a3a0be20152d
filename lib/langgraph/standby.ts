/**
 * A hot standby for a PmuSaver: it follows the primary's log (applying every record to its own
 * index as the primary writes it), watches the primary (heartbeat lease, and the PMU server's
 * report that the writer's connection dropped), and when the primary is gone takes the log
 * over: the epoch is bumped first (from then on the PMU refuses the old primary's writes with
 * EFENCED), then the records it had not read yet are applied, and it becomes the primary.
 *
 * The standby never clears the log: the primary owns the cursor (it clears after each
 * snapshot). If the standby falls more than a ring behind, the records it expected were
 * overwritten; it notices (the cursor passed its read position) and starts again from the
 * snapshot at the cursor. A record it could not trust is never applied: the checkpoint layer
 * validates each one by position, sequence and CRC.
 *
 * Embedded (a unit file) there is no live following: the unit's lock admits one process, so a
 * standby waits for the lock and then recovers with PmuSaver.open().
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPmuError, PmuError } from '../unit/errors.js';
import { Region } from '../unit/region.js';
import { CheckpointReader, LogRecord, openPrimary, PrimaryFailure, recordBytes } from '../checkpoint/index.js';
import { PmuSaverOptions, writerOptions } from './options.js';
import { applyRecord, SaverStart } from './replay.js';
import { SaverState } from './state.js';

/** How often a caught-up standby checks that the cursor has not passed it. */
const LAP_CHECK_MS = 50;

export interface StandbyOptions extends PmuSaverOptions {
  /** Heartbeat silence that counts as a dead primary. Default 1000 ms. */
  leaseMs?: number;
  /** Poll period of the log while caught up. Default 5 ms. */
  intervalMs?: number;
  /** Wait this long for the primary to create the log. Default 30000 ms. */
  waitForLogMs?: number;
  /** Stop standing by: the returned promise rejects with ECLOSED. */
  signal?: AbortSignal;
  /** Told when the primary is judged gone, before the takeover. */
  onPrimaryLost?: (failure: PrimaryFailure) => void;
}

/**
 * Follows the log; once the old primary is gone, takes the log over and resolves with what the
 * new primary saver is built from, or undefined when the old primary cleared past what this
 * standby had read (the caller then recovers from the cursor: PmuSaver.open).
 */
export async function standby(region: Region, options: StandbyOptions = {}): Promise<SaverStart | undefined> {
  const follower = new Follower(region);
  await follower.start(options.waitForLogMs ?? 30_000);
  const watcher = await CheckpointReader.open(region);
  if (options.signal?.aborted) throw new PmuError('ECLOSED', 'standby aborted before the primary failed', { cause: options.signal.reason });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort);
  try {
    const lost = watcher.watchPrimary({ leaseMs: options.leaseMs, signal: stop.signal }).finally(() => stop.abort());
    // Following ends once the watch settles (it aborts `stop`); if following fails first, that failure wins.
    const following = follower.follow(options.intervalMs ?? 5, stop.signal);
    lost.catch(() => undefined);
    following.catch(() => undefined);
    const failure = await Promise.race([lost, following.then(() => lost)]);
    await following;
    options.onPrimaryLost?.(failure);
  } catch (error) {
    if (options.signal?.aborted) throw new PmuError('ECLOSED', 'standby aborted before the primary failed', { cause: error });
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
  return follower.takeover(watcher.epoch, options);
}

class Follower {
  private reader!: CheckpointReader;
  private state = new SaverState();
  private logBytes = 0;
  private snapshotBytes = 0;

  constructor(private readonly region: Region) {}

  async start(waitForLogMs: number): Promise<void> {
    this.reader = await CheckpointReader.open(this.region, { waitForLogMs });
    this.state = new SaverState();
    this.logBytes = 0;
    this.snapshotBytes = 0;
  }

  async follow(intervalMs: number, signal: AbortSignal): Promise<void> {
    let lapCheck = 0;
    while (!signal.aborted) {
      const batch = await this.reader.readBatch();
      this.apply(batch.records);
      if (batch.stop.reason === 'limit') continue;
      // Caught up (or stalled): every so often, make sure the primary did not clear past us.
      if (performance.now() - lapCheck > LAP_CHECK_MS) {
        lapCheck = performance.now();
        if (await this.lapped()) {
          await this.start(0);
          continue;
        }
      }
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /**
   * Fences the old primary and becomes the primary. If the primary cleared past what this
   * standby had read, the standby's index is incomplete: undefined, and the caller recovers
   * from the cursor instead.
   */
  async takeover(expectedEpoch: bigint, options: PmuSaverOptions): Promise<SaverStart | undefined> {
    if (await this.lapped()) return undefined;
    const took = await openPrimary(this.reader, { ...writerOptions(options), expectedEpoch });
    this.apply(took.records);
    if (await this.lapped()) {
      // A zombie primary cleared while we were fenced in: start over from the cursor.
      await took.writer.close();
      return undefined;
    }
    return { writer: took.writer, reader: took.reader, state: this.state, logBytes: this.logBytes, snapshotBytes: this.snapshotBytes };
  }

  private apply(records: readonly LogRecord[]): void {
    for (const record of records) {
      const bytes = recordBytes(record.payload.length);
      if (record.type === 'snapshot') {
        this.state = new SaverState();
        this.logBytes = 0;
        this.snapshotBytes = bytes;
      } else {
        this.logBytes += bytes;
      }
      applyRecord(this.state, record, this.region.name);
    }
  }

  /** True if the cursor moved past this reader's position: records it needed were reused. */
  private async lapped(): Promise<boolean> {
    try {
      // A fresh reader starts at the persisted cursor (the header's words are checked as it opens).
      const cursor = (await CheckpointReader.open(this.region)).next.position;
      return cursor > this.reader.next.position;
    } catch (error) {
      if (isPmuError(error, 'ECLOSED')) return false;
      throw error;
    }
  }
}
