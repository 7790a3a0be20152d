/**
 * The saver's index: everything the log holds, applied in log order, kept in memory so a read
 * is a lookup. It is rebuilt on open (latest snapshot, then the updates after it) and a
 * standby keeps its own copy current by applying the records it follows.
 *
 * Per (thread, namespace): the checkpoints by id (ids kept sorted: LangGraph's ids are uuid6,
 * ordered by time), one blob per (channel, version) as the SQL savers store them, and the
 * pending writes of each checkpoint by (task id, idx).
 */
import { ChannelVersion, Entry } from './entries.js';

export interface StoredCheckpoint {
  id: string;
  parentId: string;
  type: string;
  checkpoint: Uint8Array;
  metadataType: string;
  metadata: Uint8Array;
  /** channel_versions, parsed on first need (getDeltaChannelHistory). */
  versions?: Record<string, ChannelVersion>;
}

export interface StoredBlob {
  type: string;
  value: Uint8Array;
}

export interface StoredWrite {
  taskId: string;
  taskPath: string;
  idx: number;
  channel: string;
  type: string;
  value: Uint8Array;
}

export function blobKey(channel: string, version: ChannelVersion): string {
  // The tag keeps version 1 and version '1' apart, as a typed column would.
  return `${typeof version === 'number' ? 'n' : 's'}${String(version)}\u0000${channel}`;
}

export class Namespace {
  readonly checkpoints = new Map<string, StoredCheckpoint>();
  /** Checkpoint ids, ascending. */
  readonly ids: string[] = [];
  readonly blobs = new Map<string, StoredBlob & { channel: string; version: ChannelVersion }>();
  readonly writes = new Map<string, Map<string, StoredWrite>>();

  get latestId(): string | undefined {
    return this.ids[this.ids.length - 1];
  }

  addCheckpoint(stored: StoredCheckpoint): void {
    if (!this.checkpoints.has(stored.id)) insertSorted(this.ids, stored.id);
    this.checkpoints.set(stored.id, stored);
  }
}

export class SaverState {
  readonly threads = new Map<string, Map<string, Namespace>>();

  namespace(thread: string, ns: string): Namespace | undefined {
    return this.threads.get(thread)?.get(ns);
  }

  apply(entry: Entry): void {
    switch (entry.kind) {
      case 'checkpoint':
        this.make(entry.thread, entry.ns).addCheckpoint({
          id: entry.id,
          parentId: entry.parentId,
          type: entry.type,
          checkpoint: entry.checkpoint,
          metadataType: entry.metadataType,
          metadata: entry.metadata,
        });
        break;
      case 'blob':
        // One blob per (channel, version): a version names a value, so the first one stays.
        {
          const space = this.make(entry.thread, entry.ns);
          const key = blobKey(entry.channel, entry.version);
          if (!space.blobs.has(key)) space.blobs.set(key, { channel: entry.channel, version: entry.version, type: entry.type, value: entry.value });
        }
        break;
      case 'write': {
        const space = this.make(entry.thread, entry.ns);
        let writes = space.writes.get(entry.checkpointId);
        if (!writes) space.writes.set(entry.checkpointId, (writes = new Map()));
        const key = `${entry.taskId}\u0000${entry.idx}`;
        // A task's regular writes are kept once (a retry repeats them); special ones (errors,
        // interrupts: negative idx) are replaced, as the SQL savers do.
        if (entry.idx >= 0 && writes.has(key)) break;
        writes.set(key, { taskId: entry.taskId, taskPath: entry.taskPath, idx: entry.idx, channel: entry.channel, type: entry.type, value: entry.value });
        break;
      }
      case 'delete':
        this.threads.delete(entry.thread);
        break;
    }
  }

  /** The whole state as entries, in an order that rebuilds it: the snapshot's content. */
  *entries(): Generator<Entry> {
    for (const [thread, spaces] of this.threads) {
      for (const [ns, space] of spaces) {
        for (const blob of space.blobs.values()) yield { kind: 'blob', thread, ns, channel: blob.channel, version: blob.version, type: blob.type, value: blob.value };
        for (const id of space.ids) {
          const stored = space.checkpoints.get(id) as StoredCheckpoint;
          yield { kind: 'checkpoint', thread, ns, id, parentId: stored.parentId, type: stored.type, checkpoint: stored.checkpoint, metadataType: stored.metadataType, metadata: stored.metadata };
        }
        for (const [checkpointId, writes] of space.writes) {
          for (const write of writes.values()) yield { kind: 'write', thread, ns, checkpointId, ...write };
        }
      }
    }
  }

  private make(thread: string, ns: string): Namespace {
    let spaces = this.threads.get(thread);
    if (!spaces) this.threads.set(thread, (spaces = new Map()));
    let space = spaces.get(ns);
    if (!space) spaces.set(ns, (space = new Namespace()));
    return space;
  }
}

/** Ids mostly arrive in order (uuid6 by time), so the common case is a push. */
function insertSorted(ids: string[], id: string): void {
  if (ids.length === 0 || ids[ids.length - 1] < id) {
    ids.push(id);
    return;
  }
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (ids[mid] < id) low = mid + 1;
    else high = mid;
  }
  ids.splice(low, 0, id);
}
