/**
 * The self-validating record: the unit of both modes (an append-ring entry, or an overwrite
 * slot). A record is trusted only if its CRC32C validates AND it claims to sit exactly where it
 * was found (its logical position) with the sequence the reader expects next; so a stale record
 * left from an earlier lap of the ring, a record of an earlier format of the region (different
 * log id, which seeds the CRC) or a torn one is never taken for the next one.
 *
 * ```
 * 0   sequence        u64
 * 8   position        u64   logical log position (slots: the slot's region offset)
 * 16  durable         u64   every record up to this sequence was flushed when this one was placed
 * 24  epoch           u32   low 32 bits of the writer's epoch
 * 28  length          u32   payload bytes (pad: filler bytes after this header)
 * 32  type            u16   1 update, 2 snapshot, 3 pad, 4 checkpoint
 * 34  reserved        u16   0
 * 36  crc32c          u32   seeded with the log id; over bytes 0..36, then the payload
 * 40  payload, zero-padded to a multiple of 8 (pads: not written, not covered)
 * ```
 * `durable` is what tells damage from a torn tail (damage.ts): a valid record whose `durable`
 * reaches sequence n proves record n was persisted before it, so an invalid record n is
 * damage; a crash can only tear records no valid later record vouches for.
 */
import { crc32c } from '../../unit/native';
import { alignUp } from './layout';

export const RECORD_HEADER_BYTES = 40;
/** Bytes of the record header covered by the header CRC (everything before the CRC itself). */
const CRC_OFFSET = 36;
/** Largest payload a u32 length can describe; the ring or slot size is usually the real limit. */
const MAX_PAYLOAD_BYTES = 0xffff_ffff;

export type RecordType = 'update' | 'snapshot' | 'pad' | 'checkpoint';
const TYPE_CODES: Record<RecordType, number> = { update: 1, snapshot: 2, pad: 3, checkpoint: 4 };
const TYPES_BY_CODE: Array<RecordType | undefined> = [undefined, 'update', 'snapshot', 'pad', 'checkpoint'];

export interface RecordHeader {
  sequence: number;
  position: number;
  /** Every record up to this sequence was persisted ('flushed') when this one was placed. */
  durable: number;
  epoch: number;
  length: number;
  type: RecordType;
}

/** Bytes a record with `payloadLength` bytes of payload occupies. */
export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + alignUp(payloadLength);
}

/**
 * Blank bytes written right after an appended record, where the next record's header will go:
 * a reader that catches up meets a blank header (a clean end), not stale bytes of an earlier
 * lap that it would have to search the ring past to tell from damage (damage.ts).
 */
export const END_MARK_BYTES = RECORD_HEADER_BYTES;

/**
 * A payload built in place in the buffer its record is written from, so appending it copies
 * nothing: header room first, the payload at RECORD_HEADER_BYTES, then at least the record's
 * padding and an end mark (frameBytes).
 */
export interface RecordFrame {
  buffer: Buffer;
  /** Payload bytes. */
  length: number;
}

/** Bytes a frame for `payloadLength` bytes of payload needs: the record and its end mark. */
export function frameBytes(payloadLength: number): number {
  return recordBytes(payloadLength) + END_MARK_BYTES;
}

/** A frame holding a copy of `payload` (the one copy of a plain append). */
export function frameFor(payload: Uint8Array): RecordFrame {
  const buffer = Buffer.allocUnsafe(frameBytes(payload.length));
  buffer.set(payload, RECORD_HEADER_BYTES);
  return { buffer, length: payload.length };
}

/** True if `value` is a frame whose buffer holds a record of its length and the end mark. */
export function isRecordFrame(value: unknown): value is RecordFrame {
  if (typeof value !== 'object' || value === null) return false;
  const { buffer, length } = value as RecordFrame;
  return Buffer.isBuffer(buffer) && Number.isSafeInteger(length) && length >= 0 && length <= MAX_PAYLOAD_BYTES && buffer.length >= frameBytes(length);
}

/**
 * Seals a frame in place: writes the header, zeroes the padding and the end mark after it,
 * and sets the CRC. Returns the record with its end mark (write all of it, or the record
 * alone: subarray(0, recordBytes(length))).
 */
export function sealFrame(header: Omit<RecordHeader, 'length'>, frame: RecordFrame, logId: number): Buffer {
  const { buffer, length } = frame;
  const end = recordBytes(length);
  writeHeaderFields(buffer, header.sequence, header.position, header.durable, header.epoch, length, header.type);
  buffer.fill(0, RECORD_HEADER_BYTES + length, end + END_MARK_BYTES);
  const headerCrc = crc32c(buffer.subarray(0, CRC_OFFSET), logId);
  buffer.writeUInt32LE(crc32c(buffer.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length), headerCrc), CRC_OFFSET);
  return buffer.subarray(0, end + END_MARK_BYTES);
}

/**
 * A large payload appended from the caller's own buffer (a Region that copies on write): its
 * record is written in parts, the payload and its padding first and the header last, so the
 * payload is copied once (into the mapping) and not first into a record buffer.
 */
export interface SplitPayload {
  payload: Uint8Array;
  /** Payload bytes (payload.length). */
  length: number;
}

/** Payloads from this size are written split (a copy of 256 KiB costs ~0.1 ms; of 16 MiB, 2–15 ms with page faults). */
export const SPLIT_PAYLOAD_BYTES = 256 * 1024;

export function isSplitPayload(value: RecordFrame | SplitPayload): value is SplitPayload {
  return (value as SplitPayload).payload !== undefined;
}

/**
 * The header and the tail (padding, then the end mark's zeros) of a split record; the CRC
 * covers the caller's payload in place. Same bytes as sealFrame's, in three pieces.
 */
export function sealSplit(header: Omit<RecordHeader, 'length'>, split: SplitPayload, logId: number): { head: Buffer; tail: Buffer } {
  const length = split.payload.length;
  const head = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  writeHeaderFields(head, header.sequence, header.position, header.durable, header.epoch, length, header.type);
  const headerCrc = crc32c(head.subarray(0, CRC_OFFSET), logId);
  head.writeUInt32LE(crc32c(split.payload, headerCrc), CRC_OFFSET);
  const tail = Buffer.alloc(recordBytes(length) - RECORD_HEADER_BYTES - length + END_MARK_BYTES);
  return { head, tail };
}

/** The whole record in one buffer, so it is published by one write call. */
export function encodeRecord(header: Omit<RecordHeader, 'length'>, payload: Uint8Array, logId: number): Buffer {
  return sealFrame(header, frameFor(payload), logId).subarray(0, recordBytes(payload.length));
}

/** A pad fills the end of the ring; only its header is written and checksummed. */
export function encodePad(sequence: number, position: number, durable: number, epoch: number, fillerBytes: number, logId: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  writeHeaderFields(header, sequence, position, durable, epoch, fillerBytes, 'pad');
  header.writeUInt32LE(crc32c(header.subarray(0, CRC_OFFSET), logId), CRC_OFFSET);
  return header;
}

function writeHeaderFields(target: Buffer, sequence: number, position: number, durable: number, epoch: number, length: number, type: RecordType): void {
  writeU64(target, sequence, 0);
  writeU64(target, position, 8);
  writeU64(target, durable, 16);
  target.writeUInt32LE(epoch >>> 0, 24);
  target.writeUInt32LE(length, 28);
  target.writeUInt16LE(TYPE_CODES[type], 32);
  target.writeUInt16LE(0, 34);
}

/** A safe integer as a little-endian u64, without a BigInt per field. */
function writeU64(target: Buffer, value: number, offset: number): void {
  target.writeUInt32LE(value % 0x1_0000_0000, offset);
  target.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

/** Epochs are u64 in the region header; records keep the low 32 bits (enough to order them). */
export function epochTag(epoch: bigint): number {
  return Number(epoch & 0xffff_ffffn);
}

export type HeaderCheck =
  | { kind: 'header'; header: RecordHeader }
  /** Nothing was ever written here in this lap: blank, or a record of another position. */
  | { kind: 'end'; reason: string }
  /** Something claims to be the record at this position but does not hold together. */
  | { kind: 'torn'; reason: string };

/**
 * Reads the header at `offset` in `bytes` and checks what can be checked without the payload.
 * `maxBytes` is the most the record may occupy where it was found.
 */
export function checkHeader(bytes: Buffer, offset: number, expectedPosition: number, maxBytes: number): HeaderCheck {
  const sequence = bytes.readBigUInt64LE(offset);
  const position = bytes.readBigUInt64LE(offset + 8);
  if (sequence === 0n) return { kind: 'end', reason: 'no record here yet (blank header)' };
  if (position !== BigInt(expectedPosition)) {
    return { kind: 'end', reason: `no record for position ${expectedPosition} (found one claiming position ${position})` };
  }
  const type = TYPES_BY_CODE[bytes.readUInt16LE(offset + 32)];
  if (type === undefined) return { kind: 'torn', reason: `unknown record type ${bytes.readUInt16LE(offset + 32)}` };
  const length = bytes.readUInt32LE(offset + 28);
  const occupies = type === 'pad' ? RECORD_HEADER_BYTES + length : recordBytes(length);
  if (occupies > maxBytes) return { kind: 'torn', reason: `length ${length} does not fit where the record sits (${maxBytes} bytes available)` };
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) return { kind: 'torn', reason: `sequence ${sequence} is out of range` };
  const durable = bytes.readBigUInt64LE(offset + 16);
  if (durable > sequence) return { kind: 'torn', reason: `durable mark ${durable} is past sequence ${sequence}` };
  return {
    kind: 'header',
    header: { sequence: Number(sequence), position: expectedPosition, durable: Number(durable), epoch: bytes.readUInt32LE(offset + 24), length, type },
  };
}

/** Checks the CRC of a record whose header passed checkHeader; `record` starts at its header. */
export function crcMatches(record: Buffer, header: RecordHeader, logId: number): boolean {
  const headerCrc = crc32c(record.subarray(0, CRC_OFFSET), logId);
  const expected = header.type === 'pad' ? headerCrc : crc32c(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + header.length), headerCrc);
  return record.readUInt32LE(CRC_OFFSET) === expected;
}

/** Bytes the record whose header this is occupies in the region. */
export function occupiedBytes(header: RecordHeader): number {
  return header.type === 'pad' ? RECORD_HEADER_BYTES + header.length : recordBytes(header.length);
}
