/**
 * Damage is not a torn tail. A crash can leave the last records a writer had in flight torn,
 * and nothing valid after them can vouch for them: each record carries `durable`, the highest
 * sequence the writer knew persisted when it placed the record, and a writer only counts a
 * record persisted once it and everything before it were flushed. So when the walk stops at
 * sequence n, a valid record further on whose `durable` reaches n proves record n was
 * persisted and is now invalid: damage. Recovery then refuses (ECORRUPT) and writes nothing;
 * a writer is never placed over records that follow a damaged one.
 *
 * Stale records of earlier laps carry earlier sequences (and `durable` below n): they never
 * vouch. The search covers every 8-aligned position from the stop up to the cursor plus one
 * ring: the writer never wrote past that.
 *
 * The same marks cross-check the cursor (position P, sequence s) at a takeover: a valid record
 * claiming a position behind P whose `durable` reaches s says record s was persisted before
 * it, i.e. behind the cursor, which a consumed-up-to-P cursor denies: the cursor is damaged.
 */
import { PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { LogHeader } from './header';
import { RECORD_ALIGN } from './layout';
import { LogPoint, ScanStop } from './log-scan';
import { checkHeader, crcMatches, occupiedBytes, RECORD_HEADER_BYTES } from './record';

export interface VouchingRecord {
  sequence: number;
  position: number;
  durable: number;
}

const SEARCH_CHUNK_BYTES = 1 << 20;
const TWO_32 = 2 ** 32;

/**
 * The first valid record after `stop` (up to logical position `searchEnd`, exclusive) whose
 * durable mark reaches `stop.sequence`, or undefined when nothing vouches for the record at
 * the stop (a clean end or a torn tail).
 */
export function findVouchingRecord(region: Region, header: LogHeader, stop: LogPoint, searchEnd: number): Promise<VouchingRecord | undefined> {
  return findDurableMark(region, header, stop.position + RECORD_ALIGN, searchEnd, stop.sequence);
}

/** A valid record claiming a position within one ring behind the cursor, written once record `cursor.sequence` was persisted. */
export function findRecordBehindCursor(region: Region, header: LogHeader, cursor: LogPoint): Promise<VouchingRecord | undefined> {
  return findDurableMark(region, header, Math.max(0, cursor.position - header.capacity), cursor.position, cursor.sequence);
}

/** The first valid record claiming a position in [from, to) (at most one ring) whose durable mark is at least `sequence`. */
async function findDurableMark(region: Region, header: LogHeader, from: number, to: number, sequence: number): Promise<VouchingRecord | undefined> {
  const { capacity, dataOffset, logId } = header;
  const searchEnd = Math.min(to, from + capacity);
  let position = from;
  while (position < searchEnd) {
    const ringOffset = position % capacity;
    const segmentEnd = Math.min(capacity, ringOffset + (searchEnd - position), ringOffset + SEARCH_CHUNK_BYTES);
    // Read a header's worth past the segment so a record starting near its end is whole.
    const readEnd = Math.min(capacity, segmentEnd + RECORD_HEADER_BYTES);
    const bytes = await region.read(dataOffset + ringOffset, readEnd - ringOffset);
    for (let at = 0; ringOffset + at < segmentEnd && at + RECORD_HEADER_BYTES <= bytes.length; at += RECORD_ALIGN) {
      const claimed = position + at;
      // Cheap filter first: a record only counts where it claims to sit.
      if (bytes.readUInt32LE(at + 8) !== claimed % TWO_32 || bytes.readUInt32LE(at + 12) !== Math.floor(claimed / TWO_32)) continue;
      const checked = checkHeader(bytes, at, claimed, capacity - (ringOffset + at));
      if (checked.kind !== 'header' || checked.header.durable < sequence || checked.header.type === 'checkpoint') continue;
      const length = checked.header.type === 'pad' ? RECORD_HEADER_BYTES : occupiedBytes(checked.header);
      const record = at + length <= bytes.length ? bytes.subarray(at, at + length) : await region.read(dataOffset + ringOffset + at, length);
      if (crcMatches(record, checked.header, logId)) return { sequence: checked.header.sequence, position: claimed, durable: checked.header.durable };
    }
    position += segmentEnd - ringOffset;
  }
  return undefined;
}

export function damageError(region: Region, header: LogHeader, stop: ScanStop, voucher: VouchingRecord): PmuError {
  const offset = header.dataOffset + (stop.position % header.capacity);
  return new PmuError(
    'ECORRUPT',
    `region '${region.name}': checkpoint record ${stop.sequence} at log position ${stop.position} (region offset ${offset}) is damaged (${stop.detail}), ` +
      `yet record ${voucher.sequence} at position ${voucher.position} after it is valid and was written once record ${voucher.durable} was persisted: ` +
      `this is damage, not a torn tail, and acknowledged records follow it; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`,
  );
}

export function damagedCursorError(region: Region, cursor: LogPoint, witness: VouchingRecord): PmuError {
  return new PmuError(
    'ECORRUPT',
    `region '${region.name}': the checkpoint cursor (position ${cursor.position}, sequence ${cursor.sequence}) is damaged: record ${witness.sequence} at position ${witness.position} behind it ` +
      `was written once record ${witness.durable} was persisted, so records the cursor calls unread sit behind it; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`,
  );
}
