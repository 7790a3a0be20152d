/**
 * Bringing a replica back in sync while writes go on, and making a mirrored region.
 *
 * Resync of PMU J for region R:
 * 1. J enters the syncing set (etcd transaction). From then on writers send every write to J
 *    too, always after the in-sync replicas have it (J's first chunk, with the fence word, is
 *    copied just before, so fenced writes are not refused by a J that missed a takeover).
 * 2. Wait until every registered writer has published that epoch, or its lease ended (a writer
 *    acks nothing past its lease): no write from then on can miss J.
 * 3. Copy the region from an in-sync replica L whose copy passes its own checks (trusted-source.ts;
 *    writers write every in-sync replica before J, so any of them will do) in chunks: read L, write J, read L again; equal
 *    means no write to that chunk landed on L between the two reads, so any write J was sent
 *    before our write of the chunk is in what we wrote, and any sent after lands on J after it.
 *    Before copying a chunk, compare CHECKSUMs (the CRC32C computed on each PMU, 4 bytes moved):
 *    first of L's chunk at time t1, then of J's at a later t2. Equal means J at t2 already holds
 *    the bytes L held at t1, and so every write that had reached L by t1. A write that reaches L
 *    after t1 comes from a writer that adopted the syncing configuration (step 2), so it is sent
 *    to J as well, after L, and lands on J after t1; whether before or after t2 it is not lost,
 *    and writes to one stretch reach J in the order they reached L. So equal-after-join means J
 *    ends up equal, and the chunk is skipped. A chunk whose checksums differ (a concurrent write
 *    makes a checksum describe no single moment: then they differ, or match only by the above)
 *    is split into pieces (pieceBytes) that are compared the same way, and only the pieces that
 *    differ are copied as above. The limit: two different stretches have the same CRC32C with
 *    probability 2^-32; that is the chance a differing piece is left uncopied. Scrub compares
 *    the same way and cannot catch such a pair; a checkpoint log's own record CRCs can.
 * 4. Flush J, then one transaction that moves J from syncing to in sync, comparing the whole
 *    configuration of step 1: any change meanwhile (L left, J was dropped by a failed write)
 *    makes it fail, and the resync starts over. J dying at any point leaves it out of sync.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteRegion } from '../client/remote-region';
import { PmuError } from '../unit/errors';
import { MAX_CHECKSUM_BYTES } from '../wire/protocol';
import { trustedSource } from './trusted-source';
import { RegionConfig, withInSync, withSyncing } from './config';
import { MirrorDirectory, Progress } from './directory';
import { pacer } from './pacer';
import { resetMembership, stampAll, stampJoining } from './membership';
import { PmuPool } from './pool';

const FLUSH_PIECE_BYTES = 8 * 1024 * 1024;

/** What a resync moved, for benchmarks and tests (filled in as it goes). */
export interface ResyncTally {
  /** Data bytes read from the source and written to the target. */
  bytesRead: number;
  bytesWritten: number;
  /** CHECKSUM requests sent (to either replica), and bytes skipped because they matched. */
  checksums: number;
  bytesSkipped: number;
}

export interface ResyncOptions {
  chunkBytes?: number;
  /** The unit a differing chunk is split into before copying; default 64 KiB. */
  pieceBytes?: number;
  /** Compare checksums first and skip what matches (default true; false copies everything, as before). */
  checksums?: boolean;
  /** Counts what this resync moves. */
  tally?: ResyncTally;
  /**
   * Data bytes copied per second, all chunks together (what a checksum finds equal does not
   * count): a resync at full speed takes the source's and the target's disks and event loops
   * from the writers for its whole length. Default: no limit (the set runs on fewer copies
   * until the resync is done).
   */
  bytesPerSecond?: number;
  /** Chunks copied at once; default 4. */
  parallel?: number;
  /** Called after each chunk. */
  onProgress?: (progress: Progress) => void;
  /** Longest wait for writers to adopt the syncing configuration; default 10 s. */
  writerWaitMs?: number;
  /** Attempts when the configuration changes under the copy; default 5. */
  attempts?: number;
  signal?: AbortSignal;
}

/** Creates region `name` (zeroed) on the PMUs placement picks, then records it with every replica in sync. */
export async function createMirroredRegion(directory: MirrorDirectory, pool: PmuPool, name: string, size: number, copies?: number): Promise<RegionConfig> {
  const config = await directory.planRegion(name, size, copies);
  for (const pmu of config.replicas) {
    await ensureRegion(pool, pmu, name, size, true);
    // A membership record an earlier region of this name left would make epoch 1 look old.
    await resetMembership(pool, pmu, name);
  }
  await directory.recordRegion(config);
  await stampAll(pool, config); // best effort: a replica not stamped is still listed in the others' stamps
  return config;
}

/** Opens region `name` on `pmu`, creating it if missing; `fresh` refuses one that exists already (it may hold old data). */
async function ensureRegion(pool: PmuPool, pmu: string, name: string, size: number, fresh: boolean): Promise<RemoteRegion> {
  const client = await pool.client(pmu);
  const existing = (await client.listRegions()).find((info) => info.name === name);
  if (existing) {
    // Never advise deleting it: after etcd lost its state, that region may be the only copy.
    if (fresh) throw new PmuError('EEXIST', `PMU '${pmu}' already holds a region '${name}' (${existing.size} bytes) that the set does not record: it may be the only copy of its data (did etcd lose the set's state?). To make it the mirrored region again, with that copy as the one others resync from: pmu cluster create ${name} --adopt ${pmu}; or pick another name`);
    if (existing.size !== size) throw new PmuError('EINVAL', `PMU '${pmu}' holds region '${name}' of ${existing.size} bytes, the set says ${size}: it was left as it is and is not resynced. Keep it until you know it holds nothing the in-sync replicas lack (pmu read it there); then move the region to another PMU (pmu cluster remove ${pmu}) or free the name on ${pmu}, and its agent resyncs it`);
    return client.openRegion(name, { rights: 'rw' });
  }
  return client.createRegion(name, size);
}

/** What is copied before joining `syncing`: the page holding the fence word (the checkpoint header). */
const SEED_BYTES = 4096;

/** Brings `pmu` in sync for region `name`. Resolves with the configuration it joined. */
export async function resync(directory: MirrorDirectory, pool: PmuPool, name: string, pmu: string, options: ResyncOptions = {}): Promise<RegionConfig> {
  const attempts = options.attempts ?? 5;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const joined = await resyncOnce(directory, pool, name, pmu, options);
      await directory.setProgress(name, pmu, undefined).catch(() => undefined);
      return joined;
    } catch (error) {
      lastError = error;
      if (!(error instanceof PmuError) || error.code !== 'ECONFIG') throw error;
    }
  }
  throw lastError;
}

async function resyncOnce(directory: MirrorDirectory, pool: PmuPool, name: string, pmu: string, options: ResyncOptions): Promise<RegionConfig> {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const rate = options.bytesPerSecond;
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) throw new PmuError('EINVAL', `resync bytesPerSecond must be a positive number, got ${rate}`);
  let config = await directory.config(name);
  if (config.inSync.includes(pmu)) return config;
  const target = await ensureRegion(pool, pmu, name, config.size, false);
  // Seed the first chunk (it holds the checkpoint epoch, the fence word) before joining: from
  // step 1 on, fenced writes reach J too, and a J that missed a takeover would refuse them.
  // Only the header page, from a copy that passes its checks: the copy proper comes after the join.
  const seed = Math.min(SEED_BYTES, config.size);
  await target.write(0, await (await pool.openRegion(await trustedSource(directory, pool, config), name)).read(0, seed), { durability: 'mapped' });
  // Step 1: join the syncing set.
  let syncing: RegionConfig | undefined;
  while (!syncing) {
    syncing = await directory.transition(config, withSyncing(config, pmu));
    if (!syncing) {
      config = await directory.config(name);
      if (config.inSync.includes(pmu)) return config;
    }
  }
  // Step 2: every writer writes to us from now on.
  await waitForWriters(directory, name, syncing.epoch, options.writerWaitMs ?? 10_000);
  // Step 3: copy from an in-sync replica whose copy passes its own checks (trusted-source.ts).
  const source = await pool.openRegion(await trustedSource(directory, pool, syncing), name);
  const total = syncing.size;
  const chunks = Math.ceil(total / chunkBytes);
  let lastReport = 0;
  let next = 0;
  let copied = 0;
  const tally = options.tally ?? { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
  const pieceBytes = Math.min(options.pieceBytes ?? 64 * 1024, chunkBytes);
  // A PMU without CHECKSUM (an older server: EPROTO) turns the comparison off for this resync.
  let compare = options.checksums ?? true;
  /** True when J's [at, at + length) already equals L's (see step 3 in the header). */
  const matches = async (at: number, length: number): Promise<boolean> => {
    if (!compare || length > MAX_CHECKSUM_BYTES) return false;
    try {
      const theirs = await source.checksum(at, length); // t1: L first
      const ours = await target.checksum(at, length); // t2: then J
      tally.checksums += 2;
      return theirs === ours;
    } catch (error) {
      if (error instanceof PmuError && error.code === 'EPROTO') {
        compare = false;
        return false;
      }
      throw error;
    }
  };
  const pace = rate === undefined ? undefined : pacer(rate, options.signal);
  const copy = async (at: number, length: number) => {
    await pace?.(length);
    let data = await source.read(at, length);
    tally.bytesRead += length;
    for (let tries = 0; ; tries++) {
      await target.write(at, data, { durability: 'mapped' });
      tally.bytesWritten += length;
      const again = await source.read(at, length);
      tally.bytesRead += length;
      if (again.equals(data)) break;
      if (tries > 50) throw new PmuError('ECONFIG', `resync of '${name}': bytes ${at}..${at + length} keep changing; starting over`);
      data = again;
    }
  };
  const syncChunk = async (at: number, length: number) => {
    if (await matches(at, length)) {
      tally.bytesSkipped += length;
      return;
    }
    if (!compare || length <= pieceBytes) return copy(at, length);
    for (let piece = at; piece < at + length; piece += pieceBytes) {
      const pieceLength = Math.min(pieceBytes, at + length - piece);
      if (await matches(piece, pieceLength)) tally.bytesSkipped += pieceLength;
      else await copy(piece, pieceLength);
    }
  };
  // Chunks are independent (each is compared, or read, written, read again on its own), so a few go at once.
  const copyChunks = async () => {
    for (let index = next++; index < chunks; index = next++) {
      if (options.signal?.aborted) throw new PmuError('ECLOSED', `resync of '${name}' on '${pmu}' was stopped`);
      const at = index * chunkBytes;
      const length = Math.min(chunkBytes, total - at);
      await syncChunk(at, length);
      copied += length;
      const progress = { copied, total, at: new Date().toISOString() };
      options.onProgress?.(progress);
      if (copied === total || Date.now() - lastReport > 250) {
        lastReport = Date.now();
        await directory.setProgress(name, pmu, progress).catch(() => undefined);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.parallel ?? 4, chunks) }, copyChunks));
  // Step 4: everything on J's disk, then join.
  // In pieces: one flush of a large region could outlast the request deadline.
  for (let at = 0; at < total; at += FLUSH_PIECE_BYTES) await target.flush(at, Math.min(FLUSH_PIECE_BYTES, total - at));
  // J records that it joins at the next epoch before the transition (membership.ts): a writer
  // that adopts the new configuration before the stamps below land still vouches for J.
  const inSync = withInSync(syncing, pmu);
  await stampJoining(pool, pmu, name, inSync.epoch);
  const joined = await directory.transition(syncing, inSync);
  if (!joined) {
    await stampJoining(pool, pmu, name, 0).catch(() => undefined);
    throw new PmuError('ECONFIG', `region '${name}' changed while '${pmu}' was copied; starting over`);
  }
  await stampAll(pool, joined); // best effort: J's joining stamp vouches for it meanwhile
  return joined;
}

/** Waits until every registered writer of `name` publishes `epoch` or later, or its lease ends. */
export async function waitForWriters(directory: MirrorDirectory, name: string, epoch: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const behind = [...(await directory.clientEpochs(name)).entries()].filter(([, seen]) => seen < epoch);
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new PmuError('ETIMEDOUT', `writers ${behind.map(([id]) => id).join(', ')} of region '${name}' did not adopt configuration ${epoch} within ${timeoutMs} ms and still hold their leases`);
    await sleep(10);
  }
}
