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
 * The same marks cross-check the cursor (position P, sequence s) offline (verify.ts): a valid record
 * claiming a position behind P whose `durable` reaches s says record s was persisted before
 * it, i.e. behind the cursor, which a consumed-up-to-P cursor denies: the cursor is damaged.
 */
import { PmuError } from '../../unit/errors';
import { Region } from '../../unit/region';
import { LogHeader } from './header';
import { RECORD_ALIGN } from './layout';
import { LogPoint, ScanStop } from './log-scan';
import { checkHeader, crcMatches, occupiedBytes, RECORD_HEADER_BYTES, RecordHeader } from './record';

export interface VouchingRecord {
  sequence: number;
  position: number;
  durable: number;
}

const SEARCH_CHUNK_BYTES = 1 << 20;

/** Valid records claiming a position in [from, to) (at most one ring) with a durable mark of at least `minDurable`. */
interface SearchRange {
  from: number;
  to: number;
  minDurable: number;
}

/**
 * The first valid record after `stop` (up to logical position `searchEnd`, exclusive) whose
 * durable mark reaches `stop.sequence`, or undefined when nothing vouches for the record at
 * the stop (a clean end or a torn tail).
 */
export async function findVouchingRecord(region: Region, header: LogHeader, stop: LogPoint, searchEnd: number): Promise<VouchingRecord | undefined> {
  const [voucher] = await searchRing(region, header, [{ from: stop.position + RECORD_ALIGN, to: searchEnd, minDurable: stop.sequence }]);
  return voucher;
}

export interface RecoveryCheck {
  /** A record proving the one at the stop was persisted: damage. */
  voucher?: VouchingRecord;
  /** A record behind the cursor written once the cursor's record was persisted: a damaged cursor. */
  witness?: VouchingRecord;
}

/**
 * The full check of a recovered end (pmu inspect --verify), in one read of the ring: nothing after the
 * stop (up to `searchEnd`, the persisted cursor plus one ring) vouches for the record there,
 * and nothing behind `cursor` (within one ring) carries a durable mark reaching its sequence.
 */
export async function checkRecoveredEnd(region: Region, header: LogHeader, cursor: LogPoint, stop: LogPoint, searchEnd: number): Promise<RecoveryCheck> {
  const [voucher, witness] = await searchRing(region, header, [
    { from: stop.position + RECORD_ALIGN, to: searchEnd, minDurable: stop.sequence },
    { from: Math.max(0, cursor.position - header.capacity), to: cursor.position, minDurable: cursor.sequence },
  ]);
  return { voucher, witness };
}

/**
 * For each range, the first valid record found in it. Reads only the ring span of a single
 * range, the whole ring (once) for several. The filter runs on every 8-aligned offset, so it
 * is one typed-array load: the u32 at +32 of a record header is its type (1-4) and a zero
 * reserved half, which random payload bytes and blank space almost never are.
 */
async function searchRing(region: Region, header: LogHeader, ranges: SearchRange[]): Promise<Array<VouchingRecord | undefined>> {
  const { capacity, dataOffset } = header;
  const found: Array<VouchingRecord | undefined> = ranges.map(() => undefined);
  const live = ranges.map((range, index) => ({ ...range, index, to: Math.min(range.to, range.from + capacity) })).filter((range) => range.from < range.to);
  if (live.length === 0) return found;
  // Ring offsets to read: the one range's span, or the whole ring.
  const spanStart = live.length === 1 ? live[0].from : 0;
  const spanLength = live.length === 1 ? live[0].to - live[0].from : capacity;
  for (let done = 0; done < spanLength; ) {
    const ringOffset = (spanStart + done) % capacity;
    const segmentEnd = Math.min(capacity, ringOffset + (spanLength - done), ringOffset + SEARCH_CHUNK_BYTES);
    // Read a header's worth past the segment so a record starting near its end is whole.
    const readEnd = Math.min(capacity, segmentEnd + RECORD_HEADER_BYTES);
    let bytes = await region.read(dataOffset + ringOffset, readEnd - ringOffset);
    if (bytes.byteOffset % 4 !== 0) bytes = Buffer.from(bytes);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
    const last = Math.min(segmentEnd - ringOffset, bytes.length - RECORD_HEADER_BYTES + 1);
    for (let at = nextCandidate(words, 0, last); at >= 0; at = nextCandidate(words, at + RECORD_ALIGN, last)) {
      for (const range of live) {
        if (found[range.index] !== undefined) continue;
        const claimed = claimIn(range.from, ringOffset + at, capacity);
        if (claimed >= range.to) continue;
        const record = await validRecordAt(region, header, bytes, at, claimed, ringOffset + at);
        if (record && record.durable >= range.minDurable && record.type !== 'checkpoint') {
          found[range.index] = { sequence: record.sequence, position: claimed, durable: record.durable };
          if (live.every((each) => found[each.index] !== undefined)) return found;
        }
      }
    }
    done += segmentEnd - ringOffset;
  }
  return found;
}

/**
 * The first 8-aligned offset in [from, to) that may start a record header, or -1. Kept apart
 * from the async search so it is a tight, optimized loop over every offset.
 */
function nextCandidate(words: Uint32Array, from: number, to: number): number {
  for (let at = from; at < to; at += RECORD_ALIGN) {
    // The u32 at +32 holds the type (1-4) and a zero reserved half; 0 wraps to 2^32 - 1.
    if (((words[(at + 32) >> 2] - 1) >>> 0) <= 3) return at;
  }
  return -1;
}

/** The logical position in [from, from + capacity) that lives at `ringOffset`. */
function claimIn(from: number, ringOffset: number, capacity: number): number {
  const fromOffset = from % capacity;
  return from - fromOffset + ringOffset + (ringOffset < fromOffset ? capacity : 0);
}

/** The header of a record at `at` in `bytes` that validates as the record at logical `claimed`, or undefined. */
async function validRecordAt(region: Region, header: LogHeader, bytes: Buffer, at: number, claimed: number, ringOffset: number): Promise<RecordHeader | undefined> {
  if (bytes.readUInt32LE(at + 8) !== claimed % 2 ** 32) return undefined; // a record only counts where it claims to sit
  const checked = checkHeader(bytes, at, claimed, header.capacity - ringOffset);
  if (checked.kind !== 'header') return undefined;
  const length = checked.header.type === 'pad' ? RECORD_HEADER_BYTES : occupiedBytes(checked.header);
  const record = at + length <= bytes.length ? bytes.subarray(at, at + length) : await region.read(header.dataOffset + ringOffset, length);
  return crcMatches(record, checked.header, header.logId) ? checked.header : undefined;
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
