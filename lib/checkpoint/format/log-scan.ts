/**
 * Walking the append ring from a position: the one place that decides which records are
 * trusted. A record is accepted only if it sits at the expected logical position, carries the
 * expected sequence, does not go back in epoch, and its CRC validates; the walk stops at the
 * first record that is not, and says why. The tail is found by content, never by a pointer.
 *
 * Ring geometry: logical position p lives at data offset p % capacity. A record never wraps:
 * the writer fills the end of the ring with a pad record, or, if fewer bytes than a record
 * header remain, both sides skip them implicitly.
 */
import { PmuError } from '../../unit/errors';
import { Region } from '../../unit/region';
import { LogHeader } from './header';
import { checkHeader, crcMatches, occupiedBytes, RECORD_HEADER_BYTES, RecordHeader } from './record';

export type LogRecordType = 'update' | 'snapshot';

export interface LogRecord {
  sequence: number;
  type: LogRecordType;
  payload: Buffer;
  /** Low 32 bits of the epoch of the writer that appended it. */
  epoch: number;
  /** Logical log position of the record, and of the byte after it. */
  position: number;
  end: number;
}

export interface LogPoint {
  /** Logical byte position of the next record. */
  position: number;
  /** Sequence the next record must carry. */
  sequence: number;
}

export interface ScanStop {
  /** 'end': no record here yet; 'torn': something here claims to be the next record but fails validation; 'limit': the batch is full. */
  reason: 'end' | 'torn' | 'limit';
  position: number;
  sequence: number;
  detail: string;
  /**
   * 'end' and 'torn' only: what sits at the stop is neither blank nor a record of an earlier
   * lap, so it may be damage rather than the end: readers look past it (damage.ts).
   */
  suspect?: boolean;
}

export interface ScanLimits {
  maxRecords?: number;
  maxBytes?: number;
}

/** A pad or a real record, as the walk met it; pads matter to the cursor, not to callers. */
export interface ScannedEntry {
  header: RecordHeader;
  record?: LogRecord;
  end: number;
}

export interface ScanResult {
  entries: ScannedEntry[];
  next: LogPoint;
  /** Epoch tag of the last accepted entry (for the no-going-back check of the next walk). */
  lastEpoch: number;
  stop: ScanStop;
}

/** The last clean end a reader verified (position and the stale header found there). */
export interface CleanEndMemo {
  position: number;
  header: Buffer;
}

const DEFAULT_SCAN_BYTES = 1 << 20;
/** A single read asks for at most this much: keeps remote frames and copies moderate. */
const READ_CHUNK_BYTES = 256 * 1024;
/** A walk's first read: a caught-up follower polls the end often, and usually finds little or nothing there. */
const FIRST_READ_BYTES = 16 * 1024;

/** Where the next record after `position` starts, skipping a ring tail too small for a header. */
function nextRecordStart(position: number, capacity: number): number {
  const remaining = capacity - (position % capacity);
  return remaining < RECORD_HEADER_BYTES ? position + remaining : position;
}

/**
 * Walks from `from`. With `trustFirstSequence`, the first entry may carry a sequence below
 * `from.sequence` (the persisted cursor's sequence word can run ahead of its position after a
 * crash between the two updates; the record found at the cursor position is the authority),
 * never above it: that cursor is damaged (ECORRUPT).
 */
export async function scanLog(
  region: Region,
  header: LogHeader,
  from: LogPoint,
  options: ScanLimits & { trustFirstSequence?: boolean; lastEpoch?: number; cleanEnd?: CleanEndMemo } = {},
): Promise<ScanResult> {
  const { capacity, dataOffset, logId } = header;
  const maxRecords = options.maxRecords ?? Number.MAX_SAFE_INTEGER;
  const maxBytes = options.maxBytes ?? DEFAULT_SCAN_BYTES;
  const entries: ScannedEntry[] = [];
  let position = from.position;
  let sequence = from.sequence;
  let lastEpoch = options.lastEpoch ?? 0;
  let trustSequence = options.trustFirstSequence ?? false;
  let recordCount = 0;
  let bytesRead = 0;
  // A window of the ring already read: [windowStart, windowStart + window.length) in positions.
  let window: Buffer = Buffer.alloc(0);
  let windowStart = 0;
  // Each read of the walk asks for twice the last, up to READ_CHUNK_BYTES.
  let chunk = FIRST_READ_BYTES;

  const stop = (reason: ScanStop['reason'], detail: string, suspect?: boolean): ScanResult => ({
    entries,
    next: { position, sequence },
    lastEpoch,
    stop: suspect === undefined ? { reason, position, sequence, detail } : { reason, position, sequence, detail, suspect },
  });

  /** Makes sure [position, position + length) is in the window; never reads past the ring end. */
  const ensure = async (length: number): Promise<void> => {
    if (position >= windowStart && position + length <= windowStart + window.length) return;
    const ringOffset = position % capacity;
    const wanted = Math.min(capacity - ringOffset, Math.max(length, Math.min(chunk, maxBytes - bytesRead)));
    chunk = Math.min(READ_CHUNK_BYTES, chunk * 2);
    window = await region.read(dataOffset + ringOffset, wanted);
    windowStart = position;
  };

  /**
   * True when what sits at `position` is what the end of a healthy log looks like: never
   * written (a blank header) or a whole, valid record of an earlier lap (it claims a position
   * whole laps back and its CRC validates). No damage to a few bytes of a record makes it look
   * like either; anything else is worth a look past it (damage.ts).
   */
  const isCleanEnd = async (at: number, room: number): Promise<boolean> => {
    const offset = at - windowStart;
    if (window.subarray(offset, offset + RECORD_HEADER_BYTES).every((byte) => byte === 0)) return true;
    const claimed = Number(window.readBigUInt64LE(offset + 8));
    if (!(claimed < at && (at - claimed) % capacity === 0)) return false;
    const memo = options.cleanEnd;
    const headerBytes = window.subarray(offset, offset + RECORD_HEADER_BYTES);
    // A follower polls the same end over and over: the same stale header there was checked already.
    if (memo && memo.position === at && memo.header.equals(headerBytes)) return true;
    const stale = checkHeader(window, offset, claimed, room);
    if (stale.kind !== 'header') return false;
    const length = stale.header.type === 'pad' ? RECORD_HEADER_BYTES : occupiedBytes(stale.header);
    const header = Buffer.from(headerBytes);
    await ensure(length);
    const start = at - windowStart;
    const clean = crcMatches(window.subarray(start, start + length), stale.header, logId);
    if (clean && memo) Object.assign(memo, { position: at, header });
    return clean;
  };

  for (;;) {
    if (recordCount >= maxRecords) return stop('limit', `batch holds the ${maxRecords} records asked for`);
    if (bytesRead >= maxBytes && recordCount > 0) return stop('limit', `batch holds ${bytesRead} bytes (limit ${maxBytes})`);
    position = nextRecordStart(position, capacity);
    const roomToRingEnd = capacity - (position % capacity);
    await ensure(RECORD_HEADER_BYTES);
    const checked = checkHeader(window, position - windowStart, position, roomToRingEnd);
    if (checked.kind === 'end') return stop('end', checked.reason, !(await isCleanEnd(position, roomToRingEnd)));
    if (checked.kind === 'torn') return stop('torn', checked.reason, true);
    const recordHeader = checked.header;
    const isPad = recordHeader.type === 'pad';
    if (recordHeader.type === 'checkpoint') return stop('torn', `an overwrite-mode slot record in an append log at position ${position}`, true);
    const expectedSequence = isPad ? sequence - 1 : sequence;
    if (trustSequence && recordHeader.sequence > expectedSequence) {
      throw new PmuError(
        'ECORRUPT',
        `region '${region.name}': the record at the cursor (position ${position}) carries sequence ${recordHeader.sequence}, past the cursor sequence ${sequence}: the cursor is damaged; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`,
      );
    }
    if (!trustSequence && recordHeader.sequence !== expectedSequence) {
      return stop('torn', `record at position ${position} carries sequence ${recordHeader.sequence}, expected ${expectedSequence}`, true);
    }
    if (recordHeader.epoch < lastEpoch) {
      return stop('torn', `record ${recordHeader.sequence} at position ${position} has epoch ${recordHeader.epoch}, older than the ${lastEpoch} before it (a fenced writer's leftover)`, true);
    }
    const occupies = occupiedBytes(recordHeader);
    const checkedBytes = isPad ? RECORD_HEADER_BYTES : occupies;
    await ensure(checkedBytes);
    const start = position - windowStart;
    const recordBytes = window.subarray(start, start + checkedBytes);
    if (!crcMatches(recordBytes, recordHeader, logId)) return stop('torn', `record ${recordHeader.sequence} at position ${position} fails its CRC32C`, true);

    trustSequence = false;
    lastEpoch = recordHeader.epoch;
    const end = position + occupies;
    if (isPad) {
      entries.push({ header: recordHeader, end });
      sequence = recordHeader.sequence + 1;
    } else {
      const record: LogRecord = {
        sequence: recordHeader.sequence,
        type: recordHeader.type as LogRecordType,
        // Copied out: the window buffer is reused for the next records of this walk.
        payload: Buffer.from(recordBytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + recordHeader.length)),
        epoch: recordHeader.epoch,
        position,
        end,
      };
      entries.push({ header: recordHeader, record, end });
      sequence = recordHeader.sequence + 1;
      recordCount++;
      bytesRead += occupies;
    }
    position = end;
  }
}

