/**
 * What each replica remembers of the set, in its own unit, so that a directory that went
 * backwards (etcd restored from an older copy) or was forged (a stale replica marked in sync)
 * cannot make a stale copy the truth. Beside every mirrored region a PMU holds a small region
 * (membershipRegionName) with:
 *
 * - stamps: the configurations this replica was in sync under, {epoch, inSync}, written
 *   'flushed' after each change that left it in sync; a replica that is dropped stops being
 *   stamped, so the in-sync ones remember it left. A stamp is a slot of a ring of eight,
 *   chosen by epoch, with its own CRC32C: the newest valid slot is what the replica remembers
 *   (a torn or damaged slot is ignored, so the record can lose a step, never invent one).
 * - joining: the epoch at which a resync is about to make this replica in sync, written
 *   before that etcd transaction (and cleared if it fails), so that a writer that adopts the
 *   new configuration before the stamps land does not take the newcomer for a stale copy.
 *
 * The rules over the records (vouch) are pure: directory rolled back when a replica remembers
 * an epoch newer than the directory's; a replica the directory calls in sync is trusted only
 * if the newest record anyone holds lists it, or it joined after that record.
 */
import { createHash } from 'node:crypto';
import { PmuError } from '../unit/errors';
import { crc32c } from '../unit/native';
import { RegionConfig } from './config';
import { PmuPool } from './pool';

export const MEMBERSHIP_BYTES = 4096;
const SLOTS = 8;
const SLOT_BYTES = 448;
const JOINING_OFFSET = SLOTS * SLOT_BYTES;
const JOINING_BYTES = MEMBERSHIP_BYTES - JOINING_OFFSET;
const SLOT_HEADER = 8; // u32 length, u32 CRC32C of the JSON

/** One configuration a replica was in sync under. */
export interface Stamp {
  epoch: number;
  inSync: string[];
}

export interface Membership {
  /** The newest valid stamp, if any. */
  newest?: Stamp;
  /** Epoch a resync was about to join at (0: none). */
  joining: number;
  /** Slots that hold bytes failing their CRC (torn by a crash, or damaged). */
  damagedSlots: number;
}

/** The name of the region beside `region` that holds its membership record (names are at most 63 bytes). */
export function membershipRegionName(region: string): string {
  return `.pmu-membership.${createHash('sha256').update(region).digest('hex').slice(0, 32)}`;
}

function encodeBlock(value: object, bytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(value));
  if (json.length + SLOT_HEADER > bytes) throw new PmuError('EINVAL', `a membership record of ${json.length} bytes does not fit ${bytes - SLOT_HEADER}`);
  const block = Buffer.alloc(SLOT_HEADER + json.length);
  block.writeUInt32LE(json.length, 0);
  block.writeUInt32LE(crc32c(json), 4);
  json.copy(block, SLOT_HEADER);
  return block;
}

/** The block's value; null for an empty block; undefined for one that fails its check. */
function decodeBlock(bytes: Buffer): unknown {
  const length = bytes.readUInt32LE(0);
  if (length === 0 && bytes.readUInt32LE(4) === 0) return null;
  if (length > bytes.length - SLOT_HEADER) return undefined;
  const json = bytes.subarray(SLOT_HEADER, SLOT_HEADER + length);
  if (crc32c(json) !== bytes.readUInt32LE(4)) return undefined;
  try {
    return JSON.parse(json.toString('utf8'));
  } catch {
    return undefined;
  }
}

function isStamp(value: unknown): value is Stamp {
  const stamp = value as Stamp;
  return !!stamp && Number.isSafeInteger(stamp.epoch) && stamp.epoch > 0 && Array.isArray(stamp.inSync) && stamp.inSync.every((id) => typeof id === 'string');
}

export function decodeMembership(bytes: Buffer): Membership {
  const membership: Membership = { joining: 0, damagedSlots: 0 };
  for (let slot = 0; slot < SLOTS; slot++) {
    const value = decodeBlock(bytes.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES));
    if (value === null) continue;
    if (!isStamp(value) || value.epoch % SLOTS !== slot) {
      membership.damagedSlots++;
      continue;
    }
    if (!membership.newest || value.epoch > membership.newest.epoch) membership.newest = { epoch: value.epoch, inSync: value.inSync };
  }
  const joining = decodeBlock(bytes.subarray(JOINING_OFFSET));
  if (joining !== null && joining !== undefined && Number.isSafeInteger((joining as { epoch: number }).epoch)) membership.joining = (joining as { epoch: number }).epoch;
  return membership;
}

async function openRecord(pool: PmuPool, pmu: string, region: string, create: boolean) {
  const name = membershipRegionName(region);
  const client = await pool.client(pmu);
  try {
    return await client.openRegion(name, { rights: 'rw' });
  } catch (error) {
    if (!create || !(error instanceof PmuError) || error.code !== 'ENOENT') throw error;
  }
  try {
    return await client.createRegion(name, MEMBERSHIP_BYTES);
  } catch (error) {
    if (error instanceof PmuError && error.code === 'EEXIST') return client.openRegion(name, { rights: 'rw' });
    throw error;
  }
}

/** What `pmu` remembers of `region`; a PMU without the record (a set older than records) remembers nothing. */
export async function readMembership(pool: PmuPool, pmu: string, region: string): Promise<Membership> {
  let record;
  try {
    record = await openRecord(pool, pmu, region, false);
  } catch (error) {
    if (error instanceof PmuError && error.code === 'ENOENT') return { joining: 0, damagedSlots: 0 };
    throw error;
  }
  return decodeMembership(await record.read(0, MEMBERSHIP_BYTES));
}

/**
 * Records on `pmu` that it is in sync under `config` ('flushed': it must survive a power loss,
 * since a writer acks on the strength of it). A record already as new or newer is left alone.
 */
export async function stampInSync(pool: PmuPool, pmu: string, config: RegionConfig): Promise<void> {
  const record = await openRecord(pool, pmu, config.name, true);
  const current = decodeMembership(await record.read(0, MEMBERSHIP_BYTES));
  if (current.newest && current.newest.epoch >= config.epoch) return;
  const slot = config.epoch % SLOTS;
  await record.write(slot * SLOT_BYTES, encodeBlock({ epoch: config.epoch, inSync: config.inSync }, SLOT_BYTES), { durability: 'flushed' });
}

/** Records on `pmu` that a resync is about to make it in sync at `epoch` (0 clears it). */
export async function stampJoining(pool: PmuPool, pmu: string, region: string, epoch: number): Promise<void> {
  const record = await openRecord(pool, pmu, region, true);
  await record.write(JOINING_OFFSET, encodeBlock({ epoch }, JOINING_BYTES), { durability: 'flushed' });
}

/** A region made afresh under a name: whatever an earlier region of that name left is wiped. */
export async function resetMembership(pool: PmuPool, pmu: string, region: string): Promise<void> {
  const record = await openRecord(pool, pmu, region, true);
  await record.write(0, Buffer.alloc(MEMBERSHIP_BYTES), { durability: 'flushed' });
}

/**
 * Stamps every in-sync replica of `config`; resolves with the ones whose stamp failed (to be
 * treated as failed replicas by the caller: it must not ack on a configuration they did not record).
 */
export async function stampAll(pool: PmuPool, config: RegionConfig): Promise<string[]> {
  const results = await Promise.allSettled(config.inSync.map((pmu) => stampInSync(pool, pmu, config)));
  return config.inSync.filter((_, i) => results[i].status === 'rejected');
}

/** Reads the records of every replica of `config` at once; a replica that does not answer within `timeoutMs` is left out. */
export async function readMemberships(pool: PmuPool, config: RegionConfig, timeoutMs: number): Promise<Map<string, Membership>> {
  const found = new Map<string, Membership>();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  const reads = Promise.allSettled(
    config.replicas.map(async (pmu) => {
      found.set(pmu, await readMembership(pool, pmu, config.name));
    }),
  );
  await Promise.race([reads, deadline]);
  clearTimeout(timer);
  return new Map(found);
}

export interface Vouching {
  /** Set when a replica remembers a configuration newer than the directory's: it went backwards. */
  rolledBack?: { pmu: string; epoch: number };
  /** In-sync replicas (by the directory) that their peers' records do not vouch for, and why. */
  untrusted: Array<{ pmu: string; why: string }>;
}

/**
 * The rules over the records. The newest stamp any replica holds is the newest configuration
 * known to have existed with acks on it: a directory older than it went backwards. A replica
 * the directory lists in sync must appear in that stamp, or have been joining since (its
 * `joining` epoch is newer than the stamp and not newer than the directory): otherwise it was
 * dropped at that stamp or before and never came back through a resync, whatever etcd says.
 *
 * `seenOut` closes the window in which the stamps of a drop have not landed yet (they follow
 * its etcd transaction; no write is acked meanwhile, but a reader that vouched then would go on
 * reading the dropped copy after the next ack): a replica this process itself saw outside the
 * in-sync set at epoch E is trusted again only if it joined after E (its `joining` record).
 */
export function vouch(config: RegionConfig, memberships: Map<string, Membership>, seenOut: ReadonlyMap<string, number> = new Map()): Vouching {
  const rejoinedUnseen = (pmu: string) => {
    const out = seenOut.get(pmu);
    if (out === undefined) return false;
    const joining = memberships.get(pmu)?.joining ?? 0;
    return !(joining > out && joining <= config.epoch);
  };
  const unseenWhy = (pmu: string) => `'${pmu}' was out of the in-sync set at configuration ${seenOut.get(pmu)} and has not been resynced since (its record says it last joined at ${memberships.get(pmu)?.joining || 'no epoch'})`;
  let newest: { pmu: string; stamp: Stamp } | undefined;
  for (const [pmu, membership] of memberships) {
    if (membership.newest && (!newest || membership.newest.epoch > newest.stamp.epoch)) newest = { pmu, stamp: membership.newest };
  }
  if (newest && newest.stamp.epoch > config.epoch) return { rolledBack: { pmu: newest.pmu, epoch: newest.stamp.epoch }, untrusted: [] };
  const untrusted: Array<{ pmu: string; why: string }> = [];
  for (const pmu of config.inSync) {
    if (newest && !newest.stamp.inSync.includes(pmu)) {
      const joining = memberships.get(pmu)?.joining ?? 0;
      if (!(joining > newest.stamp.epoch && joining <= config.epoch)) {
        untrusted.push({ pmu, why: `replica '${newest.pmu}' remembers configuration ${newest.stamp.epoch} with only ${newest.stamp.inSync.join(', ')} in sync, and '${pmu}' has not been resynced since` });
        continue;
      }
    }
    if (rejoinedUnseen(pmu)) untrusted.push({ pmu, why: unseenWhy(pmu) });
  }
  return { untrusted };
}

/**
 * Reads the replicas' records and vouches `config` against them. A record newer than `config`
 * may be a change made after `config` was read (stamps land after their etcd transaction):
 * then the configuration is read again, after the records, and only one still older than a
 * record means the directory went backwards.
 */
export async function checkAgainstReplicas(pool: PmuPool, config: RegionConfig, readConfig: () => Promise<RegionConfig>, seenOut?: ReadonlyMap<string, number>): Promise<{ config: RegionConfig; vouching: Vouching }> {
  let current = config;
  for (let attempt = 0; attempt < 5; attempt++) {
    const vouching = vouch(current, await readMemberships(pool, current, pool.timeoutMs), seenOut);
    if (!vouching.rolledBack) return { config: current, vouching };
    const fresh = await readConfig();
    if (fresh.epoch < vouching.rolledBack.epoch) return { config: fresh, vouching };
    current = fresh;
  }
  throw new PmuError('ECONFIG', `region '${config.name}': the set's configuration kept changing while its replicas' records were read; retry`);
}

/** The error of a directory that went backwards or lists replicas their peers say are stale. */
export function directoryBehind(config: RegionConfig, vouching: Vouching, etcdUrl: string): PmuError {
  const head = `region '${config.name}': the directory in etcd (${etcdUrl}) holds configuration ${config.epoch} (in sync: ${config.inSync.join(', ')}), but`;
  const tail = 'etcd was restored from an older copy, or the key was rewritten. Nothing is served or acknowledged under it. Restore etcd\'s newest data, then open the region again; do not copy replicas by hand (docs/MIRROR.md, "When the directory goes backwards")';
  if (vouching.rolledBack) return new PmuError('EROLLBACK', `${head} replica '${vouching.rolledBack.pmu}' remembers configuration ${vouching.rolledBack.epoch}, a newer one: ${tail}`);
  return new PmuError('EROLLBACK', `${head} ${vouching.untrusted.map((entry) => entry.why).join('; ')}: ${tail}`);
}
