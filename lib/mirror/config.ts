/**
 * What the PMU set's directory in etcd holds, and the pure rules over it (placement, the
 * transitions a configuration may make). No I/O here: directory.ts stores these values.
 *
 * A region's configuration is one etcd key holding one JSON value; `epoch` goes up by one on
 * every change, and every change is an etcd transaction that compares the stored value first,
 * so two writers that saw epoch E cannot both move it to E + 1.
 */
import { PmuError } from '../unit/errors';

/** One PMU of the set. */
export interface PmuEntry {
  id: string;
  /** Where clients reach it: tcp://HOST:PORT, tls://..., unix:/PATH. */
  url: string;
  /** Bytes of regions it may hold (its unit's size); placement fills the PMU with most room left. */
  capacity: number;
}

export interface RegionConfig {
  name: string;
  size: number;
  /** Every PMU that holds (or is being given) a copy, in placement order. */
  replicas: string[];
  /** Replicas that hold every acknowledged write. Reads go to inSync[0] (the read replica). */
  inSync: string[];
  /** Replicas being copied into: they receive every write, but serve no read and ack nothing. */
  syncing: string[];
  epoch: number;
}

export interface SetInfo {
  /** Copies of a new region (2 by default, 3 allowed). */
  copies: number;
  created: string;
}

const MIN_COPIES = 1;
const MAX_COPIES = 3;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkId(what: string, id: string): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new PmuError('EINVAL', `${what} must be 1-63 letters, digits, '.', '_' or '-', got ${JSON.stringify(id)}`);
  return id;
}

export function checkCopies(copies: number): number {
  if (!Number.isInteger(copies) || copies < MIN_COPIES || copies > MAX_COPIES) throw new PmuError('EINVAL', `copies must be ${MIN_COPIES} to ${MAX_COPIES}, got ${copies}`);
  return copies;
}

/** Bytes each PMU has promised to regions already. */
function usedBytes(configs: RegionConfig[]): Map<string, number> {
  const used = new Map<string, number>();
  for (const config of configs) for (const id of config.replicas) used.set(id, (used.get(id) ?? 0) + config.size);
  return used;
}

/**
 * The `copies` PMUs with the most room left that can take `size` more bytes; ties go to the
 * smaller id so placement is deterministic. Fails with ENOSPC when too few can.
 */
export function place(pmus: PmuEntry[], configs: RegionConfig[], size: number, copies: number, exclude: string[] = []): string[] {
  const used = usedBytes(configs);
  const room = pmus
    .filter((pmu) => !exclude.includes(pmu.id))
    .map((pmu) => ({ id: pmu.id, free: pmu.capacity - (used.get(pmu.id) ?? 0) }))
    .filter((candidate) => candidate.free >= size)
    .sort((a, b) => b.free - a.free || (a.id < b.id ? -1 : 1));
  if (room.length < copies) {
    throw new PmuError('ENOSPC', `a region of ${size} bytes needs ${copies} PMUs with that much room; ${room.length} of ${pmus.length} have it: add a PMU (pmu cluster add) or use fewer copies`);
  }
  return room.slice(0, copies).map((candidate) => candidate.id);
}

/** The configuration without `pmu` in the in-sync and syncing sets (it stays a replica, to be resynced). */
export function withoutReplica(config: RegionConfig, pmu: string): RegionConfig {
  const inSync = config.inSync.filter((id) => id !== pmu);
  if (inSync.length === 0) {
    throw new PmuError('EIO', `PMU '${pmu}' is the last in-sync replica of region '${config.name}': it cannot leave the in-sync set, or nothing would hold every acknowledged write`);
  }
  return { ...config, inSync, syncing: config.syncing.filter((id) => id !== pmu), epoch: config.epoch + 1 };
}

/** `pmu` starts receiving writes before its copy begins. */
export function withSyncing(config: RegionConfig, pmu: string): RegionConfig {
  if (!config.replicas.includes(pmu)) throw new PmuError('EINVAL', `PMU '${pmu}' is not a replica of region '${config.name}'`);
  if (config.inSync.includes(pmu)) throw new PmuError('EINVAL', `PMU '${pmu}' is already in sync for region '${config.name}'`);
  return { ...config, syncing: [...config.syncing.filter((id) => id !== pmu), pmu], epoch: config.epoch + 1 };
}

/** The copy of `pmu` is complete: it joins the in-sync set (at the end: the read replica does not move). */
export function withInSync(config: RegionConfig, pmu: string): RegionConfig {
  if (!config.syncing.includes(pmu)) throw new PmuError('ECONFIG', `PMU '${pmu}' is no longer syncing region '${config.name}' (a write to it failed, or it was removed): start its resync again`);
  return { ...config, inSync: [...config.inSync, pmu], syncing: config.syncing.filter((id) => id !== pmu), epoch: config.epoch + 1 };
}

/** Where writes go: in-sync replicas first (they decide the ack), then syncing ones. */
export function writeSet(config: RegionConfig): string[] {
  return [...config.inSync, ...config.syncing];
}

export function parseConfig(text: string, key: string): RegionConfig {
  let value: RegionConfig;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PmuError('ECORRUPT', `etcd key ${key} does not hold JSON; inspect it with etcdctl get ${key}`);
  }
  const ok =
    value &&
    typeof value.name === 'string' &&
    Number.isSafeInteger(value.size) &&
    Number.isSafeInteger(value.epoch) &&
    [value.replicas, value.inSync, value.syncing].every((list) => Array.isArray(list) && list.every((id) => typeof id === 'string'));
  if (!ok) throw new PmuError('ECORRUPT', `etcd key ${key} does not hold a region configuration; inspect it with etcdctl get ${key}`);
  return value;
}
