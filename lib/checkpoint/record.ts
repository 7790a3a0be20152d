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
 * 16  epoch           u32   low 32 bits of the writer's epoch
 * 20  length          u32   payload bytes (pad: filler bytes after this header)
 * 24  type            u16   1 update, 2 snapshot, 3 pad, 4 checkpoint
 * 26  reserved        u16   0
 * 28  crc32c          u32   seeded with the log id; over bytes 0..28, then the payload
 * 32  payload, zero-padded to a multiple of 8 (pads: not written, not covered)
 * ```
 */
import { crc32c } from '../unit/native';
import { alignUp } from './layout';

export const RECORD_HEADER_BYTES = 32;
/** Largest payload a u32 length can describe; the ring or slot size is usually the real limit. */
export const MAX_PAYLOAD_BYTES = 0xffff_ffff;

export type RecordType = 'update' | 'snapshot' | 'pad' | 'checkpoint';
const TYPE_CODES: Record<RecordType, number> = { update: 1, snapshot: 2, pad: 3, checkpoint: 4 };
const TYPES_BY_CODE: Array<RecordType | undefined> = [undefined, 'update', 'snapshot', 'pad', 'checkpoint'];

export interface RecordHeader {
  sequence: number;
  position: number;
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
  const headerCrc = crc32c(record.subarray(0, 28), logId);
  record.writeUInt32LE(crc32c(payload, headerCrc), 28);
  return record;
}

/** A pad fills the end of the ring; only its header is written and checksummed. */
export function encodePad(sequence: number, position: number, epoch: number, fillerBytes: number, logId: number): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  writeHeaderFields(header, { sequence, position, epoch, length: fillerBytes, type: 'pad' });
  header.writeUInt32LE(crc32c(header.subarray(0, 28), logId), 28);
  return header;
}

function writeHeaderFields(target: Buffer, header: RecordHeader): void {
  target.writeBigUInt64LE(BigInt(header.sequence), 0);
  target.writeBigUInt64LE(BigInt(header.position), 8);
  target.writeUInt32LE(header.epoch >>> 0, 16);
  target.writeUInt32LE(header.length, 20);
  target.writeUInt16LE(TYPE_CODES[header.type], 24);
  target.writeUInt16LE(0, 26);
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
  const type = TYPES_BY_CODE[bytes.readUInt16LE(offset + 24)];
  if (type === undefined) return { kind: 'torn', reason: `unknown record type ${bytes.readUInt16LE(offset + 24)}` };
  const length = bytes.readUInt32LE(offset + 20);
  const occupies = type === 'pad' ? RECORD_HEADER_BYTES + length : recordBytes(length);
  if (occupies > maxBytes) return { kind: 'torn', reason: `length ${length} does not fit where the record sits (${maxBytes} bytes available)` };
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) return { kind: 'torn', reason: `sequence ${sequence} is out of range` };
  return {
    kind: 'header',
    header: { sequence: Number(sequence), position: expectedPosition, epoch: bytes.readUInt32LE(offset + 16), length, type },
  };
}

/** Checks the CRC of a record whose header passed checkHeader; `record` starts at its header. */
export function crcMatches(record: Buffer, header: RecordHeader, logId: number): boolean {
  const headerCrc = crc32c(record.subarray(0, 28), logId);
  const expected = header.type === 'pad' ? headerCrc : crc32c(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + header.length), headerCrc);
  return record.readUInt32LE(28) === expected;
}

/** Bytes the record whose header this is occupies in the region. */
export function occupiedBytes(header: RecordHeader): number {
  return header.type === 'pad' ? RECORD_HEADER_BYTES + header.length : recordBytes(header.length);
}
