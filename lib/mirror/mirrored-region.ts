/**
 * MirroredRegion: a Region whose bytes live on every in-sync replica of a PMU set, so
 * lib/checkpoint runs on it unchanged. The rules (docs/MIRROR.md argues each):
 *
 * - Write / flush: to every in-sync replica in parallel, then to the syncing ones; acked only
 *   when every in-sync replica acked at the requested durability. A replica that failed
 *   (connection, deadline, I/O) leaves the in-sync set by an etcd transaction that compares
 *   the configuration BEFORE the ack. etcd out of reach: EETCD, nothing acked (fail-stop).
 *   EFENCED from any replica: the write is refused; nobody is removed.
 * - Read: from the read replica (inSync[0]), then a linearizable read of the configuration
 *   confirms it was still in sync, so a replica outside the set never answers a read.
 * - compareAndSwap: the read replica decides; if it swapped, every other replica is swapped
 *   too (one that does not hold `expected` has diverged and leaves the set), and the outcome
 *   stands only if the configuration did not change meanwhile (ECONFIG otherwise). A swap of
 *   the fence word (the checkpoint epoch) that moved it is a takeover: the other in-sync
 *   replicas are then made byte-equal to the read replica before it returns, so what a dead
 *   writer left on some replicas and not others cannot surface later.
 * - Writers register in etcd under a lease with the configuration epoch they use; a change
 *   that adds a replica waits for all of them (resync.ts). A writer whose lease may have run
 *   out acknowledges nothing.
 */
import { compareCopies, CopiesDecision, noValidCopy } from '../checkpoint/copies';
import { tryDecodeWord } from '../checkpoint/format/checked-word';
import { EPOCH_OFFSET } from '../checkpoint/format/layout';
import { RemoteRegion, WriterEvent, WriterListener } from '../client/remote-region';
import { PmuError } from '../unit/errors';
import { Durability, Region, RegionContext, WriteOptions } from '../unit/region';
import { capabilitiesOf, checkDurability } from '../unit/durability';
import { checkBytes, checkInteger, checkRange, checkU64 } from '../unit/validate';
import { RegionConfig, withoutReplica, writeSet } from './config';
import { ClientRegistration, MirrorDirectory } from './directory';
import { checkAgainstReplicas, directoryBehind, stampAll } from './membership';
import { PmuPool } from './pool';

export interface MirroredRegionOptions {
  /** Offset of the fence word whose swap is a takeover (reconcile afterwards). Default: the checkpoint epoch. */
  fenceOffset?: number;
  /** Bytes per piece when replicas are compared after a takeover. Default 1 MiB. */
  chunkBytes?: number;
  /** Lease of this writer's registration in etcd, seconds. Default 3. */
  leaseSeconds?: number;
}

/** Errors that are the caller's, not a replica's: the same on every replica, nobody is removed. */
const CALLER_ERRORS = new Set(['EINVAL', 'EBOUNDS', 'EFRAMETOOBIG', 'EACCESS', 'EALIGN', 'EFENCED']);

function isReplicaFailure(error: unknown): boolean {
  return !(error instanceof PmuError) || !CALLER_ERRORS.has(error.code);
}

/** Which replica answered the last read (for the nemesis checker and diagnostics). */
export interface ReadWitness {
  pmu: string;
  epoch: number;
}

const CAPABILITIES = capabilitiesOf('MirroredRegion');

export class MirroredRegion implements Region {
  readonly capabilities = CAPABILITIES;
  readonly name: string;
  readonly size: number;
  private config: RegionConfig;
  private readonly replicas = new Map<string, Promise<RemoteRegion>>();
  /** Operations in flight per configuration epoch: a newer epoch is published once older ones drain. */
  private readonly inFlight = new Map<number, number>();
  private publishedEpoch = 0;
  private unwatch: (() => Promise<void>) | undefined;
  private registration: ClientRegistration | undefined;
  private renewing: Promise<void> | undefined;
  private readonly leaseSeconds: number;
  private closed = false;
  /** Set when the directory was seen going backwards: every operation fails with it (fail-stop). */
  private rolledBack: PmuError | undefined;
  private confirmBatch: { started: boolean; promise: Promise<RegionConfig> } | undefined;
  /**
   * In-sync replicas checked against every replica's membership record (membership.ts), kept
   * to those still in sync as configurations are adopted: a replica that (re)enters the
   * in-sync set is checked before anything is read from it or acked on it.
   */
  private vouched: Set<string> | undefined;
  /** Replicas this region saw out of the in-sync set, and the newest epoch it saw that at. */
  private readonly seenOut = new Map<string, number>();
  private vouching: Promise<void> | undefined;
  private readonly fenceOffset: number;
  private readonly chunkBytes: number;
  /** Counters for tests, the nemesis and status. */
  readonly stats = { writes: 0, removals: 0, reconciledBytes: 0, repairs: 0, lastRead: undefined as ReadWitness | undefined, lastDecision: undefined as CopiesDecision | undefined };

  private constructor(
    private readonly directory: MirrorDirectory,
    private readonly pool: PmuPool,
    config: RegionConfig,
    options: MirroredRegionOptions,
  ) {
    this.name = config.name;
    this.size = config.size;
    this.config = config;
    this.noteOut(config);
    this.fenceOffset = options.fenceOffset ?? EPOCH_OFFSET;
    this.chunkBytes = options.chunkBytes ?? 1 << 20;
    this.leaseSeconds = options.leaseSeconds ?? 3;
  }

  /**
   * Opens mirrored region `name`: registers this writer in etcd, reads the configuration,
   * watches it, and connects to the replicas that take writes.
   */
  static async open(directory: MirrorDirectory, pool: PmuPool, name: string, options: MirroredRegionOptions = {}): Promise<MirroredRegion> {
    const registration = await directory.registerClient(name, options.leaseSeconds ?? 3);
    let region: MirroredRegion | undefined;
    try {
      const config = await directory.config(name);
      region = new MirroredRegion(directory, pool, config, options);
      region.registration = registration;
      region.unwatch = await directory.watch(name, (next) => region!.adopt(next));
      // The watch started after the read: a change in between is caught by reading again.
      await region.readConfig();
      // The directory is believed only as far as the replicas' own records agree (membership.ts).
      await region.checkReplicas();
      await registration.publish(region.config.epoch);
      region.publishedEpoch = region.config.epoch;
      return region;
    } catch (error) {
      await registration.close();
      await region?.close();
      throw error;
    }
  }

  get context(): RegionContext {
    return { name: this.name, handle: 0, base: 0, size: this.size, rights: 'rw' };
  }

  /** The configuration this writer uses now. */
  get configuration(): RegionConfig {
    return this.config;
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    checkInteger('offset', offset);
    checkBytes('data', data);
    // The level first, as every Region does: a bad level is EINVAL wherever the range is.
    const durability = checkDurability(options?.durability, CAPABILITIES);
    checkRange(this.name, this.size, offset, data.length, 'write');
    const fence = options?.fence;
    this.stats.writes++;
    await this.everywhere('write', (region) => region.write(offset, data, { durability, fence }), fence);
  }

  async flush(offset = 0, length?: number): Promise<void> {
    checkInteger('offset', offset);
    const span = length ?? this.size - offset;
    checkInteger('length', span);
    checkRange(this.name, this.size, offset, span, 'flush');
    await this.everywhere('flush', (region) => region.flush(offset, span));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkInteger('offset', offset);
    checkInteger('length', length);
    checkRange(this.name, this.size, offset, length, 'read');
    for (let attempt = 0; ; attempt++) {
      this.checkOpen();
      if (!this.isVouched()) await this.checkReplicas();
      const config = this.config;
      const pmu = config.inSync[0];
      let data: Buffer;
      try {
        data = await (await this.replica(pmu)).read(offset, length);
      } catch (error) {
        if (!isReplicaFailure(error)) throw error;
        await this.exclude(config, [pmu], error);
        continue;
      }
      // The read counts only if the replica was still in sync after it answered.
      const current = await this.confirm();
      if (current.inSync.includes(pmu)) {
        this.stats.lastRead = { pmu, epoch: current.epoch };
        return data;
      }
      if (attempt > 10) throw new PmuError('ECONFIG', `region '${this.name}': the read replica kept leaving the in-sync set; retry`);
    }
  }

  async compareAndSwap(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): Promise<bigint> {
    checkInteger('offset', offset);
    checkU64('expected', expected);
    checkU64('value', value);
    const durability = checkDurability(options?.durability, CAPABILITIES);
    checkRange(this.name, this.size, offset, 8, 'compareAndSwap');
    const isTakeover = offset === this.fenceOffset && value !== expected;
    for (let settled = false; ; ) {
      this.checkOpen();
      if (!this.isVouched()) await this.checkReplicas();
      if (isTakeover && !settled) {
        // The read replica decides the swap and is the source of the reconcile after it: it
        // must be a copy that passes its own checks, chosen from all in-sync replicas.
        await this.trustReplicas(this.config);
        settled = true;
      }
      const config = this.config;
      const leader = config.inSync[0];
      this.begin(config.epoch);
      try {
        let previous: bigint;
        try {
          previous = await (await this.replica(leader)).compareAndSwap(offset, expected, value, { durability });
        } catch (error) {
          if (!isReplicaFailure(error)) throw error;
          await this.exclude(config, [leader], error);
          continue;
        }
        if (previous !== expected) {
          // Nothing changed anywhere: valid if the read replica was in sync when it answered.
          const current = await this.confirm();
          if (current.inSync.includes(leader)) return previous;
          continue;
        }
        // Swapped on the read replica: bring every other replica along.
        const others = [...config.inSync.slice(1), ...config.syncing];
        const results = await Promise.allSettled(others.map(async (pmu) => (await this.replica(pmu)).compareAndSwap(offset, expected, value, { durability })));
        const leaving: string[] = [];
        results.forEach((result, i) => {
          // Failed, refused or not holding `expected`: it no longer matches the read replica.
          if (result.status === 'rejected' || result.value !== expected) leaving.push(others[i]);
        });
        if (leaving.length > 0) await this.exclude(config, leaving, new PmuError('ECONFIG', 'replica failed or diverged during compare-and-swap'));
        // The swap stands if the read replica is still the read replica: any other client that
        // could decide a swap on another replica needs a configuration without it, which it
        // can only get after this confirmation (so it finds our value there already).
        const current = await this.confirm();
        const reached = new Set([...config.inSync, ...config.syncing]);
        if (current.inSync[0] !== leader || leaving.some((pmu) => current.inSync.includes(pmu)) || current.inSync.some((pmu) => !reached.has(pmu))) {
          throw new PmuError('ECONFIG', `region '${this.name}': the set's configuration changed during compare-and-swap at ${offset}; its outcome is unknown: read the word and retry`);
        }
        if (offset === this.fenceOffset && value !== expected) await this.reconcile(current);
        this.checkLease();
        return expected;
      } finally {
        this.end(config.epoch);
      }
    }
  }

  /**
   * Reports a writer of this region leaving any in-sync replica (its connection dropped or it
   * closed the region), as one PMU does: a backup's watchPrimary then learns of a dead primary
   * from the replicas' connection-drop notices, not from the heartbeat lease. The first notice
   * from any replica counts (a writer that lost only one link is fenced by the takeover that
   * follows, so acting early is safe). Resolves, once subscribed on every in-sync replica
   * that answers, with the function that unsubscribes.
   */
  async watchWriters(listener: WriterListener): Promise<() => Promise<void>> {
    if (typeof listener !== 'function') throw new PmuError('EINVAL', 'watchWriters needs a listener function');
    this.checkOpen();
    const pmus = this.config.inSync;
    const forward = (pmu: string) => (event: WriterEvent) => listener({ ...event, pmu } as WriterEvent);
    const subscribed = await Promise.allSettled(pmus.map(async (pmu) => (await this.replica(pmu)).watchWriters(forward(pmu))));
    const stops = subscribed.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    if (stops.length === 0) throw (subscribed[0] as PromiseRejectedResult).reason;
    return async () => {
      await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
    };
  }

  /** Stops watching, leaves the writer registry (changes stop waiting for us) and closes connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.unwatch?.();
    await this.renewing;
    await this.registration?.close();
    const regions = [...this.replicas.values()];
    this.replicas.clear();
    await Promise.all(regions.map((region) => region.then((r) => r.close()).catch(() => undefined)));
  }

  /**
   * One operation on every replica that takes writes: in-sync ones in parallel, then the
   * syncing ones (after, so a resync that copies from the read replica never misses it), then
   * removals, then the ack.
   */
  private async everywhere(what: string, op: (region: RemoteRegion) => Promise<void>, fence?: { offset: number; epoch: bigint }): Promise<void> {
    for (;;) {
      this.checkOpen();
      if (!this.isVouched()) await this.checkReplicas();
      const config = this.config;
      this.begin(config.epoch);
      try {
        const run = (pmu: string) => this.replica(pmu).then(op);
        const inSync = await Promise.allSettled(config.inSync.map(run));
        // A replica whose fence word fails its check refuses every writer: that is its damage, not a takeover.
        // Looked at only when a replica refused: no extra promise on a write every replica took.
        const damagedFence = inSync.some((result) => result.status === 'rejected') ? await Promise.all(config.inSync.map((pmu, i) => this.fenceWordDamaged(pmu, inSync[i], fence))) : [];
        const refused = inSync.find((result, i) => result.status === 'rejected' && !isReplicaFailure(result.reason) && !damagedFence[i]) as PromiseRejectedResult | undefined;
        if (refused) throw refused.reason;
        const failed = config.inSync.filter((_, i) => inSync[i].status === 'rejected');
        if (failed.length === config.inSync.length) throw (inSync[0] as PromiseRejectedResult).reason;
        const syncing = await Promise.allSettled(config.syncing.map(run));
        failed.push(...config.syncing.filter((_, i) => syncing[i].status === 'rejected'));
        if (failed.length > 0) {
          const firstError = [...inSync, ...syncing].find((result) => result.status === 'rejected') as PromiseRejectedResult;
          const next = await this.exclude(config, failed, firstError.reason);
          // Someone else's change may have put a replica in the set that this op did not reach: do it again.
          const reached = writeSet(config);
          if (writeSet(next).some((pmu) => !reached.includes(pmu))) continue;
        }
        this.checkLease();
        return;
      } finally {
        this.end(config.epoch);
      }
    }
  }

  /**
   * Removes `failed` from the in-sync and syncing sets by etcd transactions (re-reading after a
   * lost race) and adopts the result, which the caller checks against what it reached. Refuses
   * (with the replica's own error) to remove the last in-sync replica.
   */
  private async exclude(seen: RegionConfig, failed: string[], cause: unknown): Promise<RegionConfig> {
    // Our own connections closed (region.close(), pool.close()) are not a replica's failure:
    // a healthy replica must not leave the set for them.
    this.checkOpen();
    // The replicas left in sync record the new configuration (membership.ts) before it is
    // returned: an ack on it then survives etcd being restored to one that still lists `failed`.
    let current = seen;
    for (let attempt = 0; attempt < 100; attempt++) {
      const stillThere = failed.filter((pmu) => current.inSync.includes(pmu) || current.syncing.includes(pmu));
      if (stillThere.length === 0) {
        // Whoever removed them may have died before stamping: stamp before anything is acked on it.
        const unstamped = await stampAll(this.pool, current);
        if (unstamped.length > 0) {
          failed = unstamped;
          continue;
        }
        this.adopt(current);
        return current;
      }
      let next = current;
      for (const pmu of stillThere) {
        if (next.inSync.length === 1 && next.inSync[0] === pmu) {
          throw cause instanceof PmuError ? cause : new PmuError('EIO', `the last in-sync replica '${pmu}' of region '${this.name}' failed: ${String(cause)}`);
        }
        next = { ...withoutReplica(next, pmu), epoch: next.epoch };
      }
      next = { ...next, epoch: current.epoch + 1 };
      const done = await this.directory.transition(current, next);
      if (done) {
        this.stats.removals += stillThere.length;
        this.adopt(done);
        current = done; // the next round stamps it (or removes the replicas that cannot record it)
        continue;
      }
      current = await this.readConfig();
    }
    throw new PmuError('ECONFIG', `region '${this.name}': could not remove failed replicas ${failed.join(', ')} (configuration kept changing); nothing was acknowledged`);
  }

  /**
   * Repair after the caller's checks failed on bytes this region returned (reads that repair,
   * lib/checkpoint/repair.ts): every in-sync replica's copy is checked on its own; the ones
   * that fail leave the in-sync set (their agents resync them from one that passes) and the
   * copy that passes with the longest log becomes the read replica. True if the read replica
   * changed or a replica left, so the caller should read again.
   */
  async repair(): Promise<boolean> {
    this.checkOpen();
    const before = this.config;
    const after = await this.trustReplicas(before);
    return after.inSync[0] !== before.inSync[0] || after.inSync.length !== before.inSync.length;
  }

  /**
   * Checks the copy of every in-sync replica (lib/checkpoint/copies.ts). Damaged and unreadable
   * copies leave the in-sync set; the source (the longest valid log) is made the read replica.
   * No copy passes: ECORRUPT naming each. A region that holds no checkpoint log is unchanged.
   */
  private async trustReplicas(seen: RegionConfig): Promise<RegionConfig> {
    let config = seen;
    for (let attempt = 0; attempt < 10; attempt++) {
      const decision = await compareCopies(config.inSync.map((pmu) => ({ name: pmu, region: this.replicaView(pmu) })));
      this.stats.lastDecision = decision;
      if (decision.kind === 'raw') return config;
      if (decision.source === undefined) throw noValidCopy(this.name, decision);
      const source = config.inSync[decision.source];
      const failed = decision.copies.filter((copy) => copy.role === 'damaged' || copy.role === 'unreadable');
      if (failed.length > 0) {
        this.stats.repairs += failed.length;
        const cause = new PmuError('ECORRUPT', `region '${this.name}': ${failed.map((copy) => `replica '${copy.name}' ${copy.detail}`).join('; ')}`);
        config = await this.exclude(config, failed.map((copy) => copy.name), cause);
      }
      if (!config.inSync.includes(source)) continue; // it left meanwhile: check again
      if (config.inSync[0] === source) return config;
      const reordered = { ...config, inSync: [source, ...config.inSync.filter((pmu) => pmu !== source)], epoch: config.epoch + 1 };
      const done = await this.directory.transition(config, reordered);
      if (done) {
        this.adopt(done);
        await stampAll(this.pool, done); // best effort: the order changed, not who is in sync
        return done;
      }
      config = await this.readConfig();
    }
    throw new PmuError('ECONFIG', `region '${this.name}': the set's configuration kept changing while its replicas were checked; retry`);
  }

  /** One replica as a read-only Region, for the checks of copies.ts (connects on first read). */
  private replicaView(pmu: string): Region {
    const refuse = () => Promise.reject(new PmuError('EACCESS', `replica '${pmu}' is being checked read-only`));
    return {
      name: this.name,
      size: this.size,
      context: this.context,
      capabilities: CAPABILITIES,
      read: async (offset, length) => (await this.replica(pmu)).read(offset, length),
      write: refuse,
      flush: refuse,
      compareAndSwap: refuse,
    };
  }

  /** Replicas of `config` outside its in-sync set, at its epoch (membership.ts, vouch's seenOut). */
  private noteOut(config: RegionConfig): void {
    for (const pmu of config.replicas) if (!config.inSync.includes(pmu)) this.seenOut.set(pmu, Math.max(config.epoch, this.seenOut.get(pmu) ?? 0));
  }

  private isVouched(): boolean {
    return this.vouched !== undefined && this.config.inSync.every((pmu) => this.vouched!.has(pmu));
  }

  /**
   * Checks the in-sync replicas against every replica's membership record (membership.ts):
   * a replica remembering a newer configuration than the directory's means the directory went
   * backwards (fail-stop, EROLLBACK); an in-sync replica that no record vouches for is stale
   * whatever etcd says: it leaves the in-sync set (its agent resyncs it), or, if no in-sync
   * replica is vouched for, the region fails-stop. One check at a time, shared.
   */
  private checkReplicas(): Promise<void> {
    this.vouching ??= (async () => {
      for (let attempt = 0; attempt < 10; attempt++) {
        const { config, vouching } = await checkAgainstReplicas(this.pool, this.config, () => this.readConfig(), this.seenOut);
        const untrusted = vouching.untrusted.map((entry) => entry.pmu);
        if (vouching.rolledBack || (untrusted.length > 0 && untrusted.length === config.inSync.length)) {
          this.rolledBack ??= directoryBehind(config, vouching, this.directory.etcdUrl);
          this.closeQuietly();
          throw this.rolledBack;
        }
        const trusted = config.inSync.filter((pmu) => !untrusted.includes(pmu));
        const next = untrusted.length > 0 ? await this.exclude(config, untrusted, directoryBehind(config, vouching, this.directory.etcdUrl)) : config;
        if (untrusted.length > 0) this.stats.repairs += untrusted.length;
        if (next.epoch !== this.config.epoch) continue; // changed meanwhile: check what it is now
        this.vouched = new Set(next.inSync.filter((pmu) => trusted.includes(pmu)));
        if (this.isVouched()) return;
      }
      throw new PmuError('ECONFIG', `region '${this.name}': the set's configuration kept changing while its replicas' records were checked; retry`);
    })().finally(() => {
      this.vouching = undefined;
    });
    return this.vouching;
  }

  /** True when `pmu` refused a fenced write because its own fence word fails its check (damage there). */
  private async fenceWordDamaged(pmu: string, result: PromiseSettledResult<void>, fence: { offset: number; epoch: bigint } | undefined): Promise<boolean> {
    if (result.status !== 'rejected' || !fence || fence.offset !== this.fenceOffset || !(result.reason instanceof PmuError) || result.reason.code !== 'EFENCED') return false;
    try {
      const word = (await (await this.replica(pmu)).read(fence.offset, 8)).readBigUInt64LE(0);
      return tryDecodeWord('epoch', word) === undefined;
    } catch {
      return false;
    }
  }

  /** Makes every other in-sync replica byte-equal to the read replica (after a takeover's fence). */
  private async reconcile(config: RegionConfig): Promise<void> {
    const [leader, ...followers] = config.inSync;
    if (followers.length === 0) return;
    const source = await this.replica(leader);
    const failed = new Set<string>();
    for (let at = 0; at < this.size; at += this.chunkBytes) {
      const length = Math.min(this.chunkBytes, this.size - at);
      const wanted = await source.read(at, length);
      await Promise.all(
        followers.filter((pmu) => !failed.has(pmu)).map(async (pmu) => {
          try {
            const region = await this.replica(pmu);
            const have = await region.read(at, length);
            if (have.equals(wanted)) return;
            await region.write(at, wanted, { durability: 'flushed' });
            this.stats.reconciledBytes += length;
          } catch (error) {
            if (!isReplicaFailure(error)) throw error;
            failed.add(pmu);
          }
        }),
      );
    }
    if (failed.size > 0) await this.exclude(config, [...failed], new PmuError('ECONFIG', 'replica failed during reconcile'));
  }

  /** A linearizable read of the configuration, shared by the reads that finished before it was sent. */
  private confirm(): Promise<RegionConfig> {
    if (this.confirmBatch && !this.confirmBatch.started) return this.confirmBatch.promise;
    const batch = { started: false, promise: undefined as unknown as Promise<RegionConfig> };
    batch.promise = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      batch.started = true;
      return await this.readConfig();
    });
    this.confirmBatch = batch;
    return batch.promise;
  }

  private replica(pmu: string): Promise<RemoteRegion> {
    let region = this.replicas.get(pmu);
    if (!region) {
      region = this.pool.openRegion(pmu, this.name);
      this.replicas.set(pmu, region);
      region.catch(() => {
        if (this.replicas.get(pmu) === region) this.replicas.delete(pmu);
      });
    }
    return region;
  }

  /**
   * A configuration read linearizably from etcd. It can never be older than one this writer
   * used before the read was sent, nor the same epoch with other contents (every change is a compare-and-write that moves
   * the epoch by one): if it is, the directory went backwards (etcd restored from an older
   * copy) or was rewritten, and this region fails-stop: it acknowledges nothing more.
   */
  private async readConfig(): Promise<RegionConfig> {
    // What we held when the read was sent: the answer may predate a change adopted since.
    const held = this.config;
    return this.observe(await this.directory.config(this.name), held);
  }

  private observe(config: RegionConfig, held: RegionConfig): RegionConfig {
    if (config.epoch < held.epoch || (config.epoch === held.epoch && JSON.stringify(config) !== JSON.stringify(held))) {
      this.rolledBack ??= new PmuError(
        'EROLLBACK',
        `region '${this.name}': the directory in etcd (${this.directory.etcdUrl}) holds configuration epoch ${config.epoch} (in sync: ${config.inSync.join(', ')}), ` +
          `but this writer already used epoch ${held.epoch} (in sync: ${held.inSync.join(', ')}): etcd was restored from an older copy, or the key was rewritten. ` +
          `This region acknowledges nothing more. Restore etcd's newest data, then open the region again; do not copy replicas by hand (docs/MIRROR.md, "When the directory goes backwards")`,
      );
      this.closeQuietly();
    }
    this.checkOpen();
    this.adopt(config);
    return config;
  }

  /** Fail-stop: stop watching and writing; the error stays (checkOpen). */
  private closeQuietly(): void {
    void this.unwatch?.().catch(() => undefined);
    void this.registration?.close().catch(() => undefined);
  }

  /** Takes a newer configuration (from the watch, a read or our own change). */
  private adopt(config: RegionConfig): void {
    if (config.epoch < this.config.epoch || (config.epoch === this.config.epoch && config !== this.config && JSON.stringify(config) !== JSON.stringify(this.config))) {
      // From the watch, which may lag behind a read: only a linearizable read decides.
      if (!this.rolledBack && !this.closed) void this.confirm().catch(() => undefined);
      return;
    }
    if (config.epoch === this.config.epoch) return;
    // The next epoch keeps what was vouched for, less what left. A jump past epochs never seen
    // checks again: a replica dropped and forged back in between looks unchanged from here.
    const next = config.epoch === this.config.epoch + 1;
    this.config = config;
    this.noteOut(config);
    if (this.vouched) this.vouched = next ? new Set(config.inSync.filter((pmu) => this.vouched!.has(pmu))) : undefined;
    this.maybePublish();
  }

  private begin(epoch: number): void {
    this.inFlight.set(epoch, (this.inFlight.get(epoch) ?? 0) + 1);
  }

  private end(epoch: number): void {
    const left = (this.inFlight.get(epoch) ?? 1) - 1;
    if (left === 0) this.inFlight.delete(epoch);
    else this.inFlight.set(epoch, left);
    this.maybePublish();
  }

  /** Publishes the current epoch once no operation of an older one is in flight. */
  private maybePublish(): void {
    const epoch = this.config.epoch;
    if (epoch <= this.publishedEpoch || !this.registration || this.closed) return;
    for (const started of this.inFlight.keys()) if (started < epoch) return;
    this.publishedEpoch = epoch;
    this.registration.publish(epoch).catch(() => {
      // etcd away: the lease lapses and this writer stops acking; a resync waiting for us sees the lease end.
      if (this.publishedEpoch === epoch) this.publishedEpoch = epoch - 1;
    });
  }

  private checkLease(): void {
    // Closed under an operation in flight: that, not the lease close() just ended, is the cause.
    this.checkOpen();
    const registration = this.registration;
    if (registration && Date.now() < registration.validUntil()) return;
    this.renew();
    throw new PmuError('EETCD', `region '${this.name}': this writer's lease in etcd (${this.directory.etcdUrl}) may have expired, so the set may have changed without it; nothing was acknowledged: check etcd; the region registers again by itself once etcd answers`);
  }

  /**
   * After a lapsed lease: register again (epoch 0 first, so a change in progress waits for us),
   * read the configuration afresh, publish it. Acks stay refused until this completes.
   */
  private renew(): void {
    if (this.renewing || this.closed) return;
    const old = this.registration;
    this.registration = undefined;
    this.renewing = (async () => {
      await old?.close();
      for (let delay = 50; !this.closed; delay = Math.min(delay * 2, 1000)) {
        try {
          const registration = await this.directory.registerClient(this.name, this.leaseSeconds);
          await this.readConfig();
          await registration.publish(this.config.epoch);
          this.publishedEpoch = this.config.epoch;
          if (this.closed) await registration.close();
          else this.registration = registration;
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
        }
      }
    })().finally(() => {
      this.renewing = undefined;
    });
  }

  private checkOpen(): void {
    if (this.rolledBack) throw this.rolledBack;
    if (this.closed) throw new PmuError('ECLOSED', `mirrored region '${this.name}' was closed; open it again`);
    if (this.pool.isClosed) throw new PmuError('ECLOSED', `mirrored region '${this.name}': its PmuPool was closed; open the region again with a new PmuPool`);
  }
}
