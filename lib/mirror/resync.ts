/**
 * Bringing a replica back in sync while writes go on, and making a mirrored region.
 *
 * Resync of PMU J for region R:
 * 1. J enters the syncing set (etcd transaction). From then on writers send every write to J
 *    too, always after the in-sync replicas have it (J's first chunk, with the fence word, is
 *    copied just before, so fenced writes are not refused by a J that missed a takeover).
 * 2. Wait until every registered writer has published that epoch, or its lease ended (a writer
 *    acks nothing past its lease): no write from then on can miss J.
 * 3. Copy the region from the read replica L in chunks: read L, write J, read L again; equal
 *    means no write to that chunk landed on L between the two reads, so any write J was sent
 *    before our write of the chunk is in what we wrote, and any sent after lands on J after it.
 * 4. Flush J, then one transaction that moves J from syncing to in sync, comparing the whole
 *    configuration of step 1: any change meanwhile (L left, J was dropped by a failed write)
 *    makes it fail, and the resync starts over. J dying at any point leaves it out of sync.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteRegion } from '../client/remote-region';
import { PmuError } from '../unit/errors';
import { RegionConfig, withInSync, withSyncing } from './config';
import { MirrorDirectory, Progress } from './directory';
import { PmuPool } from './pool';

const FLUSH_PIECE_BYTES = 8 * 1024 * 1024;

export interface ResyncOptions {
  chunkBytes?: number;
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
  for (const pmu of config.replicas) await ensureRegion(pool, pmu, name, size, true);
  await directory.recordRegion(config);
  return config;
}

/** Opens region `name` on `pmu`, creating it if missing; `fresh` refuses one that exists already (it may hold old data). */
async function ensureRegion(pool: PmuPool, pmu: string, name: string, size: number, fresh: boolean): Promise<RemoteRegion> {
  const client = await pool.client(pmu);
  const existing = (await client.listRegions()).find((info) => info.name === name);
  if (existing) {
    if (fresh) throw new PmuError('EEXIST', `PMU '${pmu}' already holds a region '${name}': delete it there (pmu region delete ${name}) or pick another name`);
    if (existing.size !== size) throw new PmuError('EINVAL', `PMU '${pmu}' holds region '${name}' of ${existing.size} bytes, the set says ${size}: delete it there and resync`);
    return client.openRegion(name, { rights: 'rw' });
  }
  return client.createRegion(name, size);
}

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
  let config = await directory.config(name);
  if (config.inSync.includes(pmu)) return config;
  const target = await ensureRegion(pool, pmu, name, config.size, false);
  // Seed the first chunk (it holds the checkpoint epoch, the fence word) before joining: from
  // step 1 on, fenced writes reach J too, and a J that missed a takeover would refuse them.
  const seed = Math.min(chunkBytes, config.size);
  await target.write(0, await (await pool.openRegion(config.inSync[0], name)).read(0, seed), { durability: 'mapped' });
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
  // Step 3: copy from the read replica.
  const source = await pool.openRegion(syncing.inSync[0], name);
  const total = syncing.size;
  const chunks = Math.ceil(total / chunkBytes);
  let lastReport = 0;
  let next = 0;
  let copied = 0;
  // Chunks are independent (each is read, written, read again on its own), so a few go at once.
  const copyChunks = async () => {
    for (let index = next++; index < chunks; index = next++) {
      if (options.signal?.aborted) throw new PmuError('ECLOSED', `resync of '${name}' on '${pmu}' was stopped`);
      const at = index * chunkBytes;
      const length = Math.min(chunkBytes, total - at);
      let data = await source.read(at, length);
      for (let tries = 0; ; tries++) {
        await target.write(at, data, { durability: 'mapped' });
        const again = await source.read(at, length);
        if (again.equals(data)) break;
        if (tries > 50) throw new PmuError('ECONFIG', `resync of '${name}': bytes ${at}..${at + length} keep changing; starting over`);
        data = again;
      }
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
  const joined = await directory.transition(syncing, withInSync(syncing, pmu));
  if (!joined) throw new PmuError('ECONFIG', `region '${name}' changed while '${pmu}' was copied; starting over`);
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
