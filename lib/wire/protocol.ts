/**
 * The pmu wire protocol: constants and the frame header. docs/PROTOCOL.md is the prose of
 * this file; change both together.
 *
 * Every frame is a 12-byte little-endian header followed by `bodyLength` bytes:
 *   u32 bodyLength | u8 version | u8 opcode | u16 flags | u32 requestId
 * Requests carry a client-chosen request id; the reply (OK or ERROR) carries the same id, so
 * many requests can be in flight on one connection and complete in any order.
 */
import type { Rights } from '../unit/region';

/**
 * 2: WRITE and CAS carry a durability code (bits 0-3 of flags) and the fence in bit 4.
 * 3: HELLO names the server; the proofs cover that name, the AUTH flags and, on TLS, the TLS
 * session (channel binding); a sealed session tags every frame after the handshake (seal.ts).
 */
export const PROTOCOL_VERSION = 3;
export const HEADER_BYTES = 12;

/** Room for a data op's fixed fields in front of a 64 MiB payload. */
export const BODY_OVERHEAD_BYTES = 64;
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Before authentication a peer may send only small frames: an unauthenticated peer cannot make the server buffer much. */
export const PRE_AUTH_MAX_BODY_BYTES = 4096;

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const KEY_BYTES = 16;

export enum Op {
  // handshake
  HELLO = 0x01,
  AUTH = 0x02,
  PING = 0x03,
  // persistent memory manager
  OPEN = 0x20,
  CLOSE = 0x21,
  CREATE = 0x22,
  DELETE = 0x23,
  LIST = 0x24,
  SET_GRANTS = 0x25,
  // one-sided data operations
  WRITE = 0x30,
  READ = 0x31,
  FLUSH = 0x32,
  CAS = 0x33,
  /** CRC32C of a range, computed on the PMU (scrub, resync): u64 length -> u32 crc. */
  CHECKSUM = 0x34,
  // failure detection
  WATCH = 0x40,
  UNWATCH = 0x41,
  // server to client
  OK = 0x80,
  ERROR = 0x81,
  EVENT = 0x82,
}

export const OP_NAMES: Readonly<Record<number, string>> = {
  [Op.HELLO]: 'HELLO',
  [Op.AUTH]: 'AUTH',
  [Op.PING]: 'PING',
  [Op.OPEN]: 'OPEN',
  [Op.CLOSE]: 'CLOSE',
  [Op.CREATE]: 'CREATE',
  [Op.DELETE]: 'DELETE',
  [Op.LIST]: 'LIST',
  [Op.SET_GRANTS]: 'SET_GRANTS',
  [Op.WRITE]: 'WRITE',
  [Op.READ]: 'READ',
  [Op.FLUSH]: 'FLUSH',
  [Op.CAS]: 'CAS',
  [Op.CHECKSUM]: 'CHECKSUM',
  [Op.WATCH]: 'WATCH',
  [Op.UNWATCH]: 'UNWATCH',
  [Op.OK]: 'OK',
  [Op.ERROR]: 'ERROR',
  [Op.EVENT]: 'EVENT',
};

/**
 * WRITE and CAS flags: bits 0-3 hold the durability level's wire code (lib/unit/durability.ts:
 * 0 'mapped', 1 'flushed'); bit 4 (WRITE only) asks for the fence check. Other bits are zero.
 */
export const DURABILITY_CODE_MASK = 0x0f;
export const FLAG_FENCE = 0x10;

/** Rights as the ATT stores them (1 = read, 3 = read and write); 0 in OPEN means "the most I may have". */
export const RIGHTS_NONE = 0;
export const RIGHTS_READ = 1;
export const RIGHTS_READ_WRITE = 3;

export function rightsName(bits: number): Rights {
  return bits === RIGHTS_READ_WRITE ? 'rw' : 'r';
}

export function rightsBits(rights: Rights): number {
  return rights === 'rw' ? RIGHTS_READ_WRITE : RIGHTS_READ;
}

export const EVENT_WRITER_CLOSED = 1;
export const EVENT_WRITER_DISCONNECTED = 2;
/**
 * Set in an EVENT's reason byte when the connection that left had made a fenced WRITE on the
 * region: it was the region's epoch writer (a checkpoint primary), not a tool or a resync agent
 * that also held it read-write. A backup takes over only on those.
 */
export const EVENT_FLAG_FENCED_WRITER = 0x80;

/** Fixed field sizes of the data ops: u32 handle | key[16] | u64 vaddr, then per-op fields. */
export const DATA_PREFIX_BYTES = 4 + KEY_BYTES + 8;
export const WRITE_FIXED_BYTES = DATA_PREFIX_BYTES + 16;
export const READ_FIXED_BYTES = DATA_PREFIX_BYTES + 4;
export const FLUSH_FIXED_BYTES = DATA_PREFIX_BYTES + 8;
export const CAS_FIXED_BYTES = DATA_PREFIX_BYTES + 16;
export const CHECKSUM_FIXED_BYTES = DATA_PREFIX_BYTES + 8;
/** The most one CHECKSUM covers (the unit's own cap, kMaxChecksumBytes): a client splits longer ranges. */
export { MAX_CHECKSUM_BYTES } from '../unit/native';
export const OPEN_REPLY_BYTES = 4 + 1 + 3 + 8 + 8 + KEY_BYTES;
/** HELLO's fixed fields; the server's identity (UTF-8, at most IDENTITY_MAX_BYTES) follows. */
export const HELLO_BYTES = 2 + 2 + 4 + NONCE_BYTES;
export const IDENTITY_MAX_BYTES = 64;
/** HELLO flags: the server can seal sessions. */
export const HELLO_CAN_SEAL = 0x1;
/** AUTH flags: seal this session (every frame after the handshake carries a tag, both ways). */
export const AUTH_SEAL = 0x1;

/** Request ids are u32; 0 is reserved for frames that answer no request (HELLO, EVENT). */
export const NO_REQUEST = 0;

export interface FrameHeader {
  bodyLength: number;
  version: number;
  op: number;
  flags: number;
  requestId: number;
}

export function encodeHeader(op: number, flags: number, requestId: number, bodyLength: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(header, op, flags, requestId, bodyLength);
  return header;
}

/** Writes a frame header into the first HEADER_BYTES of `target`. */
export function writeHeader(target: Buffer, op: number, flags: number, requestId: number, bodyLength: number): void {
  target.writeUInt32LE(bodyLength, 0);
  target[4] = PROTOCOL_VERSION;
  target[5] = op;
  target.writeUInt16LE(flags, 6);
  target.writeUInt32LE(requestId, 8);
}

/**
 * Frames of at most this many bytes are copied into one buffer and written with one call:
 * for a few KiB the copy costs less than a writev of separate pieces.
 */
export const SMALL_FRAME_BYTES = 16 * 1024;

export function decodeHeader(bytes: Buffer, at: number): FrameHeader {
  // Read in place: a view of the 12 bytes would be one more object per frame on the hot path.
  return {
    bodyLength: bytes.readUInt32LE(at),
    version: bytes[at + 4],
    op: bytes[at + 5],
    flags: bytes.readUInt16LE(at + 6),
    requestId: bytes.readUInt32LE(at + 8),
  };
}

/**
 * Reads a u64 that must be a safe JS integer (addresses and lengths). Returns -1 when it is
 * not, so the caller can refuse it with EBOUNDS instead of computing with a rounded value.
 */
export function readSafeU64(bytes: Buffer, at: number): number {
  const low = bytes.readUInt32LE(at);
  const high = bytes.readUInt32LE(at + 4);
  if (high >= 0x200000) return -1;
  return high * 0x1_0000_0000 + low;
}

export function writeU64(bytes: Buffer, at: number, value: number): void {
  bytes.writeUInt32LE(value % 0x1_0000_0000, at);
  bytes.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}
