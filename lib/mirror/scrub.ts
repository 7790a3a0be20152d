/**
 * Scrub: compare the in-sync replicas of a mirrored region piece by piece, by CHECKSUM (each PMU
 * computes the CRC32C of its own copy: 4 bytes cross the network per replica and chunk), and
 * report the stretches where they differ.
 *
 * A difference seen once may be a write on its way (it reaches the replicas one after
 * another), so a chunk is compared again (confirmAttempts, confirmDelayMs apart) and counts as
 * a mismatch only when every replica gives the same checksum twice in a row. A chunk that keeps
 * changing is 'busy', not a mismatch.
 *
 * Repair never writes over an in-sync copy in place: a write racing the repair could reach the
 * replica before it and be overwritten, and nothing would tell. It decides from all the
 * replicas, and validation comes before votes: a majority of copies can agree on bytes that
 * fail their own checks, and with 2 replicas there is no majority at all. The `validate` hook
 * sees the mismatches first; the default (validateCopies) checks, in a region that holds a
 * checkpoint log, every in-sync replica's copy on its own (lib/checkpoint/copies.ts: the rules
 * recovery applies, a record torn on one copy and valid on another being damage on the first).
 * The copies that fail are the ones repaired, however many replicas agree with them, even with 2
 * in sync; no copy passing is reported and nothing is touched. Where validation decides nothing
 * (raw bytes, or copies that all pass and still differ, e.g. in the stale part of a ring), the
 * majority rule does: only with 3 or more in sync, where a strict majority agree. Either way the
 * replicas repaired leave the in-sync set (one etcd transaction that compares the whole
 * configuration, as every change does), and each is then resynced from a copy that passes and
 * agrees (resync.ts: trusted-source.ts picks the source, and the checksum pass copies only the
 * pieces that differ, with its own argument against racing writes). With 2 raw replicas, or no
 * majority, the ranges are reported and nothing is guessed.
 *
 * Rate: bytesPerSecond (default 64 MiB/s) counts the bytes each replica checksums; the PMU does
 * the work on its libuv pool, off its event loop, a chunk at a time (at most 16 MiB each).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { compareCopies, noValidCopy } from '../checkpoint/copies';
import { RemoteRegion } from '../client/remote-region';
import type { ScrubCounters } from '../obs/counters';
import { capabilitiesOf } from '../unit/durability';
import { PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { MAX_CHECKSUM_BYTES } from '../wire/protocol';
import { RegionConfig } from './config';
import { leaveInSync } from './leave';
import { MirrorDirectory } from './directory';
import { pacer } from './pacer';
import { PmuPool } from './pool';
import { resync } from './resync';

export type { ScrubCounters };

export function newScrubCounters(): ScrubCounters {
  return { bytesScrubbed: 0, mismatches: 0, repairs: 0 };
}

export interface Mismatch {
  offset: number;
  length: number;
  /** Each in-sync replica's CRC32C of the range (confirmed: the same twice in a row). */
  checksums: Record<string, number>;
  /** The replicas a strict majority agrees on (3 or more in sync), else undefined: no guess. */
  majority?: string[];
}

/**
 * What the `validate` hook may answer: `repair: false` stops the repair of this region;
 * `damaged` names the in-sync replicas whose copies fail validation: those are repaired, with or
 * without a majority (validation decides). Neither: the majority rule decides.
 */
export interface ValidateVerdict {
  repair: boolean;
  detail?: string;
  damaged?: string[];
}

export interface ScrubOptions {
  /** Bytes compared per request, per replica; default 1 MiB, at most 16 MiB. */
  chunkBytes?: number;
  /** Bytes checksummed per second on each replica; default 64 MiB/s. */
  bytesPerSecond?: number;
  /** Repair what a majority outvotes (3+ in sync); default true. */
  repair?: boolean;
  confirmAttempts?: number;
  confirmDelayMs?: number;
  /** Called with the mismatches before any repair; see ValidateVerdict. Default: validateCopies (checkpoint logs). */
  validate?: (config: RegionConfig, mismatches: Mismatch[]) => Promise<ValidateVerdict | void>;
  counters?: ScrubCounters;
  signal?: AbortSignal;
}

export interface ScrubReport {
  region: string;
  /** The configuration epoch the pass compared under, and its in-sync replicas. */
  epoch: number;
  inSync: string[];
  /** Bytes of the region compared (per replica). */
  bytesScrubbed: number;
  mismatches: Mismatch[];
  /** Chunks that changed on every look (being written): compared again next pass. */
  busy: Array<{ offset: number; length: number }>;
  /** Replicas that left the in-sync set and were resynced (from a copy that passes, or the majority). */
  repaired: string[];
  /** What validation said about the replicas' copies, when it decided or refused. */
  validation?: string;
  /** Bytes the repairs' resyncs wrote. */
  repairBytes: number;
  /** Why nothing was repaired although something differs, when that is so. */
  note?: string;
  /** Replicas whose CHECKSUM failed (code: message): the pass compared without them. */
  errors: Record<string, string>;
}

/**
 * Each in-sync replica's CRC32C of [offset, offset + length) (at most 16 MiB), or its error.
 * Opens the region read-only (a reader's connection going away tells checkpoint watchers
 * nothing); `opened` keeps those regions across calls.
 */
export async function replicaChecksums(pool: PmuPool, config: RegionConfig, offset: number, length: number, opened = new Map<string, Promise<RemoteRegion>>()): Promise<Map<string, number | Error>> {
  const results = await Promise.all(
    config.inSync.map(async (pmu): Promise<[string, number | Error]> => {
      try {
        let region = opened.get(pmu);
        if (!region) {
          region = pool.client(pmu).then((client) => client.openRegion(config.name, { rights: 'r' }));
          opened.set(pmu, region);
          region.catch(() => opened.delete(pmu));
        }
        return [pmu, await (await region).checksum(offset, length)];
      } catch (error) {
        return [pmu, error instanceof Error ? error : new Error(String(error))];
      }
    }),
  );
  return new Map(results);
}

/** Replicas grouped by checksum, largest group first. */
function groups(sums: Map<string, number>): string[][] {
  const by = new Map<number, string[]>();
  for (const [pmu, sum] of sums) by.set(sum, [...(by.get(sum) ?? []), pmu]);
  return [...by.values()].sort((a, b) => b.length - a.length);
}

function sameSums(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [pmu, sum] of a) if (b.get(pmu) !== sum) return false;
  return true;
}

/** One scrub pass over region `name`. */
export async function scrubRegion(directory: MirrorDirectory, pool: PmuPool, name: string, options: ScrubOptions = {}): Promise<ScrubReport> {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHECKSUM_BYTES) throw new PmuError('EINVAL', `chunkBytes must be an integer from 1 to ${MAX_CHECKSUM_BYTES}, got ${chunkBytes}`);
  const bytesPerSecond = options.bytesPerSecond ?? 64 * 1024 * 1024;
  if (!(bytesPerSecond > 0)) throw new PmuError('EINVAL', `bytesPerSecond must be a positive number, got ${bytesPerSecond}`);
  const attempts = Math.max(2, options.confirmAttempts ?? 4);
  const counters = options.counters ?? newScrubCounters();
  const config = await directory.config(name);
  const report: ScrubReport = { region: name, epoch: config.epoch, inSync: [...config.inSync], bytesScrubbed: 0, mismatches: [], busy: [], repaired: [], repairBytes: 0, errors: {} };
  const pace = pacer(bytesPerSecond, options.signal);
  const opened = new Map<string, Promise<RemoteRegion>>();
  /** The checksums of the replicas that answer; failures go to report.errors. */
  const look = async (offset: number, length: number): Promise<Map<string, number>> => {
    const sums = new Map<string, number>();
    for (const [pmu, result] of await replicaChecksums(pool, config, offset, length, opened)) {
      if (typeof result === 'number') sums.set(pmu, result);
      else report.errors[pmu] = result instanceof PmuError ? `${result.code}: ${result.message}` : result.message;
    }
    return sums;
  };
  for (let offset = 0; offset < config.size; offset += chunkBytes) {
    if (options.signal?.aborted) throw new PmuError('ECLOSED', `scrub of '${name}' was stopped`);
    const length = Math.min(chunkBytes, config.size - offset);
    let sums = await look(offset, length);
    report.bytesScrubbed += length;
    counters.bytesScrubbed += length;
    await pace(length);
    if (groups(sums).length <= 1) continue;
    // Confirm: the same checksums twice in a row, else a write was on its way.
    let confirmed = false;
    for (let attempt = 1; attempt < attempts && !confirmed; attempt++) {
      await sleep(options.confirmDelayMs ?? 20);
      const again = await look(offset, length);
      if (groups(again).length <= 1) break;
      confirmed = sameSums(sums, again);
      sums = again;
    }
    if (groups(sums).length <= 1) continue;
    if (!confirmed) {
      report.busy.push({ offset, length });
      continue;
    }
    const [largest] = groups(sums);
    const majority = config.inSync.length >= 3 && largest.length * 2 > config.inSync.length ? largest : undefined;
    report.mismatches.push({ offset, length, checksums: Object.fromEntries(sums), majority });
    counters.mismatches++;
  }
  await Promise.all([...opened.values()].map((region) => region.then((r) => r.close()).catch(() => undefined)));
  if (report.mismatches.length > 0) await repair(directory, pool, config, report, options, counters);
  return report;
}

async function repair(directory: MirrorDirectory, pool: PmuPool, config: RegionConfig, report: ScrubReport, options: ScrubOptions, counters: ScrubCounters): Promise<void> {
  const validate = options.validate ?? ((seen: RegionConfig) => validateCopies(pool, seen));
  const verdict = (await validate(config, report.mismatches)) ?? undefined;
  if (verdict?.detail) report.validation = verdict.detail;
  if (verdict && !verdict.repair) return void (report.note = `validation refused the repair${verdict.detail ? `: ${verdict.detail}` : ''}`);
  let victims: string[];
  if (verdict?.damaged && verdict.damaged.length > 0) {
    victims = verdict.damaged.filter((pmu) => config.inSync.includes(pmu));
    if (victims.length === config.inSync.length) return void (report.note = `validation names every in-sync replica damaged: nothing repaired${verdict.detail ? `: ${verdict.detail}` : ''}`);
  } else {
    if (report.mismatches.some((m) => m.majority === undefined)) {
      report.note = config.inSync.length < 3 ? `${config.inSync.length} replicas in sync: no majority to decide which copy is right; find out (pmu inspect --verify on each) and resync the wrong one` : 'no strict majority agrees on some ranges: nothing repaired; find out which copy is right and resync the others';
      return;
    }
    victims = [...new Set(report.mismatches.flatMap((m) => config.inSync.filter((pmu) => !m.majority!.includes(pmu))))];
  }
  if (options.repair === false) return void (report.note = `repair is off: reported only (would repair ${victims.join(', ')})`);
  // Every replica repaired leaves the in-sync set in one transaction: a damaged or outvoted copy
  // never keeps serving reads, and a copy that passes (or the majority) is never touched.
  const moved = await leaveInSync(directory, pool, config, victims);
  if (!moved) return void (report.note = `region '${config.name}' changed during the scrub (configuration ${config.epoch} is gone): nothing repaired; scrub again`);
  for (const pmu of victims) {
    const tally = { bytesRead: 0, bytesWritten: 0, checksums: 0, bytesSkipped: 0 };
    await resync(directory, pool, config.name, pmu, { tally, signal: options.signal });
    report.repaired.push(pmu);
    report.repairBytes += tally.bytesWritten;
  }
  const repairs = report.mismatches.length;
  counters.repairs += repairs;
}

/**
 * The default `validate`: in a region holding a checkpoint log, each in-sync replica's copy is
 * checked on its own (compareCopies); the copies that fail are `damaged`, whatever the vote.
 * No copy passing refuses the repair (there is nothing good to resync from). Raw regions, and
 * logs whose copies all pass, decide nothing here (undefined): the majority rule applies.
 * Reads go over read-only opens of each replica, closed before it returns.
 */
export async function validateCopies(pool: PmuPool, config: RegionConfig): Promise<ValidateVerdict | undefined> {
  const opened = new Map<string, Promise<RemoteRegion>>();
  const view = (pmu: string): Region => {
    const refuse = () => Promise.reject(new PmuError('EACCESS', `replica '${pmu}' is being checked read-only`));
    const region = () => {
      let open = opened.get(pmu);
      if (!open) {
        open = pool.client(pmu).then((client) => client.openRegion(config.name, { rights: 'r' }));
        opened.set(pmu, open);
      }
      return open;
    };
    return {
      name: config.name,
      size: config.size,
      context: { name: config.name, handle: 0, base: 0, size: config.size, rights: 'r' },
      capabilities: capabilitiesOf('MirroredRegion'),
      read: async (offset, length) => (await region()).read(offset, length),
      write: refuse,
      flush: refuse,
      compareAndSwap: refuse,
    };
  };
  try {
    const decision = await compareCopies(config.inSync.map((pmu) => ({ name: pmu, region: view(pmu) })));
    if (decision.kind === 'raw') return undefined;
    if (decision.source === undefined) return { repair: false, detail: noValidCopy(config.name, decision).message };
    // A replica that did not answer is not known to be damaged: decide nothing about it now.
    const unreadable = decision.copies.filter((copy) => copy.role === 'unreadable');
    if (unreadable.length > 0) return { repair: false, detail: `${unreadable.map((copy) => `replica '${copy.name}' could not be read (${copy.detail})`).join('; ')}: scrub again` };
    const failed = decision.copies.filter((copy) => copy.role === 'damaged');
    if (failed.length === 0) return undefined;
    const source = decision.copies[decision.source].name;
    return {
      repair: true,
      damaged: failed.map((copy) => copy.name),
      detail: `${failed.map((copy) => `replica '${copy.name}' is damaged: ${copy.detail}`).join('; ')}; '${source}' passes its checks`,
    };
  } finally {
    await Promise.all([...opened.values()].map((open) => open.then((r) => r.close()).catch(() => undefined)));
  }
}

/** One pass over every region of the set (or the one named). */
export async function scrubSet(directory: MirrorDirectory, pool: PmuPool, options: ScrubOptions & { region?: string } = {}): Promise<ScrubReport[]> {
  const names = options.region ? [options.region] : (await directory.regions()).map((config) => config.name);
  const reports: ScrubReport[] = [];
  for (const name of names) reports.push(await scrubRegion(directory, pool, name, options));
  return reports;
}

export interface ScrubberOptions extends ScrubOptions {
  /** Pause between passes; default 60 s. */
  intervalMs?: number;
  onReport?: (report: ScrubReport) => void;
  onError?: (region: string, error: unknown) => void;
  /** Which regions this scrubber covers (default all): `pmu serve --join --scrub` takes those it is the read replica of, so each region has one scrubber. */
  only?: (config: RegionConfig) => boolean;
}

/**
 * A scrub pass over every region of the set, again and again, intervalMs apart. Run it on one
 * process per set (or accept that two scrubbers double the rate): a repair is an etcd
 * transaction, so two scrubbers never both apply one.
 */
export function startScrubber(directory: MirrorDirectory, pool: PmuPool, options: ScrubberOptions = {}): { stop(): Promise<void>; readonly counters: ScrubCounters } {
  const controller = new AbortController();
  const counters = options.counters ?? newScrubCounters();
  const intervalMs = options.intervalMs ?? 60_000;
  const pass = async () => {
    let configs: RegionConfig[];
    try {
      configs = await directory.regions();
    } catch {
      return; // etcd away: next pass.
    }
    for (const config of configs) {
      if (controller.signal.aborted) return;
      if (options.only && !options.only(config)) continue;
      try {
        // Not `onReport?.(await scrubRegion(...))`: without onReport that skips the pass itself.
        const report = await scrubRegion(directory, pool, config.name, { ...options, counters, signal: controller.signal });
        options.onReport?.(report);
      } catch (error) {
        if (!controller.signal.aborted) options.onError?.(config.name, error);
      }
    }
  };
  const running = (async () => {
    while (!controller.signal.aborted) {
      await pass();
      await sleep(intervalMs, undefined, { signal: controller.signal }).catch(() => undefined);
    }
  })();
  return {
    counters,
    async stop() {
      controller.abort();
      await running;
    },
  };
}
