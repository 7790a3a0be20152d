/**
 * Offline verification of one region (pmu inspect --verify): is it a checkpoint log, and if so
 * is its header intact, do its header words pass their checks, and does every live record
 * validate. Read-only: it only calls region.read, so it works over any Region, including a
 * read-only view of a file a server has open. It applies the same rules recovery applies
 * (format/log-scan.ts, format/damage.ts), so what it calls damage is what a takeover would refuse.
 */
import { isPmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { checkRecoveredEnd } from './format/damage';
import { LogHeader, readHeader } from './format/header';
import { HEADER_FIELDS_BYTES, MAGIC } from './format/layout';
import { scanLog, ScanStop } from './format/log-scan';
import { readLatestCheckpoint, slotOffset } from './slots';

export interface RegionVerdict {
  region: string;
  /** 'raw': not a checkpoint log (reported, not an error). */
  kind: 'raw' | 'append' | 'overwrite';
  /** Everything recovery would trust validates. */
  ok: boolean;
  /** What is wrong: each one makes recovery refuse (ECORRUPT) or would. */
  problems: string[];
  /** What is worth knowing and is not wrong (a torn tail a crash left, stale bytes). */
  notes: string[];
  /** One line: what the log holds. */
  summary: string;
  /**
   * A valid log's length, to compare copies (copies.ts): append, the last sequence the walk
   * accepted (the cursor's sequence - 1 when none); overwrite, the newest valid checkpoint's.
   */
  extent?: number;
  /** Append: the sequence of a record the walk met and refused as a torn tail. */
  tornAt?: number;
  /** The epoch word's value (a Number, so the verdict prints as JSON). */
  epoch?: number;
}

export async function verifyRegion(region: Region): Promise<RegionVerdict> {
  const verdict: RegionVerdict = { region: region.name, kind: 'raw', ok: true, problems: [], notes: [], summary: '' };
  const problem = (text: string) => {
    verdict.ok = false;
    verdict.problems.push(text);
  };
  if (region.size < HEADER_FIELDS_BYTES) {
    verdict.summary = `raw: ${region.size} bytes, too small for a checkpoint log`;
    return verdict;
  }
  const fields = await region.read(0, HEADER_FIELDS_BYTES);
  if (!looksLikeLog(fields)) {
    verdict.summary = fields.every((byte) => byte === 0) ? 'raw: blank (no checkpoint log)' : 'raw: not a checkpoint log (no PMUCKPT magic)';
    return verdict;
  }
  let header: LogHeader | undefined;
  try {
    header = await readHeader(region);
  } catch (error) {
    if (!isPmuError(error)) throw error;
    verdict.kind = fields.readUInt32LE(12) === 1 ? 'overwrite' : 'append';
    problem(error.message);
    verdict.summary = 'checkpoint log with a damaged header';
    return verdict;
  }
  if (!header) {
    verdict.summary = 'raw: a checkpoint format was begun and never finished (recovery formats it again)';
    return verdict;
  }
  verdict.kind = header.mode;
  verdict.epoch = Number(header.epoch);
  if (header.mode === 'overwrite') await verifySlots(region, header, verdict, problem);
  else await verifyRing(region, header, verdict, problem);
  return verdict;
}

/** The magic, or a damaged magic in an otherwise intact header (the header CRC covers it). */
function looksLikeLog(fields: Buffer): boolean {
  if (fields.subarray(0, MAGIC.length).equals(MAGIC)) return true;
  let differing = 0;
  for (let i = 0; i < MAGIC.length; i++) if (fields[i] !== MAGIC[i]) differing++;
  return differing <= 2 && fields.subarray(8, 16).some((byte) => byte !== 0);
}

async function verifySlots(region: Region, header: LogHeader, verdict: RegionVerdict, problem: (text: string) => void): Promise<void> {
  let latest;
  try {
    latest = await readLatestCheckpoint(region, header);
  } catch (error) {
    if (!isPmuError(error)) throw error;
    problem(error.message);
    verdict.summary = `overwrite log, epoch ${header.epoch}: the newest acknowledged checkpoint is damaged`;
    return;
  }
  verdict.notes.push(...latest.notes);
  const newest = latest.checkpoint;
  verdict.extent = newest?.sequence ?? 0;
  verdict.summary = newest
    ? `overwrite log, epoch ${header.epoch}: checkpoint ${newest.sequence} (${newest.state.length} bytes) in slot ${newest.sequence % 2} at region offset ${slotOffset(header, newest.sequence % 2)}`
    : `overwrite log, epoch ${header.epoch}: no valid checkpoint`;
  if (latest.notes.some((note) => /fails its CRC/.test(note))) {
    verdict.notes.push('a slot failing its CRC that the checkpoint mark does not vouch for: what a crash during a checkpoint leaves (or damage to one acknowledged only \'mapped\'); recovery uses the valid one');
  }
}

async function verifyRing(region: Region, header: LogHeader, verdict: RegionVerdict, problem: (text: string) => void): Promise<void> {
  const cursor = { position: header.cursorPosition, sequence: header.cursorSequence };
  let point = cursor;
  let trustFirstSequence = true;
  let lastEpoch = 0;
  let records = 0;
  let firstSequence: number | undefined;
  let lastSequence: number | undefined;
  let stop!: ScanStop;
  const walk = async (): Promise<void> => {
    for (;;) {
      const scan = await scanLog(region, header, point, { trustFirstSequence, lastEpoch, maxBytes: 4 << 20 });
      for (const entry of scan.entries) {
        if (!entry.record) continue;
        records++;
        firstSequence ??= entry.record.sequence;
        lastSequence = entry.record.sequence;
      }
      if (scan.entries.length > 0) trustFirstSequence = false;
      point = scan.next;
      lastEpoch = scan.lastEpoch;
      stop = scan.stop;
      if (stop.reason !== 'limit') return;
    }
  };
  let check: Awaited<ReturnType<typeof checkRecoveredEnd>>;
  try {
    await walk();
    check = await checkRecoveredEnd(region, header, cursor, stop, cursor.position + header.capacity);
    // A live log (a mirrored region's replica checked while its writer appends): the record at
    // the stop may have been written after the walk read it, and a later one found by the
    // search then looks like a voucher. Damage stays where it is; a live end moves on: walk on
    // from the stop and check again (a few times: the writer keeps appending).
    for (let round = 0; check.voucher && round < 8; round++) {
      const before = point.position;
      await walk();
      if (point.position === before) break; // nothing new at the stop: damage
      check = await checkRecoveredEnd(region, header, cursor, stop, cursor.position + header.capacity);
    }
  } catch (error) {
    if (!isPmuError(error)) throw error;
    problem(error.message);
    verdict.summary = `append log, epoch ${header.epoch}: cursor at position ${cursor.position}, sequence ${cursor.sequence}`;
    return;
  }
  const live = point.position - cursor.position;
  verdict.extent = point.sequence - 1;
  if (stop.reason === 'torn') verdict.tornAt = stop.sequence;
  const range = records > 0 ? `records ${firstSequence}-${lastSequence}` : 'no records';
  verdict.summary = `append log, epoch ${header.epoch}, ring ${header.capacity} bytes: cursor at position ${cursor.position} (sequence ${cursor.sequence}); live: ${range} (${records}, ${live} bytes)`;
  const { voucher, witness } = check;
  if (voucher) {
    problem(
      `record ${stop.sequence} at log position ${stop.position} (region offset ${header.dataOffset + (stop.position % header.capacity)}) is damaged (${stop.detail}), ` +
        `and record ${voucher.sequence} at position ${voucher.position} after it was written once record ${voucher.durable} was persisted: acknowledged records follow the damage; recovery refuses this log (ECORRUPT)`,
    );
  } else if (stop.reason === 'torn') {
    verdict.notes.push(`ends in a torn tail at record ${stop.sequence} (${stop.detail}): what a crash during an append leaves; recovery drops it`);
  }
  if (witness) {
    problem(`the cursor is damaged: record ${witness.sequence} at position ${witness.position} behind it was written once record ${witness.durable} was persisted; recovery refuses this log (ECORRUPT)`);
  }
  const stale = header.capacity - Math.min(header.capacity, live);
  if (stale > 0) verdict.notes.push(`stale: the other ${stale} bytes of the ring hold consumed records, earlier laps or nothing yet (not checked: recovery never reads them)`);
}
