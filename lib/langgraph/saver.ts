/**
 * PmuSaver: a LangGraph checkpointer whose store is a pmu region (embedded or remote).
 *
 * Every operation is one record in an append-mode checkpoint log (lib/checkpoint), so a `put`
 * resolves only once its record is persisted at the durability chosen ('flushed' by default).
 * The index (SaverState) is applied when the record is placed, in log order, so the in-memory
 * state is always exactly "the log so far"; reads of a thread first wait for that thread's
 * records in flight, so they never return what is not yet persisted.
 *
 * A step costs what changed: one blob per channel in `newVersions`, the checkpoint without its
 * channel values, the metadata. When the log since the last snapshot outgrows the snapshot
 * (or an eighth of the ring), the saver appends a snapshot of the live state and clears
 * everything before it, so the ring holds the state plus a bounded tail.
 *
 * Failure is final for a saver: if a record could not be persisted (EFENCED after a takeover,
 * EIO, a ring that stays full), every later call fails with that error. Reopen with
 * PmuSaver.open() to recover from the log. A live state too large to snapshot is not a failure:
 * put and putWrites fail with EFULL until deleteThread makes room; reads and deletes go on.
 */
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { RunnableConfig } from '@langchain/core/runnables';
import {
  BaseCheckpointSaver,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointPendingWrite,
  CheckpointTuple,
  ChannelVersions,
  compareWritesSortKeys,
  DeltaChannelHistory,
  getCheckpointId,
  maxChannelVersion,
  PendingWrite,
  TASKS,
  WRITES_IDX_MAP,
  writesSortKey,
} from '@langchain/langgraph-checkpoint';
import { isPmuError, PmuError } from '../unit/errors.js';
import { Region } from '../unit/region.js';
import { CheckpointReader, CheckpointWriter, openPrimary, recordBytes } from '../checkpoint/index.js';
import { BlobEntry, CheckpointEntry, encodeEntries, Entry, sizeHint, WriteEntry } from './entries.js';
import { blobKey, Namespace, SaverState, StoredCheckpoint } from './state.js';
import { checkNamespace, checkId, checkThreadId, optionalId } from './ids.js';
import { PmuSaverOptions, writerOptions } from './options.js';
import { replay, SaverStart } from './replay.js';
import { standby, StandbyOptions } from './standby.js';

/** A record may use at most this share of the ring, so a compaction always has room. */
const MAX_RECORD_SHARE = 4;
/** Compact at the latest once the log since the snapshot reaches capacity / this (see compactAfter). */
const COMPACT_SHARE = 8;
/** The live state may fill at most this share of the ring (two snapshots and the log between them must fit). */
const MAX_STATE_SHARE = 0.4;
/** Longest run of puts without a turn of the event loop. */
const YIELD_EVERY_MS = 5;

export class PmuSaver extends BaseCheckpointSaver {
  private readonly writer: CheckpointWriter;
  private readonly reader: CheckpointReader;
  private state: SaverState;
  private readonly capacity: number;
  private logBytes: number;
  private snapshotBytes: number;
  private compacting: Promise<void> | undefined;
  private failure: unknown;
  /** Set while the live state is too large to snapshot: writes that add state are refused, deletes are not. */
  private stateTooBig: PmuError | undefined;
  private closed = false;
  /** Per thread, the record placed last: it settles after every earlier record (acks are in order). */
  private readonly inFlight = new Map<string, Promise<void>>();
  private lastPlaced: Promise<void> = Promise.resolve();
  private lastYield = performance.now();

  /**
   * Opens the saver on `region`: formats a blank region as an append log, or takes over an
   * existing one (fencing whichever process wrote it) and rebuilds the index from it.
   */
  static async open(region: Region, options: PmuSaverOptions = {}): Promise<PmuSaver> {
    const took = await openPrimary(region, writerOptions(options));
    try {
      return new PmuSaver(region, { writer: took.writer, reader: took.reader, ...replay(took.records, region.name) }, options);
    } catch (error) {
      await took.writer.close();
      throw error;
    }
  }

  /**
   * Stands by for the primary saver writing `region` (through a PMU server): follows its log,
   * and once the primary is gone (lease, or the server reports its connection dropped) fences
   * it and resolves with a saver that continues every thread where the primary left it.
   */
  static async standby(region: Region, options: StandbyOptions = {}): Promise<PmuSaver> {
    const start = await standby(region, options);
    // No start: the primary cleared past what the standby had read; recover from the cursor.
    return start ? new PmuSaver(region, start, options) : PmuSaver.open(region, options);
  }

  /**
   * Private: a saver is made only by PmuSaver.open() or PmuSaver.standby(), which format or
   * replay the log first. (`new PmuSaver(region)` would have no writer, reader or index.)
   */
  private constructor(
    readonly region: Region,
    start: SaverStart,
    options: PmuSaverOptions = {},
  ) {
    super(options.serde);
    this.writer = start.writer;
    this.reader = start.reader;
    this.state = start.state;
    this.capacity = this.reader.capacity;
    this.logBytes = start.logBytes;
    this.snapshotBytes = start.snapshotBytes;
  }

  /** True once the PMU refused this saver's writer because a standby took over. */
  get fenced(): boolean {
    return this.writer.fenced;
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    this.assertUsable();
    const configurable = config.configurable ?? {};
    if (configurable.thread_id === undefined || configurable.thread_id === null) return undefined;
    const thread = checkThreadId(configurable.thread_id);
    const ns = checkNamespace(configurable.checkpoint_ns);
    await this.settled(thread);
    const space = this.state.namespace(thread, ns);
    if (!space) return undefined;
    const id = getCheckpointId(config) || space.latestId;
    const stored = id === undefined ? undefined : space.checkpoints.get(id);
    if (!stored) return undefined;
    return this.tuple(thread, ns, space, stored);
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    this.assertUsable();
    const { before, filter } = options;
    let limit = options.limit;
    const configurable = config.configurable ?? {};
    const thread = configurable.thread_id === undefined || configurable.thread_id === null || configurable.thread_id === '' ? undefined : checkThreadId(configurable.thread_id);
    const ns = configurable.checkpoint_ns === undefined || configurable.checkpoint_ns === null ? undefined : checkNamespace(configurable.checkpoint_ns);
    const onlyId = optionalId('checkpoint_id', configurable.checkpoint_id);
    const beforeId = optionalId('before.checkpoint_id', before?.configurable?.checkpoint_id);
    const conditions = Object.entries(filter ?? {}).filter(([, value]) => value !== undefined);
    await (thread === undefined ? this.settledAll() : this.settled(thread));

    // Newest first across every matching thread and namespace, as ORDER BY checkpoint_id DESC.
    const matches: Array<{ thread: string; ns: string; space: Namespace; stored: StoredCheckpoint }> = [];
    const threads = thread === undefined ? [...this.state.threads.keys()] : [thread];
    for (const threadId of threads) {
      for (const [spaceNs, space] of this.state.threads.get(threadId) ?? []) {
        if (ns !== undefined && spaceNs !== ns) continue;
        for (let i = space.ids.length - 1; i >= 0; i--) {
          const id = space.ids[i];
          if (onlyId !== undefined && id !== onlyId) continue;
          if (beforeId !== undefined && id >= beforeId) continue;
          matches.push({ thread: threadId, ns: spaceNs, space, stored: space.checkpoints.get(id) as StoredCheckpoint });
        }
      }
    }
    if (threads.length > 1 || ns === undefined) matches.sort((a, b) => (a.stored.id < b.stored.id ? 1 : a.stored.id > b.stored.id ? -1 : 0));
    for (const match of matches) {
      if (limit !== undefined && limit <= 0) return;
      if (conditions.length > 0) {
        const metadata = await this.serde.loadsTyped(match.stored.metadataType, match.stored.metadata);
        if (!conditions.every(([key, value]) => isDeepStrictEqual(metadata?.[key], value))) continue;
      }
      if (limit !== undefined) limit--;
      yield await this.tuple(match.thread, match.ns, match.space, match.stored);
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    this.assertUsable();
    const configurable = config.configurable;
    if (!configurable) throw new PmuError('EINVAL', 'put needs config.configurable with a thread_id, e.g. { configurable: { thread_id: "1" } }');
    const thread = checkThreadId(configurable.thread_id);
    const ns = checkNamespace(configurable.checkpoint_ns);
    const parentId = optionalId('checkpoint_id', configurable.checkpoint_id) ?? '';
    const id = checkId('checkpoint.id', checkpoint?.id);
    const { channel_values: values, ...rest } = checkpoint;
    const channels = Object.entries(newVersions ?? {}).filter(([channel]) => values && Object.prototype.hasOwnProperty.call(values, channel) && (values as Record<string, unknown>)[channel] !== undefined);
    // Everything is serialized before anything is placed: a value the serializer refuses fails this call, never the log.
    const serialized = await Promise.all([this.serde.dumpsTyped(rest), this.serde.dumpsTyped(metadata), ...channels.map(([channel]) => this.serde.dumpsTyped((values as Record<string, unknown>)[channel]))]);
    const entries: Entry[] = [];
    for (let i = 0; i < channels.length; i++) {
      const [blobType, value] = serialized[i + 2];
      entries.push({ kind: 'blob', thread, ns, channel: channels[i][0], version: channels[i][1], type: blobType, value } satisfies BlobEntry);
    }
    const [[type, checkpointBytes], [metadataType, metadataBytes]] = serialized;
    entries.push({ kind: 'checkpoint', thread, ns, id, parentId, type, checkpoint: checkpointBytes, metadataType, metadata: metadataBytes } satisfies CheckpointEntry);
    await this.commit(thread, entries);
    return { configurable: { thread_id: thread, checkpoint_ns: ns, checkpoint_id: id } };
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    this.assertUsable();
    const configurable = config.configurable ?? {};
    const thread = checkThreadId(configurable.thread_id);
    const ns = checkNamespace(configurable.checkpoint_ns);
    if (configurable.checkpoint_id === undefined || configurable.checkpoint_id === null || configurable.checkpoint_id === '') {
      throw new PmuError('EINVAL', 'putWrites needs config.configurable.checkpoint_id: pass the config put() returned');
    }
    const checkpointId = checkId('checkpoint_id', configurable.checkpoint_id);
    const task = checkId('taskId', taskId);
    const path = taskPath === undefined ? '' : checkId('taskPath', taskPath, true);
    if (!Array.isArray(writes)) throw new PmuError('EINVAL', 'writes must be an array of [channel, value] pairs');
    const entries = await Promise.all(
      writes.map(async ([channel, value], index): Promise<WriteEntry> => {
        const [type, bytes] = await this.serde.dumpsTyped(value);
        return { kind: 'write', thread, ns, checkpointId, taskId: task, taskPath: path, idx: WRITES_IDX_MAP[channel] ?? index, channel: checkId('channel', channel), type, value: bytes };
      }),
    );
    if (entries.length > 0) await this.commit(thread, entries);
  }

  async deleteThread(threadId: string): Promise<void> {
    this.assertUsable();
    const thread = checkThreadId(threadId);
    if (!this.state.threads.has(thread)) return;
    await this.commit(thread, [{ kind: 'delete', thread }], false);
  }

  /**
   * The per-channel history a DeltaChannel is rebuilt from, walked over the index directly:
   * each ancestor's checkpoint is parsed for its channel versions once, and only the blobs and
   * writes of the requested channels are deserialized.
   */
  override async getDeltaChannelHistory(options: { config: RunnableConfig; channels: string[] }): Promise<Record<string, DeltaChannelHistory>> {
    this.assertUsable();
    const { config, channels } = options;
    if (channels.length === 0) return {};
    const configurable = config.configurable ?? {};
    const result: Record<string, DeltaChannelHistory> = {};
    const collected: Record<string, CheckpointPendingWrite[]> = {};
    for (const channel of channels) collected[channel] = [];
    const seeds = new Map<string, unknown>();
    if (configurable.thread_id !== undefined && configurable.thread_id !== null) {
      const thread = checkThreadId(configurable.thread_id);
      const ns = checkNamespace(configurable.checkpoint_ns);
      await this.settled(thread);
      const space = this.state.namespace(thread, ns);
      const targetId = getCheckpointId(config) || space?.latestId;
      let current = targetId === undefined ? undefined : space?.checkpoints.get(targetId)?.parentId;
      const remaining = new Set(channels);
      while (space && current && remaining.size > 0) {
        const stored = space.checkpoints.get(current);
        if (!stored) break;
        const versions = await this.versionsOf(stored);
        // Writes stored on an ancestor produced its child: all of them are on the path.
        const ordered = orderedWrites(space, stored.id);
        for (let i = ordered.length - 1; i >= 0; i--) {
          const write = ordered[i];
          if (remaining.has(write.channel)) collected[write.channel].push([write.taskId, write.channel, await this.serde.loadsTyped(write.type, write.value)]);
        }
        for (const channel of [...remaining]) {
          const version = versions[channel];
          const blob = version === undefined ? undefined : space.blobs.get(blobKey(channel, version));
          if (blob) {
            seeds.set(channel, await this.serde.loadsTyped(blob.type, blob.value));
            remaining.delete(channel);
          }
        }
        current = stored.parentId;
      }
    }
    for (const channel of channels) {
      const history: DeltaChannelHistory = { writes: collected[channel].reverse() };
      if (seeds.has(channel)) history.seed = seeds.get(channel);
      result[channel] = history;
    }
    return result;
  }

  /** Resolves once everything handed to the saver so far is persisted. */
  async flush(): Promise<void> {
    await this.settledAll();
    this.assertUsable();
  }

  /** Waits for records in flight and a compaction in progress, then stops the writer. The log stays. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settledAll();
    await this.compacting?.catch(() => undefined);
    await this.writer.close();
  }

  /**
   * Places one record and applies its entries to the index at once (so the index is exactly the
   * log, in log order), then resolves once the record is persisted.
   */
  private async commit(thread: string, entries: Entry[], grows = true): Promise<void> {
    if (grows && this.stateTooBig) throw this.stateTooBig;
    const payload = encodeEntries(entries, sizeHint(entries));
    const bytes = recordBytes(payload.length);
    if (bytes > this.capacity / MAX_RECORD_SHARE) {
      throw new PmuError('ETOOBIG', `a ${payload.length}-byte checkpoint record is more than 1/${MAX_RECORD_SHARE} of the ${this.capacity}-byte log of region '${this.region.name}': give the saver a larger region`);
    }
    // Backpressure: while a compaction is still clearing, a log that keeps growing would fill the ring.
    if (this.compacting && this.logBytes > 2 * this.compactAfter()) await this.compacting;
    this.assertUsable();
    const appended = this.writer.append(payload);
    for (const entry of entries) this.state.apply(entry);
    this.logBytes += bytes;
    const persisted: Promise<void> = appended.then(
      () => {
        if (this.inFlight.get(thread) === persisted) this.inFlight.delete(thread);
      },
      (error) => {
        this.fail(error);
        if (this.inFlight.get(thread) === persisted) this.inFlight.delete(thread);
        throw this.failure;
      },
    );
    persisted.catch(() => undefined);
    this.inFlight.set(thread, persisted);
    this.lastPlaced = persisted;
    this.maybeCompact();
    // A 'mapped' append resolves without a trip through the event loop, so a caller awaiting puts
    // in a loop would starve timers and I/O: the heartbeat a standby's lease watches, and the
    // flush a compaction's clear waits for. Yield once every few milliseconds.
    const now = performance.now();
    if (now - this.lastYield > YIELD_EVERY_MS) {
      this.lastYield = now;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await persisted;
  }

  /**
   * When to compact: once the log since the snapshot is about as large as the snapshot (so
   * compaction costs at most as much again as the log itself), but early enough that the old
   * snapshot, the log and the new snapshot fit in the ring together.
   */
  private compactAfter(): number {
    const capacity = this.capacity;
    const state = this.snapshotBytes;
    return Math.max(capacity / 32, Math.min(Math.max(state, capacity / COMPACT_SHARE), (capacity - 2 * state) / 2));
  }

  private maybeCompact(): void {
    if (this.compacting || this.failure !== undefined) return;
    if (this.logBytes < this.compactAfter()) return;
    this.compacting = this.compact()
      .catch((error) => this.fail(error))
      .finally(() => {
        this.compacting = undefined;
      });
  }

  /**
   * Appends a snapshot of the live state (placed now, so it covers exactly the records before
   * it), then clears everything before it.
   */
  private async compact(): Promise<void> {
    const payload = encodeEntries(this.state.entries(), this.snapshotBytes + this.logBytes);
    const bytes = recordBytes(payload.length);
    if (bytes > this.capacity * MAX_STATE_SHARE) {
      // Not a failure: nothing was placed. Refuse what adds state until deletes make room (the next compaction tries again).
      this.stateTooBig = new PmuError('EFULL', `the live checkpoint state (${payload.length} bytes) is more than ${MAX_STATE_SHARE * 100}% of the ${this.capacity}-byte log of region '${this.region.name}': delete finished threads (deleteThread), or move the saver to a larger region`);
      return;
    }
    this.stateTooBig = undefined;
    const snapshot = this.writer.placeSnapshot(payload);
    this.logBytes = 0;
    this.snapshotBytes = bytes;
    // The snapshot holds the state every record before it built, and this saver wrote them
    // all: clear up to it without reading the log back.
    await this.reader.clearBefore(await snapshot);
  }

  private async tuple(thread: string, ns: string, space: Namespace, stored: StoredCheckpoint): Promise<CheckpointTuple> {
    const checkpoint = (await this.serde.loadsTyped(stored.type, stored.checkpoint)) as Checkpoint;
    checkpoint.channel_versions ??= {};
    checkpoint.versions_seen ??= {};
    const values: Record<string, unknown> = {};
    for (const [channel, version] of Object.entries(checkpoint.channel_versions)) {
      const blob = space.blobs.get(blobKey(channel, version));
      if (blob) values[channel] = await this.serde.loadsTyped(blob.type, blob.value);
    }
    checkpoint.channel_values = values;
    if (checkpoint.v < 4 && stored.parentId) await this.migratePendingSends(checkpoint, space, stored.parentId);
    const pendingWrites: CheckpointPendingWrite[] = [];
    for (const write of orderedWrites(space, stored.id)) pendingWrites.push([write.taskId, write.channel, await this.serde.loadsTyped(write.type, write.value)]);
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: thread, checkpoint_ns: ns, checkpoint_id: stored.id } },
      checkpoint,
      metadata: await this.serde.loadsTyped(stored.metadataType, stored.metadata),
      pendingWrites,
    };
    if (stored.parentId) tuple.parentConfig = { configurable: { thread_id: thread, checkpoint_ns: ns, checkpoint_id: stored.parentId } };
    return tuple;
  }

  /** Checkpoints older than format 4 kept pending sends as writes on their parent. */
  private async migratePendingSends(checkpoint: Checkpoint, space: Namespace, parentId: string): Promise<void> {
    const sends = orderedWrites(space, parentId).filter((write) => write.channel === TASKS);
    if (sends.length === 0) return;
    const values = checkpoint.channel_values as Record<string, unknown>;
    values[TASKS] = await Promise.all(sends.map((write) => this.serde.loadsTyped(write.type, write.value)));
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  private async versionsOf(stored: StoredCheckpoint): Promise<Record<string, string | number>> {
    if (!stored.versions) {
      const checkpoint = (await this.serde.loadsTyped(stored.type, stored.checkpoint)) as Checkpoint;
      stored.versions = checkpoint.channel_versions ?? {};
    }
    return stored.versions;
  }

  private async settled(thread: string): Promise<void> {
    await this.inFlight.get(thread)?.catch(() => undefined);
    this.assertUsable();
  }

  private async settledAll(): Promise<void> {
    // Acks come in log order: the last record placed settles after all the others.
    await this.lastPlaced.catch(() => undefined);
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined) return;
    if (isPmuError(error, 'EFULL')) {
      this.failure = new PmuError('EFULL', `the checkpoint log of region '${this.region.name}' stayed full: ${error.message}. The live state needs a larger region (or fewer threads: deleteThread); reopen the saver on a larger region`, { cause: error });
    } else {
      this.failure = error;
    }
  }

  private assertUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new PmuError('ECLOSED', `the saver on region '${this.region.name}' is closed; open it again with PmuSaver.open()`);
  }
}

/** A checkpoint's pending writes in writesSortKey order: (task path, task id, idx). */
function orderedWrites(space: Namespace, checkpointId: string) {
  const writes = space.writes.get(checkpointId);
  if (!writes) return [];
  return [...writes.values()].sort((a, b) => compareWritesSortKeys(writesSortKey(a.taskPath, a.taskId, a.idx), writesSortKey(b.taskPath, b.taskId, b.idx)));
}
