/**
 * Where everything sits in a checkpoint region. One page of header, then the data area:
 * two overwrite slots, or the append ring. The header words that change while the log is in
 * use (epoch, heartbeat, cursor) are 8-aligned so they can be compare-and-swapped and used as
 * a write fence; the words that never change after formatting are covered by a CRC32C.
 *
 * ```
 * 0   magic "PMUCKPT1"            8 bytes   static
 * 8   format version (2)          u32       static
 * 12  mode (1 overwrite, 2 append) u32      static
 * 16  epoch                       checked   CAS by takeover; every writer write is fenced on it
 * 24  writer heartbeat            u64       bumped by the writer ('mapped'); read by the lease only
 * 32  cursor position             checked   logical byte position the reader has cleared to (CAS)
 * 40  cursor sequence             checked   sequence of the record expected at the cursor
 * 48  data offset                 u64       static (HEADER_BYTES)
 * 56  capacity                    u64       static: ring bytes, or bytes per overwrite slot
 * 64  log id                      u32       static, random: seeds every record CRC of this format
 * 68  header CRC32C               u32       over bytes 0..16 and 48..68
 * 72  checkpoint mark             checked   overwrite mode: newest checkpoint known flushed (else 0)
 * ```
 * All integers little-endian. A "checked" word is a 56-bit value with a CRC-8 of it in its top
 * byte (checked-word.ts): these are the words recovery trusts and that cannot share a CRC with
 * anything (each is swapped on its own), so each carries its own. The heartbeat is not trusted
 * by recovery: a damaged one can only make a backup's lease see one more beat.
 *
 * Cursor rule (recovery): both cursor words must pass their check; the record found at the
 * cursor position, if any, must carry a sequence no greater than the cursor sequence (the
 * sequence word is written before the position, so it may run ahead, never behind); and no
 * valid record within one ring behind the cursor may carry a durable mark reaching the cursor
 * sequence (damage.ts; a whole-ring read, made by pmu inspect --verify). Any failure is
 * ECORRUPT; a damaged cursor never reads as an empty log.
 *
 * Checkpoint mark rule (overwrite mode): the writer sets the mark ('mapped', after the slot's
 * flush) to each checkpoint acknowledged 'flushed'; recovery refuses (ECORRUPT) when no valid
 * slot holds a checkpoint at least that new, i.e. an acknowledged checkpoint was damaged.
 *
 * Format version 1 (32-byte record header, unchecked words) had no users and is refused.
 */
export const HEADER_BYTES = 4096;
export const MAGIC = Buffer.from('PMUCKPT1', 'latin1');
export const FORMAT_VERSION = 2;

export const MAGIC_OFFSET = 0;
export const VERSION_OFFSET = 8;
export const MODE_OFFSET = 12;
export const EPOCH_OFFSET = 16;
export const HEARTBEAT_OFFSET = 24;
export const CURSOR_POSITION_OFFSET = 32;
export const CURSOR_SEQUENCE_OFFSET = 40;
export const DATA_OFFSET_OFFSET = 48;
export const CAPACITY_OFFSET = 56;
export const LOG_ID_OFFSET = 64;
export const HEADER_CRC_OFFSET = 68;
export const CHECKPOINT_MARK_OFFSET = 72;
/** Bytes of the header that carry fields; the rest of the header page stays zero. */
export const HEADER_FIELDS_BYTES = 80;

export type CheckpointMode = 'overwrite' | 'append';
export const MODE_CODES: Record<CheckpointMode, number> = { overwrite: 1, append: 2 };

/** Payloads and records are padded to this, so every record header is 8-aligned. */
export const RECORD_ALIGN = 8;

export function alignUp(value: number, to = RECORD_ALIGN): number {
  return Math.ceil(value / to) * to;
}

export function alignDown(value: number, to = RECORD_ALIGN): number {
  return Math.floor(value / to) * to;
}
