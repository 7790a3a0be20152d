/**
 * `pmu cluster create NAME --adopt PMU`: a PMU holds a region the set's directory no longer
 * knows (etcd lost its state, or was restored from an old snapshot). Deleting that region would
 * delete what may be the only copy of its data; adopting it records the region again with the
 * copy on PMU as the only in-sync replica, and places the other replicas, whose agents then
 * resync from it (overwriting whatever older copy they hold).
 *
 * The replicas' membership records (membership.ts) keep this safe: the adopted configuration
 * starts above every epoch a PMU of the set remembers (or every reader would take it for a
 * rollback), and a PMU that the newest remembered configuration does not list in sync is refused:
 * another holds newer data, and adopting the stale one would resync it over them.
 */
import { PmuError } from '../unit/errors';
import { place, RegionConfig } from './config';
import { MirrorDirectory } from './directory';
import { Membership, readMembership, stampInSync } from './membership';
import { PmuPool } from './pool';

export async function adoptRegion(directory: MirrorDirectory, pool: PmuPool, name: string, pmu: string, options: { size?: number; copies?: number } = {}): Promise<RegionConfig> {
  const info = await directory.setInfo();
  await directory.pmu(pmu); // ENOENT, with what to do, if that PMU is not in the set
  const held = (await (await pool.client(pmu)).listRegions()).find((region) => region.name === name);
  if (!held) throw new PmuError('ENOENT', `PMU '${pmu}' holds no region '${name}' to adopt: check the name with pmu region list on that PMU, or create a new one without --adopt`);
  if (options.size !== undefined && options.size !== held.size) {
    throw new PmuError('EINVAL', `PMU '${pmu}' holds region '${name}' of ${held.size} bytes, not the ${options.size} asked for: nothing was changed; adopt it with --size ${held.size} (or without --size)`);
  }
  // What every reachable PMU of the set remembers of the region.
  const memberships = new Map<string, Membership>();
  for (const entry of await directory.pmus()) {
    const membership = await readMembership(pool, entry.id, name).catch(() => undefined);
    if (membership) memberships.set(entry.id, membership);
  }
  let newest: { pmu: string; epoch: number; inSync: string[] } | undefined;
  for (const [id, membership] of memberships) if (membership.newest && (!newest || membership.newest.epoch > newest.epoch)) newest = { pmu: id, ...membership.newest };
  if (newest && !newest.inSync.includes(pmu)) {
    throw new PmuError(
      'EINVAL',
      `PMU '${pmu}' was not in sync in the newest configuration of '${name}' that a replica remembers (epoch ${newest.epoch}, remembered by '${newest.pmu}': in sync ${newest.inSync.join(', ')}): its copy may be stale, and adopting it would resync it over newer data. Nothing was changed; adopt one of those instead: pmu cluster create ${name} --adopt ${newest.inSync[0]}`,
    );
  }
  const copies = options.copies ?? info.copies;
  const others = copies > 1 ? place(await directory.pmus(), await directory.regions(), held.size, copies - 1, [pmu]) : [];
  const config: RegionConfig = {
    name,
    size: held.size,
    replicas: [pmu, ...others],
    inSync: [pmu],
    syncing: [],
    // Above every epoch a replica remembers: anything lower would read as a directory gone backwards.
    epoch: (newest?.epoch ?? 0) + 1,
  };
  await directory.recordRegion(config);
  await stampInSync(pool, pmu, config);
  return config;
}
