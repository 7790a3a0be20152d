/**
 * Overwrite mode: two slots, each holding one whole checkpoint as a self-validating record
 * whose position field is the slot's offset. Checkpoint n goes to slot n % 2, so it never
 * overwrites the newest valid checkpoint (n - 1, in the other slot); the newer valid slot wins
 * when reading. A slot is written by one write call, so one torn by a crash fails its CRC and
 * the other, older slot is used.
 *
 * Checkpoints are written one at a time: slot n + 1 may only be overwritten once n is
 * persisted, or a crash could leave neither valid. Calls made while one is in flight are
 * coalesced: only the newest state is written next, and every caller it supersedes is
 * acknowledged with it (a checkpoint replaces the whole state, so the newest covers them).
 *
 * Two slots cannot tell a damaged newest checkpoint from one a crash tore; the header's
 * checkpoint mark can: it names the newest checkpoint acknowledged 'flushed' (set 'mapped'
 * after that checkpoint's flush, so it never runs ahead of a slot on disk). A mark newer than
 * every valid slot is damage: ECORRUPT, and the damaged slot is not written over.
 */
import { PmuError } from '../unit/errors';
import { Durability, Region } from '../unit/region';
import { encodeWord } from './format/checked-word';
import { fenceFor, LogHeader, readCheckedWord, wordBytes } from './format/header';
import { CHECKPOINT_MARK_OFFSET } from './format/layout';
import { checkHeader, crcMatches, encodeRecord, epochTag, recordBytes, RECORD_HEADER_BYTES, RecordHeader } from './format/record';
import { WriterHealth } from './writer-health';

export interface Checkpoint {
  sequence: number;
  /** Low 32 bits of the epoch of the writer that wrote it. */
  epoch: number;
  state: Buffer;
}

export interface LatestCheckpoint {
  checkpoint?: Checkpoint;
  /** Why a slot was passed over (torn, blank): reported, never guessed around. */
  notes: string[];
}

export function slotOffset(header: LogHeader, slot: number): number {
  return header.dataOffset + slot * header.capacity;
}

/** The newest valid checkpoint; ECORRUPT if the checkpoint mark names a newer one that no slot holds valid. */
export async function readLatestCheckpoint(region: Region, header: LogHeader): Promise<LatestCheckpoint> {
  // The mark first: it only ever names a checkpoint already in a slot, and slots only move
  // forward, so slots read after it hold it or newer. Read the other way round, a checkpoint the
  // writer completes in between is marked but not seen: a live reader would report damage.
  const mark = Number(await readCheckedWord(region, 'checkpoint mark', CHECKPOINT_MARK_OFFSET));
  const latest = await readSlots(region, header);
  if (mark > (latest.checkpoint?.sequence ?? 0)) {
    throw new PmuError(
      'ECORRUPT',
      `region '${region.name}': checkpoint ${mark} was acknowledged ('flushed') but no slot holds it valid (${latest.notes.join('; ') || 'both slots older'}): ` +
        `the slot at region offset ${slotOffset(header, mark % 2)} is damaged; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`,
    );
  }
  return latest;
}

/** Reads of both slots in a row that a live writer may overtake before latest() gives up (EBUSY). */
const SLOT_READ_ATTEMPTS = 16;

async function readSlots(region: Region, header: LogHeader): Promise<LatestCheckpoint> {
  for (let attempt = 1; ; attempt++) {
    const latest = await readSlotsOnce(region, header);
    if (latest !== 'overtaken') return latest;
    if (attempt === SLOT_READ_ATTEMPTS) {
      throw new PmuError('EBUSY', `region '${region.name}': the writer overwrote a slot between the reads of its header and its body ${attempt} times in a row; retry latest()`);
    }
  }
}

/**
 * One pass over both slots; 'overtaken' when a slot's body no longer holds the checkpoint its
 * header named (two checkpoints landed in between, the second in the same slot): its CRC may
 * pass, but it is another checkpoint, so the pass starts over (slots only move forward).
 */
async function readSlotsOnce(region: Region, header: LogHeader): Promise<LatestCheckpoint | 'overtaken'> {
  const notes: string[] = [];
  const candidates: Array<{ slot: number; header: RecordHeader }> = [];
  for (const slot of [0, 1]) {
    const offset = slotOffset(header, slot);
    const checked = checkHeader(await region.read(offset, RECORD_HEADER_BYTES), 0, offset, header.capacity);
    if (checked.kind === 'header' && checked.header.type === 'checkpoint') candidates.push({ slot, header: checked.header });
    else if (checked.kind === 'header') notes.push(`slot ${slot}: a ${checked.header.type} record where a checkpoint belongs`);
    else notes.push(`slot ${slot}: ${checked.reason}`);
  }
  candidates.sort((a, b) => b.header.sequence - a.header.sequence);
  for (const candidate of candidates) {
    const offset = slotOffset(header, candidate.slot);
    const bytes = await region.read(offset, recordBytes(candidate.header.length));
    const again = checkHeader(bytes, 0, offset, header.capacity);
    if (again.kind === 'header' && !sameRecord(again.header, candidate.header)) return 'overtaken';
    if (crcMatches(bytes, candidate.header, header.logId)) {
      const state = bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + candidate.header.length);
      return { checkpoint: { sequence: candidate.header.sequence, epoch: candidate.header.epoch, state }, notes };
    }
    notes.push(`slot ${candidate.slot}: checkpoint ${candidate.header.sequence} fails its CRC32C (torn)`);
  }
  return { notes };
}

function sameRecord(a: RecordHeader, b: RecordHeader): boolean {
  return a.sequence === b.sequence && a.epoch === b.epoch && a.length === b.length && a.type === b.type;
}

interface Waiter {
  resolve(sequence: number): void;
  reject(error: unknown): void;
}

export class SlotWriter {
  private writing = false;
  private queued: { state: Uint8Array; waiters: Waiter[] } | undefined;
  private idleWaiters: Array<() => void> = [];
  /**
   * The newest checkpoint known to be on disk (recovered, or acknowledged 'flushed'). A 'mapped'
   * writer must not write over its slot until the other slot holds a newer checkpoint on disk:
   * a power loss could otherwise tear both slots and lose a checkpoint acknowledged 'flushed'.
   */
  private onDisk: number;

  constructor(
    private readonly region: Region,
    private readonly header: LogHeader,
    private readonly epoch: bigint,
    private nextSequence: number,
    private readonly durability: Durability,
    private readonly health: WriterHealth,
  ) {
    this.onDisk = nextSequence - 1;
  }

  get sequence(): number {
    return this.nextSequence;
  }

  checkpoint(state: Uint8Array): Promise<number> {
    this.health.assertUsable();
    if (recordBytes(state.length) > this.header.capacity) {
      return Promise.reject(new PmuError('ETOOBIG', `a ${state.length}-byte checkpoint does not fit a slot of region '${this.region.name}' (${this.header.capacity - RECORD_HEADER_BYTES} bytes of payload): use a larger region`));
    }
    return new Promise<number>((resolve, reject) => {
      if (this.queued) this.queued.state = state;
      else this.queued = { state, waiters: [] };
      this.queued.waiters.push({ resolve, reject });
      if (!this.writing) void this.writeQueued();
    });
  }

  /** Resolves when no checkpoint is being written or waiting. */
  idle(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Not awaited: the mark only has to reach the disk some time after its checkpoint did (the
   * next flush or write-back takes it); the region applies it before any later write of ours.
   * A failure here (fenced, closed) fails the next checkpoint anyway.
   */
  private markFlushed(sequence: number): void {
    this.region.write(CHECKPOINT_MARK_OFFSET, wordBytes(encodeWord('checkpoint mark', sequence)), { durability: 'mapped', fence: fenceFor(this.epoch) }).catch(() => undefined);
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    while (this.queued) {
      const { state, waiters } = this.queued;
      this.queued = undefined;
      try {
        this.health.assertUsable();
        const sequence = this.nextSequence;
        const offset = slotOffset(this.header, sequence % 2);
        const record = encodeRecord({ sequence, position: offset, durable: sequence - 1, epoch: epochTag(this.epoch), type: 'checkpoint' }, state, this.header.logId);
        try {
          if (this.durability === 'mapped' && this.onDisk > 0 && this.onDisk % 2 === sequence % 2) {
            await this.region.flush(slotOffset(this.header, (sequence - 1) % 2), this.header.capacity);
            this.onDisk = sequence - 1;
          }
          await this.region.write(offset, record, { durability: this.durability, fence: fenceFor(this.epoch) });
        } catch (error) {
          this.health.fail(error);
          throw this.health.failure;
        }
        this.nextSequence++;
        if (this.durability === 'flushed') {
          this.onDisk = sequence;
          this.markFlushed(sequence);
        }
        for (const waiter of waiters) waiter.resolve(sequence);
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.writing = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
