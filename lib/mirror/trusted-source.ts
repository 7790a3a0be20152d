/**
 * Which in-sync replica a resync may copy from: one whose copy passes its own checks
 * (lib/checkpoint/copies.ts), never simply the read replica. A damaged in-sync copy found on
 * the way leaves the in-sync set first (its own agent resyncs it later from a copy that
 * passes), and the caller starts over under the new configuration. Regions that hold no
 * checkpoint log cannot be checked: their read replica is the source, as before.
 */
import { compareCopies, noValidCopy } from '../checkpoint/copies';
import { PmuError } from '../unit/errors';
import { capabilitiesOf } from '../unit/durability';
import { Region } from '../unit/region';
import { RegionConfig } from './config';
import { MirrorDirectory } from './directory';
import { leaveInSync } from './leave';
import { checkAgainstReplicas, directoryBehind } from './membership';
import { PmuPool } from './pool';

export async function trustedSource(directory: MirrorDirectory, pool: PmuPool, seen: RegionConfig): Promise<string> {
  // First the directory, against every replica's own record (membership.ts): a stale replica
  // that a restored or forged etcd lists in sync is never a source.
  const { config, vouching } = await checkAgainstReplicas(pool, seen, () => directory.config(seen.name));
  if (config.epoch !== seen.epoch) throw new PmuError('ECONFIG', `region '${seen.name}' changed while its replicas' records were read; starting over`);
  const stale = vouching.untrusted.map((entry) => entry.pmu);
  if (vouching.rolledBack || (stale.length > 0 && stale.length === config.inSync.length)) throw directoryBehind(config, vouching, directory.etcdUrl);
  if (stale.length > 0) {
    await leaveInSync(directory, pool, config, stale);
    throw new PmuError('ECONFIG', `region '${config.name}': ${vouching.untrusted.map((entry) => entry.why).join('; ')}; it left the in-sync set, and this resync starts over`);
  }
  const copies = config.inSync.map((pmu) => ({ name: pmu, region: readOnly(pool, pmu, config) }));
  const decision = await compareCopies(copies);
  if (decision.kind === 'raw') return config.inSync[0];
  if (decision.source === undefined) throw noValidCopy(config.name, decision);
  const damaged = decision.copies.filter((copy) => copy.role === 'damaged' || copy.role === 'unreadable');
  if (damaged.length > 0) {
    await leaveInSync(directory, pool, config, damaged.map((copy) => copy.name));
    throw new PmuError('ECONFIG', `region '${config.name}': ${damaged.map((copy) => `in-sync replica '${copy.name}' ${copy.detail}`).join('; ')}; it left the in-sync set, and this resync starts over from a copy that passes`);
  }
  return config.inSync[decision.source];
}

function readOnly(pool: PmuPool, pmu: string, config: RegionConfig): Region {
  const refuse = () => Promise.reject(new PmuError('EACCESS', `replica '${pmu}' is being checked read-only`));
  return {
    name: config.name,
    size: config.size,
    context: { name: config.name, handle: 0, base: 0, size: config.size, rights: 'r' },
    capabilities: capabilitiesOf('MirroredRegion'),
    read: async (offset, length) => (await pool.openRegion(pmu, config.name)).read(offset, length),
    write: refuse,
    flush: refuse,
    compareAndSwap: refuse,
  };
}
