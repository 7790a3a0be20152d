/**
 * Reading, validating and formatting the checkpoint header (layout.ts). Formatting claims the
 * region with a compare-and-swap of the epoch from 0 to 1 first, so two writers formatting the
 * same blank region cannot both succeed, and every later header write is fenced on that epoch.
 */
import { randomInt } from 'node:crypto';
import { PmuError } from '../../unit/errors';
import { crc32c } from '../../unit/native';
import { Region } from '../../unit/region';
import {
  alignDown,
  CAPACITY_OFFSET,
  CHECKPOINT_MARK_OFFSET,
  CheckpointMode,
  CURSOR_POSITION_OFFSET,
  CURSOR_SEQUENCE_OFFSET,
  DATA_OFFSET_OFFSET,
  EPOCH_OFFSET,
  FORMAT_VERSION,
  HEADER_BYTES,
  HEADER_CRC_OFFSET,
  HEADER_FIELDS_BYTES,
  HEARTBEAT_OFFSET,
  LOG_ID_OFFSET,
  MAGIC,
  MAGIC_OFFSET,
  MODE_CODES,
  MODE_OFFSET,
  VERSION_OFFSET,
} from './layout';
import { RECORD_HEADER_BYTES } from './record';
import { decodeWord, encodeWord, WordName } from './checked-word';

export interface LogHeader {
  mode: CheckpointMode;
  epoch: bigint;
  heartbeat: bigint;
  cursorPosition: number;
  cursorSequence: number;
  dataOffset: number;
  /** Ring bytes (append) or bytes per slot (overwrite). */
  capacity: number;
  logId: number;
}

/** Smallest data area worth formatting: room for a couple of small records. */
const MIN_DATA_BYTES = 4 * RECORD_HEADER_BYTES;

async function readWord(region: Region, offset: number): Promise<bigint> {
  return (await region.read(offset, 8)).readBigUInt64LE(0);
}

/** Reads and checks one of the checked header words (layout.ts): ECORRUPT if it is damaged. */
export async function readCheckedWord(region: Region, name: WordName, offset: number): Promise<bigint> {
  return decodeWord(name, await readWord(region, offset), region.name, offset);
}

/** The fence every write of the writer at `epoch` carries: the epoch word as stored. */
export function fenceFor(epoch: bigint): { offset: number; epoch: bigint } {
  return { offset: EPOCH_OFFSET, epoch: encodeWord('epoch', epoch) };
}

export function wordBytes(value: bigint | number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

function headerCrc(fields: Buffer, logId: number): number {
  return crc32c(fields.subarray(DATA_OFFSET_OFFSET, HEADER_CRC_OFFSET), crc32c(fields.subarray(0, EPOCH_OFFSET), logId));
}

/** The header, or undefined if the region was never formatted (all header fields zero). */
export async function readHeader(region: Region): Promise<LogHeader | undefined> {
  if (region.size < HEADER_FIELDS_BYTES) {
    throw new PmuError('EINVAL', `region '${region.name}' (${region.size} bytes) is too small for a checkpoint log`);
  }
  const fields = await region.read(0, HEADER_FIELDS_BYTES);
  if (fields.every((byte) => byte === 0)) return undefined;
  const problem = (what: string) =>
    new PmuError('ECORRUPT', `region '${region.name}' does not hold a valid checkpoint header (${what}); delete and recreate the region, or use another`);
  if (!fields.subarray(MAGIC_OFFSET, MAGIC_OFFSET + MAGIC.length).equals(MAGIC)) {
    // Formatting writes the magic last: a claimed epoch with no magic is a format in progress or interrupted.
    if (fields.subarray(0, EPOCH_OFFSET).every((byte) => byte === 0)) return undefined;
    throw problem('bad magic');
  }
  const logId = fields.readUInt32LE(LOG_ID_OFFSET);
  if (fields.readUInt32LE(HEADER_CRC_OFFSET) !== headerCrc(fields, logId)) throw problem('header CRC mismatch');
  const version = fields.readUInt32LE(VERSION_OFFSET);
  if (version !== FORMAT_VERSION) {
    throw new PmuError(
      'ECORRUPT',
      `region '${region.name}' holds a checkpoint log of format version ${version}; this pmu reads only version ${FORMAT_VERSION}` +
        (version < FORMAT_VERSION ? ' (version 1 predates checked cursor words and durable marks and had no users: there is no migration; delete and recreate the region)' : ' (written by a newer pmu: upgrade)'),
    );
  }
  const modeCode = fields.readUInt32LE(MODE_OFFSET);
  const mode = (Object.keys(MODE_CODES) as CheckpointMode[]).find((m) => MODE_CODES[m] === modeCode);
  if (!mode) throw problem(`unknown mode ${modeCode}`);
  const dataOffset = Number(fields.readBigUInt64LE(DATA_OFFSET_OFFSET));
  const capacity = Number(fields.readBigUInt64LE(CAPACITY_OFFSET));
  // Geometry formatting can produce, and nothing else: every later offset is computed from these.
  if (dataOffset !== HEADER_BYTES) throw problem(`data offset ${dataOffset}, where formatting always writes ${HEADER_BYTES}`);
  // (formatting sizes the data area from the region's size, which never changes).
  const expected = capacityFor(mode, region.size);
  if (capacity !== expected) throw problem(`capacity ${capacity}, where formatting a ${mode} log in ${region.size} bytes always writes ${expected}`);
  const word = (name: WordName, offset: number) => decodeWord(name, fields.readBigUInt64LE(offset), region.name, offset);
  const cursorPosition = Number(word('cursor position', CURSOR_POSITION_OFFSET));
  const cursorSequence = Number(word('cursor sequence', CURSOR_SEQUENCE_OFFSET));
  word('checkpoint mark', CHECKPOINT_MARK_OFFSET);
  if (cursorSequence < 1 || cursorPosition % 8 !== 0 || cursorSequence > Number.MAX_SAFE_INTEGER || cursorPosition > Number.MAX_SAFE_INTEGER) {
    throw new PmuError('ECORRUPT', `region '${region.name}': the checkpoint cursor (position ${cursorPosition}, sequence ${cursorSequence}) is impossible: the header is damaged; nothing was written. Run 'pmu inspect --verify FILE' and restore the region from a mirror or a backup`);
  }
  return {
    mode,
    epoch: word('epoch', EPOCH_OFFSET),
    heartbeat: fields.readBigUInt64LE(HEARTBEAT_OFFSET),
    cursorPosition,
    cursorSequence,
    dataOffset,
    capacity,
    logId,
  };
}

/** Data area sizes for a region of `regionSize` bytes in `mode`. */
function capacityFor(mode: CheckpointMode, regionSize: number): number {
  const dataBytes = regionSize - HEADER_BYTES;
  return mode === 'overwrite' ? alignDown(Math.max(0, dataBytes) / 2) : alignDown(Math.max(0, dataBytes));
}

/**
 * Formats a blank region for `mode`: cursor at position 0 expecting sequence 1. The epoch is
 * bumped, not reset, so a format that was interrupted (epoch claimed, magic never written) or
 * one racing this one is fenced. Fails with ETAKEN if another writer claimed the region first.
 */
export async function formatRegion(region: Region, mode: CheckpointMode): Promise<LogHeader> {
  const capacity = capacityFor(mode, region.size);
  if (capacity < MIN_DATA_BYTES) {
    throw new PmuError('EINVAL', `region '${region.name}' (${region.size} bytes) is too small for a checkpoint log: give it at least ${HEADER_BYTES + MIN_DATA_BYTES * (mode === 'overwrite' ? 2 : 1)} bytes`);
  }
  // A never-formatted region holds 0 here; after a format began, a checked epoch word.
  const observedWord = await readWord(region, EPOCH_OFFSET);
  const observed = observedWord === 0n ? 0n : decodeWord('epoch', observedWord, region.name, EPOCH_OFFSET);
  const epoch = observed + 1n;
  const previous = await region.compareAndSwap(EPOCH_OFFSET, observedWord, encodeWord('epoch', epoch));
  if (previous !== observedWord) throw new PmuError('ETAKEN', `region '${region.name}' is being formatted by another writer`);
  const logId = randomInt(1, 0xffff_ffff);
  const fields = Buffer.alloc(HEADER_FIELDS_BYTES);
  MAGIC.copy(fields, MAGIC_OFFSET);
  fields.writeUInt32LE(FORMAT_VERSION, VERSION_OFFSET);
  fields.writeUInt32LE(MODE_CODES[mode], MODE_OFFSET);
  fields.writeBigUInt64LE(encodeWord('cursor position', 0), CURSOR_POSITION_OFFSET);
  fields.writeBigUInt64LE(encodeWord('cursor sequence', 1), CURSOR_SEQUENCE_OFFSET);
  fields.writeBigUInt64LE(encodeWord('checkpoint mark', 0), CHECKPOINT_MARK_OFFSET);
  fields.writeBigUInt64LE(BigInt(HEADER_BYTES), DATA_OFFSET_OFFSET);
  fields.writeBigUInt64LE(BigInt(capacity), CAPACITY_OFFSET);
  fields.writeUInt32LE(logId, LOG_ID_OFFSET);
  fields.writeUInt32LE(headerCrc(fields, logId), HEADER_CRC_OFFSET);
  const fence = fenceFor(epoch);
  // Everything after the epoch first, the magic last: a reader sees a valid header or none.
  await region.write(HEARTBEAT_OFFSET, fields.subarray(HEARTBEAT_OFFSET), { fence });
  await region.write(0, fields.subarray(0, EPOCH_OFFSET), { fence });
  return { mode, epoch, heartbeat: 0n, cursorPosition: 0, cursorSequence: 1, dataOffset: HEADER_BYTES, capacity, logId };
}
