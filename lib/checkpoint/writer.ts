/**
 * CheckpointWriter: the primary's side. Every write it makes is fenced on the region's epoch,
 * so once a takeover bumps the epoch, the PMU itself refuses this writer with EFENCED (and the
 * writer stays refused: see WriterHealth). It never waits for the backup, except for room in a
 * full ring when the caller chose whenFull: 'wait'.
 *
 * A heartbeat word is bumped every `heartbeatMs` ('mapped': it only has to be seen, not to
 * survive power loss) so a backup's lease can tell a hung primary from a quiet one.
 */
import { PmuError } from '../unit/errors';
import { Durability, Region } from '../unit/region';
import { checkDurability } from '../unit/durability';
import { checkInteger } from '../unit/validate';
import { fenceFor, LogHeader, wordBytes } from './format/header';
import { CheckpointMode, HEARTBEAT_OFFSET } from './format/layout';
import { LogPoint } from './format/log-scan';
import { frameFor, isRecordFrame, RecordFrame, SPLIT_PAYLOAD_BYTES, SplitPayload } from './format/record';
import { RingAppender, WhenFull } from './ring-appender';
import { SlotWriter } from './slots';
import { WriterHealth } from './writer-health';

export interface CheckpointWriterOptions {
  /** Required to format a blank region; checked against an existing log. */
  mode?: CheckpointMode;
  /** What an acknowledged record guarantees (lib/unit/durability.ts): 'flushed' by default; the region must give it. */
  durability?: Durability;
  /** Append mode, ring full: fail with EFULL at once ('error', default) or wait for the reader to clear. */
  whenFull?: WhenFull;
  /** Longest wait for room in 'wait' mode before EFULL. Default 5000 ms. */
  fullWaitMs?: number;
  /** How often the reader's cursor is re-read while waiting for room. Default 2 ms. */
  fullPollMs?: number;
  /** Heartbeat period; 0 turns the heartbeat off. Default 100 ms. */
  heartbeatMs?: number;
}

/** @internal Where a writer starts: the end of the valid log (append) or after the newest checkpoint. */
export interface WriterStart {
  header: LogHeader;
  epoch: bigint;
  /** Append mode: the next record's position and sequence. Overwrite mode: position unused. */
  next: LogPoint;
  /** The reader's persisted cursor position (append mode). */
  clearedPosition: number;
  heartbeat: bigint;
  /** Every record up to this sequence is flushed (takeover flushed what it recovered). */
  durable: number;
}

export class CheckpointWriter {
  readonly mode: CheckpointMode;
  readonly epoch: bigint;
  private readonly health: WriterHealth;
  private readonly appender?: RingAppender;
  private readonly slots?: SlotWriter;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatValue: bigint;
  private heartbeatInFlight: Promise<void> | undefined;

  /** @internal Use openPrimary() (takeover.ts): the one way to become primary. */
  constructor(
    readonly region: Region,
    start: WriterStart,
    options: CheckpointWriterOptions,
  ) {
    const header = start.header;
    if (options.mode !== undefined && options.mode !== header.mode) {
      throw new PmuError('EINVAL', `region '${region.name}' holds an ${header.mode}-mode log, not ${options.mode}`);
    }
    const durability = checkDurability(options.durability, region.capabilities);
    const whenFull = options.whenFull ?? 'error';
    if (whenFull !== 'error' && whenFull !== 'wait') throw new PmuError('EINVAL', `whenFull must be 'error' or 'wait', got ${String(whenFull)}`);
    const heartbeatMs = checkInteger('heartbeatMs', options.heartbeatMs ?? 100);
    this.mode = header.mode;
    this.epoch = start.epoch;
    this.health = new WriterHealth(region.name);
    if (header.mode === 'append') {
      this.appender = new RingAppender(region, header, start.epoch, start.next, start.clearedPosition, start.durable, {
        durability,
        whenFull,
        fullWaitMs: checkInteger('fullWaitMs', options.fullWaitMs ?? 5000),
        fullPollMs: checkInteger('fullPollMs', options.fullPollMs ?? 2, 1),
      }, this.health);
    } else {
      this.slots = new SlotWriter(region, header, start.epoch, start.next.sequence, durability, this.health);
    }
    this.heartbeatValue = start.heartbeat;
    if (heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => this.beat(), heartbeatMs);
      // The heartbeat must not keep a process alive that has nothing else to do.
      this.heartbeatTimer.unref();
      this.beat();
    }
  }

  /** Sequence the next record (append) or checkpoint (overwrite) will get. */
  get nextSequence(): number {
    return (this.appender?.sequence ?? this.slots?.sequence) as number;
  }

  /** True once the PMU refused this writer because another writer took over. */
  get fenced(): boolean {
    return this.health.fenced;
  }

  /** Overwrite mode: replaces the checkpoint; resolves with its sequence once persisted. */
  async checkpoint(state: Uint8Array): Promise<number> {
    return this.need('overwrite', 'checkpoint').checkpoint(checkPayload('state', state));
  }

  /**
   * Append mode: adds an update; resolves with its sequence once it and all before it are
   * persisted. A RecordFrame (a payload built in place, see frameBytes) is written without a
   * copy and belongs to the writer from then on.
   */
  append(update: Uint8Array | RecordFrame): Promise<number> {
    // Not async: one promise step fewer per record (the LangGraph saver's hot path).
    try {
      return this.need('append', 'append').append('update', toFrame('update', update, this.region)).then(sequenceOf);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Append mode: adds a full snapshot. Recovery is the latest snapshot plus the updates after
   * it, so once a reader has it, everything before it may be cleared.
   */
  async snapshot(state: Uint8Array | RecordFrame): Promise<number> {
    return (await this.placeSnapshot(state)).sequence;
  }

  /**
   * Like snapshot(), resolving with where the snapshot sits: a primary that is its own reader
   * (it holds the state the snapshot captures) clears up to it with CheckpointReader.clearBefore,
   * without reading back the log it wrote.
   */
  async placeSnapshot(state: Uint8Array | RecordFrame): Promise<LogPoint> {
    return this.need('append', 'snapshot').append('snapshot', toFrame('state', state, this.region));
  }

  /** Resolves once everything handed to this writer so far is persisted. */
  async drain(): Promise<void> {
    if (this.appender) await this.appender.drained();
    if (this.slots) await this.slots.idle();
  }

  /** Stops the heartbeat and waits for writes in flight; the log stays as it is. */
  async close(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.health.markClosed();
    await Promise.allSettled([this.drain(), this.heartbeatInFlight]);
  }

  private need(mode: 'append', what: string): RingAppender;
  private need(mode: 'overwrite', what: string): SlotWriter;
  private need(mode: CheckpointMode, what: string): RingAppender | SlotWriter {
    const target = mode === 'append' ? this.appender : this.slots;
    if (!target) throw new PmuError('EINVAL', `${what}() needs an ${mode}-mode log; region '${this.region.name}' holds an ${this.mode}-mode log`);
    return target;
  }

  private beat(): void {
    // A slow region (remote, busy) must not pile up heartbeats; a skipped beat is harmless.
    if (this.heartbeatInFlight || this.health.failure !== undefined) return;
    this.heartbeatValue++;
    const write = this.region.write(HEARTBEAT_OFFSET, wordBytes(this.heartbeatValue), { durability: 'mapped', fence: fenceFor(this.epoch) });
    this.heartbeatInFlight = write.then(
      () => {
        this.heartbeatInFlight = undefined;
      },
      (error) => {
        this.heartbeatInFlight = undefined;
        // Fenced: another writer took over, so this one is done. Other errors: try again next beat.
        if (error instanceof PmuError && error.code === 'EFENCED') {
          this.health.fail(error);
          if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
        }
        if (error instanceof PmuError && (error.code === 'ECLOSED' || error.code === 'ENOENT') && this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      },
    );
  }
}

function checkPayload(name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new PmuError('EINVAL', `${name} must be a Buffer or Uint8Array`);
  return value;
}

function sequenceOf(point: LogPoint): number {
  return point.sequence;
}

function toFrame(name: string, value: unknown, region?: Region): RecordFrame | SplitPayload {
  // A large payload is written from the caller's buffer when the region copies it at once.
  if (value instanceof Uint8Array) return region?.capabilities.copiesOnWrite && value.length >= SPLIT_PAYLOAD_BYTES ? { payload: value, length: value.length } : frameFor(value);
  if (isRecordFrame(value)) return value;
  throw new PmuError('EINVAL', `${name} must be a Buffer, a Uint8Array or a record frame (a buffer of frameBytes(length) bytes with the payload at RECORD_HEADER_BYTES)`);
}
