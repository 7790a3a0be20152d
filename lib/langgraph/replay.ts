/**
 * How records become a saver's state: the latest snapshot, then the updates after it. Both the
 * opening saver (replay) and a following standby (applyRecord, record by record) use it.
 */
import { CheckpointReader, CheckpointWriter, LogRecord, recordBytes, replayFrom } from '../checkpoint/index.js';
import { decodeEntries } from './entries.js';
import { SaverState } from './state.js';

/** @internal What a saver is built from: a log taken over (or formatted) and its replayed state. */
export interface SaverStart {
  writer: CheckpointWriter;
  reader: CheckpointReader;
  state: SaverState;
  /** Bytes of log after the latest snapshot, and that snapshot's size (0: none). */
  logBytes: number;
  snapshotBytes: number;
}

/** @internal Rebuilds the index from recovered records: the latest snapshot, then the updates after it. */
export function replay(records: readonly LogRecord[], regionName: string): { state: SaverState; logBytes: number; snapshotBytes: number } {
  const state = new SaverState();
  const { snapshot, updates } = replayFrom(records);
  if (snapshot) applyRecord(state, snapshot, regionName);
  let logBytes = 0;
  for (const record of updates) {
    applyRecord(state, record, regionName);
    logBytes += recordBytes(record.payload.length);
  }
  return { state, logBytes, snapshotBytes: snapshot ? recordBytes(snapshot.payload.length) : 0 };
}

/** @internal */
export function applyRecord(state: SaverState, record: LogRecord, regionName: string): void {
  for (const entry of decodeEntries(record.payload, `region '${regionName}', record ${record.sequence}`)) state.apply(entry);
}
