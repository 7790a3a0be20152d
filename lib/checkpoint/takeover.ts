/**
 * The one way to become primary: openPrimary. It formats a blank region, or takes an existing
 * log over, fencing whoever wrote it before, and hands back what the log holds, so a
 * restarted primary recovers its state exactly as a backup taking over would.
 *
 * A takeover, in order:
 * 1. fence: CAS the epoch word from the epoch being replaced to the next one; from then on the
 *    PMU refuses the old writer's writes with EFENCED (they are fenced on the epoch). A lost
 *    CAS is ETAKEN; a damaged epoch word is ECORRUPT.
 * 2. recover: read every record not read yet (append) or the newest valid checkpoint
 *    (overwrite); damage is ECORRUPT, and nothing but the epoch was written.
 * 3. flush what it recovered (the flush-before-ack rule): the old writer may have written
 *    'mapped', and the new one must not acknowledge a record that follows records a power
 *    loss could take. One msync from the region start covers the header and the live ring
 *    (or the newest checkpoint's slot).
 * 4. only then build the writer at the new epoch.
 */
import { PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { encodeWord } from './format/checked-word';
import { formatRegion, readCheckedWord, readHeader } from './format/header';
import { EPOCH_OFFSET, HEADER_BYTES } from './format/layout';
import { LogRecord, ScanStop } from './format/log-scan';
import { CheckpointReader } from './reader';
import { withRepair } from './repair';
import { recordBytes } from './format/record';
import { Checkpoint, slotOffset } from './slots';
import { CheckpointWriter, CheckpointWriterOptions } from './writer';

export interface TakeoverOptions extends CheckpointWriterOptions {
  /**
   * The epoch of the primary being replaced. Default: the epoch the reader last saw in use
   * (at open, or while watching the primary). If it changed since, someone else took over: ETAKEN.
   */
  expectedEpoch?: bigint;
}

export interface Takeover {
  /** The new primary's writer, at the new epoch, positioned after the last valid record. */
  writer: CheckpointWriter;
  /** The reader that took over: it still owns the cursor (e.g. to clear up to a fresh snapshot). */
  reader: CheckpointReader;
  /** Append mode: every record the reader had not read yet, in order. */
  records: LogRecord[];
  /** Overwrite mode: the newest valid checkpoint, if any. */
  checkpoint?: Checkpoint;
  /** Where the recovered log ends and why (append mode). */
  stop?: ScanStop;
  epoch: bigint;
}

/**
 * Becomes the primary of `target`:
 * - a Region: formats it when blank (`options.mode` required), otherwise takes its log over
 *   from the cleared cursor, replacing the epoch the header holds now;
 * - a CheckpointReader (a backup that was following the log): takes over from where that
 *   reader stands, replacing the epoch it last saw (`options.expectedEpoch` overrides).
 */
export async function openPrimary(target: Region | CheckpointReader, options: TakeoverOptions = {}): Promise<Takeover> {
  if (target instanceof CheckpointReader) return takeOver(target, options);
  const region = target;
  const header = await withRepair(region, () => readHeader(region));
  if (header) return takeOver(await CheckpointReader.open(region), { ...options, expectedEpoch: header.epoch });
  if (!options.mode) throw new PmuError('EINVAL', `region '${region.name}' holds no checkpoint log yet: pass { mode: 'overwrite' | 'append' } to format it`);
  const formatted = await formatRegion(region, options.mode);
  const writer = new CheckpointWriter(region, { header: formatted, epoch: formatted.epoch, next: { position: 0, sequence: 1 }, clearedPosition: 0, heartbeat: 0n, durable: 0 }, options);
  return { writer, reader: await CheckpointReader.open(region), records: [], epoch: writer.epoch };
}

async function takeOver(reader: CheckpointReader, options: TakeoverOptions): Promise<Takeover> {
  const { region, logHeader: header } = reader;
  const expected = options.expectedEpoch ?? reader.epoch;
  const epoch = expected + 1n;
  const expectedWord = encodeWord('epoch', expected);
  const previous = await region.compareAndSwap(EPOCH_OFFSET, expectedWord, encodeWord('epoch', epoch));
  if (previous !== expectedWord) {
    await withRepair(region, () => readCheckedWord(region, 'epoch', EPOCH_OFFSET)); // a damaged epoch is ECORRUPT, not a lost race
    throw new PmuError('ETAKEN', `takeover of region '${region.name}' lost: the epoch is no longer the ${expected} this reader followed; another writer took over`);
  }
  reader.adoptEpoch(epoch);
  const heartbeat = (await readHeader(region))?.heartbeat ?? 0n;
  const writerOptions = { ...options, mode: options.mode ?? header.mode };
  if (header.mode === 'overwrite') {
    const checkpoint = await reader.latest();
    await region.flush(0, checkpoint ? slotOffset(header, checkpoint.sequence % 2) + recordBytes(checkpoint.state.length) : HEADER_BYTES);
    const next = { position: 0, sequence: (checkpoint?.sequence ?? 0) + 1 };
    const writer = new CheckpointWriter(region, { header, epoch, next, clearedPosition: 0, heartbeat, durable: next.sequence - 1 }, writerOptions);
    return { writer, reader, records: [], checkpoint, epoch };
  }
  const rest = await reader.readRest();
  await region.flush(0, rest.flushEnd);
  const writer = new CheckpointWriter(region, { header, epoch, next: rest.next, clearedPosition: rest.clearedPosition, heartbeat, durable: rest.next.sequence - 1 }, writerOptions);
  return { writer, reader, records: rest.records, stop: rest.stop, epoch };
}
