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
import { crc32c } from '../unit/native';
import { alignUp } from './layout';

export const RECORD_HEADER_BYTES = 40;
/** Bytes of the record header covered by the header CRC (everything before the CRC itself). */
const CRC_OFFSET = 36;
/** Largest payload a u32 length can describe; the ring or slot size is usually the real limit. */
export const MAX_PAYLOAD_BYTES = 0xffff_ffff;

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

/** The whole record in one buffer, so it is published by one write call. */
export function encodeRecord(header: Omit<RecordHeader, 'length'>, payload: Uint8Array, logId: number): Buffer {
  const record = Buffer.alloc(recordBytes(payload.length));
  writeHeaderFields(record, { ...header, length: payload.length });
  record.set(payload, RECORD_HEADER_BYTES);
  const headerCrc = crc32c(record.subarray(0, CRC_OFFSET), logId);
  record.writeUInt32LE(crc32c(payload, headerCrc), CRC_OFFSET);
  return record;
}

/** A pad fills the end of the ring; only its header is written and checksummed. */
export function encodePad(sequence: number, position: number, durable: number, epoch: number, fillerBytes: number, logId: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  writeHeaderFields(header, { sequence, position, durable, epoch, length: fillerBytes, type: 'pad' });
  header.writeUInt32LE(crc32c(header.subarray(0, CRC_OFFSET), logId), CRC_OFFSET);
  return header;
}

function writeHeaderFields(target: Buffer, header: RecordHeader): void {
  target.writeBigUInt64LE(BigInt(header.sequence), 0);
  target.writeBigUInt64LE(BigInt(header.position), 8);
  target.writeBigUInt64LE(BigInt(header.durable), 16);
  target.writeUInt32LE(header.epoch >>> 0, 24);
  target.writeUInt32LE(header.length, 28);
  target.writeUInt16LE(TYPE_CODES[header.type], 32);
  target.writeUInt16LE(0, 34);
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
