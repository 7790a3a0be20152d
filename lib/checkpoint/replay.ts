/**
 * Recovery for snapshot-plus-log: the state is the latest snapshot and the updates after it.
 * Everything before that snapshot is history the state no longer needs.
 */
import { LogRecord } from './format/log-scan';

export interface Replay {
  /** The latest snapshot among the records, if any. */
  snapshot?: LogRecord;
  /** The updates after it (all updates if there is no snapshot), in order. */
  updates: LogRecord[];
}

export function replayFrom(records: readonly LogRecord[]): Replay {
  let start = 0;
  let snapshot: LogRecord | undefined;
  for (let i = records.length - 1; i >= 0; i--) {
    if (records[i].type === 'snapshot') {
      snapshot = records[i];
      start = i + 1;
      break;
    }
  }
  return { snapshot, updates: records.slice(start).filter((record) => record.type === 'update') };
}
